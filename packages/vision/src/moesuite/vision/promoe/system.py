"""ProMoE behind ``moesuite vision``: train, eval, compare, sample and the demo row.

Every function checks its inputs (model, objective, data, guidance scale, steps, classes, image
and patch sizes) before it writes anything; run directories are written atomically.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path
from typing import Any

from moesuite.vision.promoe.registry import MODELS
from moesuite.vision.systems import CommandResult, VisionSystem

__all__ = ["SYSTEM", "train", "evaluate", "compare", "sample", "demo"]

#: the demo's budget: promoe on scikit-learn digits, small enough for ``moesuite demo``
DEMO_STEPS = 400


def _torch_device(device: str) -> str:
    import torch

    if device in ("auto", None):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device in ("gpu", "cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device}: no CUDA device is available; use --device cpu.")
        return "cuda"
    if device == "cpu":
        return "cpu"
    raise ValueError(f"--device {device!r}: expected 'auto', 'cpu' or 'cuda'.")


def _config(model: str, **options: Any):
    from moesuite.vision.promoe.diffusion import OBJECTIVES
    from moesuite.vision.promoe.training import TrainConfig

    MODELS.get(model)
    objective = options.get("objective") or "rf"
    if objective not in OBJECTIVES:
        raise ValueError(f"--objective {objective!r}: expected one of {list(OBJECTIVES)}.")
    if options.get("epochs") is not None and options.get("steps") is not None:
        raise ValueError("--epochs and --steps both set the training length; give one of them.")
    data = options.get("data")
    kwargs = {k: v for k, v in options.items() if v is not None}
    kwargs.update(model=model, objective=objective)
    if data is not None:
        kwargs["data"] = str(data)
    return TrainConfig(**kwargs)


def _summary(metrics: dict[str, Any]) -> str:
    parts = [f"{metrics['model']} ({metrics['objective']}, {metrics['data']})"]
    for key in sorted(k for k in metrics if k.startswith("cfg_")):
        m = metrics[key]
        parts.append(
            f"cfg {key[4:]}: FID {m['fid']:.2f}, KID {m['kid']:.3f}, precision "
            f"{m['precision']:.2f}, recall {m['recall']:.2f}, class accuracy "
            f"{m['class_accuracy']:.3f}"
        )
    ce = metrics.get("class_expert") or {}
    if ce:
        parts.append(f"class-expert MI {ce['mi']:.3f} nats (max {ce['max_mi']:.2f})")
    p = metrics["parameters"]
    parts.append(
        f"{p['activated']:,} activated / {p['total']:,} parameters, "
        f"{metrics['flops_per_image'] / 1e6:.1f} MFLOPs per image"
    )
    net = metrics["feature_net"]
    parts.append(f"feature net held-out accuracy {net['held_out_accuracy']:.3f}")
    if "steps" in metrics:
        parts.append(f"{metrics['steps']} steps in {metrics['train_seconds']:.0f} s")
    return "\n".join(parts)


def train(
    model: str,
    *,
    data: Path | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    experts: int | None = None,
    objective: str | None = None,
    patch_size: int | None = None,
    threads: int | None = None,
    device: str = "auto",
    devices: str = "auto",
    strategy: str = "auto",
    resume: Path | None = None,
    seed: int = 0,
    out: Path | None = None,
    quiet: bool = False,
) -> CommandResult:
    """Train a diffusion model, then evaluate it (quick default: digits, about two minutes)."""
    from moesuite.core.cli.common import lightning_kwargs
    from moesuite.vision.promoe.training import resume_diffusion, train_diffusion

    lightning = lightning_kwargs(device, devices, strategy)
    if resume is not None:
        from moesuite.core.training import resumable_config

        resumable_config(resume, expect={"system": "promoe", "model": model})
        run_dir, metrics = resume_diffusion(
            resume, progress=not quiet, lightning=lightning, threads=threads
        )
    else:
        cfg = _config(
            model,
            data=data,
            epochs=epochs,
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            experts=experts,
            objective=objective,
            patch_size=patch_size,
            threads=threads,
            seed=seed,
        )
        run_dir, metrics = train_diffusion(cfg, out=out, progress=not quiet, lightning=lightning)
    if not metrics:  # a DDP worker rank
        return CommandResult(run_dir, metrics, "")
    return CommandResult(run_dir, metrics, _summary(metrics))


def _check_sampling(cfg: float | None, steps: int | None) -> None:
    if cfg is not None and not cfg >= 0:
        raise ValueError(f"--cfg {cfg}: the guidance scale must be >= 0 (1 = no guidance).")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps {steps}: sampling needs at least 1 step.")


def evaluate(
    run: Path,
    *,
    data: Path | None = None,
    cfg: float | None = None,
    steps: int | None = None,
    threads: int | None = None,
    device: str = "auto",
    seed: int = 0,
    out: Path | None = None,
    quiet: bool = False,
) -> CommandResult:
    """FID/KID/precision/recall/class accuracy per guidance scale, MI, parameters, FLOPs."""
    from moesuite.core.training import run_directory, torch_threads
    from moesuite.vision.promoe.data import load_data
    from moesuite.vision.promoe.evaluate import evaluate_model, write_sample_grids
    from moesuite.vision.promoe.training import load_run

    _check_sampling(cfg, steps)
    dev = _torch_device(device)
    with torch_threads(threads):
        config, model, objective = load_run(run)
        source = data if data is not None else config["data"]["source"]
        images = load_data(source)
        expected = (tuple(config["data"]["image_size"]), config["data"]["channels"])
        if (images.image_size, images.channels) != expected or images.num_classes != len(
            config["data"]["classes"]
        ):
            raise ValueError(
                f"--data {source}: {images.num_classes} classes of {images.channels}-channel "
                f"{images.image_size} images, but {run} was trained on "
                f"{len(config['data']['classes'])} classes of {expected[1]}-channel "
                f"{expected[0]} images."
            )
        train_cfg = config["train"]
        path = Path(out) if out is not None else Path(run) / _stamp("eval")
        with run_directory(path) as rd:
            report, samples = evaluate_model(
                model.to(dev),
                objective,
                images,
                feature_dir=config.get("feature_dir"),
                cfgs=(cfg,) if cfg is not None else tuple(train_cfg["eval_cfgs"]),
                steps=steps or train_cfg["eval_steps"],
                per_class=train_cfg.get("eval_per_class"),
                seed=seed,
                progress=not quiet,
            )
            metrics = {
                "model": config["model"],
                "objective": config["objective"],
                "data": images.name,
                "run": str(run),
                **report,
            }
            write_sample_grids(rd, samples, images.num_classes)
            rd.write_metrics(metrics)
    return CommandResult(path, metrics, _summary(metrics))


def _stamp(prefix: str) -> str:
    return f"{prefix}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


def compare(
    models: list[str],
    *,
    data: Path | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    experts: int | None = None,
    objective: str | None = None,
    patch_size: int | None = None,
    seeds: int | None = None,
    threads: int | None = None,
    device: str = "auto",
    seed: int = 0,
    out: Path | None = None,
    quiet: bool = False,
) -> CommandResult:
    """Train and evaluate each model at the same budget and seeds; one table (compare.md)."""
    import numpy as np

    from moesuite.core.cli.common import lightning_kwargs
    from moesuite.core.training import default_run_path, run_directory, torch_threads
    from moesuite.vision.promoe.training import prepare, train_diffusion

    if len(models) < 2:
        raise ValueError("--model: give at least two models to compare (repeat --model).")
    n_seeds = seeds or 1
    configs = {
        m: _config(
            m,
            data=data,
            epochs=epochs,
            steps=steps,
            batch_size=batch_size,
            experts=experts if m != "dit" else None,
            objective=objective,
            patch_size=patch_size,
            threads=threads,
            seed=seed,
        )
        for m in models
    }
    with torch_threads(threads):
        for cfg in configs.values():  # every input checked before anything is written
            prepare(cfg)
    lightning = lightning_kwargs(device, "auto", "auto")
    path = Path(out) if out is not None else default_run_path("runs", "vision", "compare")
    results: dict[str, list[dict]] = {m: [] for m in models}
    with run_directory(path) as rd:
        for s in range(seed, seed + n_seeds):
            for m, cfg in configs.items():
                from dataclasses import replace

                _, metrics = train_diffusion(
                    replace(cfg, seed=s),
                    out=rd.path / f"{m}-s{s}",
                    progress=not quiet,
                    lightning=lightning,
                )
                results[m].append(metrics)
        cfgs = sorted(k for k in results[models[0]][0] if k.startswith("cfg_"))
        head = "| model | " + " | ".join(f"FID {c[4:]}" for c in cfgs)
        head += " | class acc | class-expert MI | activated / total params |"
        lines = [head, "|" + "---|" * (len(cfgs) + 4)]
        table: dict[str, Any] = {}
        for m, runs in results.items():
            fids = {c: [r[c]["fid"] for r in runs] for c in cfgs}
            acc = [r[cfgs[-1]]["class_accuracy"] for r in runs]
            mi = [r["class_expert"]["mi"] for r in runs if r.get("class_expert")]
            p = runs[0]["parameters"]
            table[m] = {"fid": {c: float(np.mean(v)) for c, v in fids.items()}, "runs": runs}
            cells = [f"{np.mean(v):.2f} +- {np.std(v):.2f}" for v in fids.values()]
            lines.append(
                f"| {m} | "
                + " | ".join(cells)
                + f" | {np.mean(acc):.3f} | "
                + (f"{np.mean(mi):.3f}" if mi else "-")
                + f" | {p['activated']:,} / {p['total']:,} |"
            )
        text = "\n".join(lines) + "\n"
        (rd.path / "compare.md").write_text(text)
        rd.write_metrics({"models": models, "seeds": n_seeds, "results": table})
    return CommandResult(path, {"results": table}, text.rstrip())


def sample(
    run: Path,
    *,
    classes: list[int] | None = None,
    cfg: float | None = None,
    steps: int | None = None,
    n: int | None = None,
    threads: int | None = None,
    device: str = "auto",
    seed: int = 0,
    out: Path | None = None,
) -> CommandResult:
    """Generate ``n`` images of each class (default all) into a PNG grid, one row per class."""
    import torch

    from moesuite.core.training import read_json, torch_threads
    from moesuite.vision.data.images import save_image
    from moesuite.vision.promoe.diffusion import sample as generate
    from moesuite.vision.promoe.evaluate import image_grid
    from moesuite.vision.promoe.training import load_run

    _check_sampling(cfg, steps)
    cfg = 1.5 if cfg is None else cfg
    steps = steps or 50
    n = n or 8
    path = Path(out) if out is not None else Path(run) / "samples" / f"{_stamp('grid')}.png"
    if path.suffix.lower() != ".png":
        raise ValueError(f"--out {path}: expected a .png file for the grid.")
    dev = _torch_device(device)
    with torch_threads(threads):
        config, model, objective = load_run(run)
        num_classes = len(config["data"]["classes"])
        wanted = sorted(set(classes)) if classes else list(range(num_classes))
        bad = [c for c in wanted if not 0 <= c < num_classes]
        if bad:
            raise ValueError(
                f"--class {bad[0]}: this run has {num_classes} classes; expected 0-"
                f"{num_classes - 1} ({', '.join(config['data']['classes'])})."
            )
        labels = torch.tensor(wanted).repeat_interleave(n)
        g = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        images = generate(model.to(dev), objective, labels, cfg=cfg, steps=steps, generator=g)
        seconds = time.perf_counter() - start
        tmp = path.with_name(f".{path.name}.tmp.png")
        save_image(tmp, image_grid(images, len(wanted)))
        tmp.replace(path)
    metrics: dict[str, Any] = {
        "classes": wanted,
        "cfg": cfg,
        "steps": steps,
        "n": n,
        "seconds": seconds,
    }
    summary = f"{len(labels)} images ({n} per class) at cfg {cfg}, {steps} steps in {seconds:.1f} s"
    net_dir = Path(read_json(Path(run) / "metrics.json")["feature_net"]["path"])
    if (net_dir / "model.pt").is_file():
        from moesuite.vision.nn.feature_net import FeatureNet

        net_cfg = read_json(net_dir / "config.json")
        net = FeatureNet(
            net_cfg["in_channels"],
            net_cfg["num_classes"],
            net_cfg["width"],
            net_cfg["num_features"],
        )
        net.load_state_dict(torch.load(net_dir / "model.pt", map_location="cpu", weights_only=True))
        acc = float((net.predict(images) == labels).float().mean())
        metrics["class_accuracy"] = acc
        summary += f"; the feature network classifies {acc:.1%} of them as the asked class"
    return CommandResult(path, metrics, summary)


def demo(out_dir: Path) -> list[dict]:
    """ProMoE on scikit-learn digits, rectified flow, a short budget: one row."""
    from moesuite.vision.promoe.training import TrainConfig, train_diffusion

    start = time.perf_counter()
    cfg = TrainConfig(
        model="promoe",
        steps=DEMO_STEPS,
        threads=1,
        eval_steps=10,
        eval_per_class=20,
        eval_cfgs=(1.5,),
    )
    _, m = train_diffusion(cfg, out=Path(out_dir) / "promoe", progress=False)
    r = m["cfg_1.5"]
    net_acc = m["feature_net"]["held_out_accuracy"]
    return [
        {
            "domain": "vision",
            "task": "class-conditional digit generation (ProMoE, rectified flow)",
            "model": "promoe",
            "metric": "sample class accuracy (cfg 1.5)",
            "value": round(r["class_accuracy"], 3),
            "seconds": round(time.perf_counter() - start, 1),
            "note": (
                f"FID {r['fid']:.1f} (feature net acc {net_acc:.2f}), "
                f"class-expert MI {m['class_expert']['mi']:.2f} nats, {m['steps']} steps"
            ),
        }
    ]


SYSTEM = VisionSystem(
    name="promoe",
    help="ProMoE (ICLR 2026): prototypical-routing MoE diffusion transformers, and baselines",
    models=MODELS,
    train=train,
    evaluate=evaluate,
    compare=compare,
    demo=demo,
    verbs={"sample": sample},
)
