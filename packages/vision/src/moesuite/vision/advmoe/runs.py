"""One training run from a config: build the network, train it with Lightning, evaluate, report.

A run's ``config.json`` holds everything needed to rebuild it (``system``, ``model``,
``scheme``, ``model_cfg``, ``train``, ``data``, ``seed``); ``checkpoints/last.ckpt`` holds the
weights, both optimisers and the loop position, so ``train --resume RUN`` continues it.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from moesuite.core.registry import Registry
from moesuite.core.training import RunDirectory, fit, make_trainer, read_json, seed_everything
from moesuite.vision.advmoe.data import ImageData, load_data
from moesuite.vision.advmoe.model import MIN_SIZE, ROUTINGS, AdvResNet
from moesuite.vision.advmoe.training import SCHEMES, AdvTrainer, TrainConfig

__all__ = [
    "MODELS",
    "DEFAULTS",
    "make_config",
    "build_model",
    "check_images",
    "fit_run",
    "load_run",
    "row_label",
    "summary_table",
]

MODELS: Registry[AdvResNet] = Registry("advmoe model")
MODELS.register(
    "advmoe",
    AdvResNet,
    help="ResNet-18 MoE-CNN: 2 channel-group experts (r=0.5) per block conv, hard top-1 router",
    ratio=0.5,
    experts=2,
)
MODELS.register(
    "resnet18", AdvResNet, help="dense ResNet-18 (r=1), the paper's dense CNN", ratio=1.0
)
MODELS.register(
    "resnet18-half", AdvResNet, help="dense ResNet-18 at the experts' width (r=0.5)", ratio=0.5
)

#: budgets by data source: the digits quick default (~2 min) and MNIST
DEFAULTS: dict[str, dict[str, Any]] = {
    # 8x8 digits in 17 grey levels: eps 0.3 is beyond what a 2-minute budget learns
    "digits": {"epochs": 10, "batch_size": 64, "width": 8, "eps": 0.1},
    "mnist": {"epochs": 2, "batch_size": 64, "width": 8, "eps": 0.3},
}


def make_config(
    model: str,
    data: ImageData,
    *,
    scheme: str | None = None,
    routing: str | None = None,
    experts: int | None = None,
    data_arg: str | Path | None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    lr: float | None = None,
    eps: float | None = None,
    width: int | None = None,
    **train_overrides: Any,
) -> dict[str, Any]:
    """Validate the options against the model and build the run's config (nothing written)."""
    entry = MODELS.get(model)
    moe = entry.preset.get("experts", 1) > 1
    scheme = scheme if scheme is not None else ("advmoe" if moe else "dense")
    if scheme not in SCHEMES:
        raise ValueError(f"--scheme must be one of {list(SCHEMES)}, got {scheme!r}.")
    if not moe and scheme != "dense":
        raise ValueError(
            f"--scheme {scheme} trains routers; {model} is a dense network (use --scheme dense, "
            "or the model advmoe)."
        )
    if routing is not None and routing not in ROUTINGS:
        raise ValueError(f"--routing must be one of {list(ROUTINGS)}, got {routing!r}.")
    if routing is not None and scheme == "dense":
        raise ValueError("--routing applies to MoE training (--scheme advmoe or joint) only.")
    if experts is not None and scheme == "dense":
        raise ValueError("--experts applies to MoE training (--scheme advmoe or joint) only.")
    if experts is not None and experts < 2:
        raise ValueError(f"--experts must be >= 2 for an MoE network, got {experts}.")
    base = DEFAULTS["digits" if data.name == "digits" else "mnist"]
    model_cfg = {
        **entry.preset,
        "num_classes": data.num_classes,
        "in_chans": data.in_chans,
        "width": width or base["width"],
        "experts": 1 if scheme == "dense" else (experts or entry.preset["experts"]),
        "routing": routing or "shared",
    }
    train = TrainConfig(
        scheme=scheme,
        epochs=epochs or base["epochs"],
        batch_size=batch_size or base["batch_size"],
        eps=base["eps"] if eps is None else eps,
        **{k: v for k, v in {"lr": lr, **train_overrides}.items() if v is not None},
    )
    return {
        "system": "advmoe",
        "model": model,
        "scheme": scheme,
        "model_cfg": model_cfg,
        "train": asdict(train),
        "data": str(data_arg) if data_arg is not None else None,
        "data_name": data.name,
        "seed": seed,
    }


def build_model(config: dict[str, Any]) -> AdvResNet:
    """The network of a config (freshly initialised)."""
    return AdvResNet(**config["model_cfg"])


def check_images(data: ImageData) -> None:
    """One clear error for images the stem cannot take (before anything is written)."""
    h, w = data.image_size
    if min(h, w) < MIN_SIZE:
        raise ValueError(
            f"--data: images of {h}x{w} pixels are smaller than the ResNet stem takes "
            f"(at least {MIN_SIZE}x{MIN_SIZE}); upscale them."
        )


def fit_run(
    run: RunDirectory,
    config: dict[str, Any],
    data: ImageData,
    *,
    lightning: dict[str, Any] | None = None,
    resume: str | Path | None = None,
    quiet: bool = False,
) -> tuple[AdvResNet, AdvTrainer, float]:
    """Train the config's network on ``data`` into ``run``; returns model, system, seconds."""
    cfg = TrainConfig(**config["train"])
    seed_everything(config["seed"])
    model = build_model(config)
    gen = torch.Generator().manual_seed(config["seed"])
    loader = DataLoader(
        TensorDataset(data.x_train, data.y_train),
        batch_size=cfg.batch_size,
        shuffle=True,
        generator=gen,
    )
    system = AdvTrainer(model, cfg, len(loader))
    trainer = make_trainer(
        run.path,
        max_epochs=cfg.epochs,
        seed=config["seed"],
        progress=not quiet,
        monitor="train/loss_epoch",
        routing_stats=False,
        log_every_n_steps=min(10, len(loader)),
        **(lightning or {"accelerator": "cpu", "devices": 1}),
    )
    start = time.perf_counter()
    fit(trainer, system, loader, resume=resume)
    return model.cpu().eval(), system, time.perf_counter() - start


def load_run(run: str | Path) -> tuple[dict[str, Any], AdvResNet, ImageData]:
    """A trained run's config, its network (last checkpoint) and its data."""
    from moesuite.core.training import last_checkpoint

    config = read_json(Path(run) / "config.json")
    if config.get("system") != "advmoe":
        raise ValueError(f"{run} is not an advmoe run (config.json names {config.get('system')}).")
    model = build_model(config)
    state = torch.load(last_checkpoint(run), map_location="cpu", weights_only=False)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    return config, model.eval(), load_data(config["data"])


def row_label(config: dict[str, Any]) -> str:
    """``model [scheme, routing]`` for tables and plots."""
    if config["scheme"] == "dense":
        return f"{config['model']} (dense r={config['model_cfg']['ratio']})"
    label = f"{config['model']} ({config['scheme']}, {config['model_cfg']['routing']}"
    objective = config["train"].get("router_objective", "authors")
    if config["scheme"] == "advmoe" and objective != "authors":
        label += f", router {objective}"
    return label + ")"


def _mean_std(vals: list[float]) -> str:
    if not vals:
        return "-"
    m = sum(vals) / len(vals)
    s = (sum((v - m) ** 2 for v in vals) / (len(vals) - 1)) ** 0.5 if len(vals) > 1 else 0.0
    return f"{100 * m:.1f} ± {100 * s:.1f}"


def summary_table(rows: list[dict[str, Any]], ref_label: str | None = None) -> str:
    """Markdown table over seeds: accuracies (mean ± std, %), FLOPs (and % of ``ref_label``)."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["label"], []).append(r)
    ref = groups.get(ref_label or "", [])
    ref_flops = sum(r["flops"] for r in ref) / len(ref) if ref else None
    cols = ["clean_acc", "pgd10_acc", "pgd50_acc", "router_attack_acc"]
    names = ["clean", "PGD-10", "PGD-50", "router attack"]
    small = sorted({k for r in rows for k in r if k.startswith("pgd10_eps")})
    cols += small  # PGD-10 at a smaller radius, when measured
    names += [f"PGD-10 eps {k[len('pgd10_eps') : -len('_acc')]}" for k in small]
    head = "| model | seeds | " + " | ".join(names) + " | MFLOPs | latency ms |"
    lines = [head, "|" + "---|" * (len(names) + 4)]
    for label, rs in groups.items():
        acc = [_mean_std([r[c] for r in rs if r.get(c) is not None]) for c in cols]
        flops = sum(r["flops"] for r in rs) / len(rs)
        pct = f" ({100 * flops / ref_flops:.0f}%)" if ref_flops else ""
        lat = sum(r["latency_ms"] for r in rs) / len(rs)
        lines.append(
            f"| {label} | {len(rs)} | "
            + " | ".join(acc)
            + f" | {flops / 1e6:.2f}{pct} | {lat:.2f} |"
        )
    return "\n".join(lines)
