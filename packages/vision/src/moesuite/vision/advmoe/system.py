"""AdvMoE's CLI functions (``moesuite vision train|eval|compare|attack``) and its demo row."""

from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Any

from moesuite.core.training import (
    default_run_path,
    resumable_config,
    resume_run_directory,
    run_directory,
    torch_threads,
)
from moesuite.vision.advmoe.data import ImageData, load_data
from moesuite.vision.advmoe.evaluate import attack_metrics
from moesuite.vision.advmoe.evaluate import evaluate as evaluate_model
from moesuite.vision.advmoe.plots import plot_robust_vs_flops, plot_usage
from moesuite.vision.advmoe.runs import (
    MODELS,
    check_images,
    fit_run,
    load_run,
    make_config,
    row_label,
    summary_table,
)
from moesuite.vision.systems import CommandResult, VisionSystem

__all__ = ["SYSTEM", "train", "evaluate", "compare", "attack", "demo"]


def _lightning(device: str, devices: str, strategy: str) -> dict[str, Any]:
    from moesuite.core.cli.common import lightning_kwargs

    return lightning_kwargs(device, devices, strategy)


def _report(config: dict, m: dict[str, Any]) -> str:
    pgd = ", ".join(f"PGD-{k[3:-4]} {100 * v:.1f}%" for k, v in m.items() if k.startswith("pgd"))
    text = (
        f"{row_label(config)} on {config['data_name']}: clean {100 * m['clean_acc']:.1f}%, {pgd} "
        f"(eps {m['eps']}), {m['flops'] / 1e6:.2f} MFLOPs/image"
    )
    return text + (f", trained in {m['train_seconds']:.0f} s" if "train_seconds" in m else "")


def _train_and_report(
    run, config: dict, data: ImageData, lightning: dict, resume, quiet: bool, seed: int
) -> dict[str, Any]:
    model, system, seconds = fit_run(
        run, config, data, lightning=lightning, resume=resume, quiet=quiet
    )
    metrics = evaluate_model(
        model,
        data.x_test,
        data.y_test,
        eps=config["train"]["eps"],
        steps=(10,),
        robust_n=500,
        num_classes=data.num_classes,
        seed=seed,
    )
    metrics.update({"train_seconds": seconds, "expert_share_by_epoch": system.usage_history})
    run.write_metrics(metrics)
    if metrics["usage_per_class"] is not None:
        plot_usage(run.plot_path("usage_per_class"), metrics["usage_per_class"], row_label(config))
    return metrics


def train(
    model: str,
    *,
    data: Path | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    experts: int | None = None,
    scheme: str | None = None,
    routing: str | None = None,
    eps: float | None = None,
    threads: int | None = None,
    device: str = "auto",
    devices: str = "auto",
    strategy: str = "auto",
    resume: Path | None = None,
    seed: int = 0,
    out: Path | None = None,
    quiet: bool = False,
) -> CommandResult:
    """Adversarially train ``model`` (``--scheme advmoe|joint|dense``); quick default on digits."""
    lightning = _lightning(device, devices, strategy)
    with torch_threads(threads):
        if resume is not None:
            fixed = {"data": data, "batch-size": batch_size, "lr": lr, "experts": experts}
            fixed.update({"scheme": scheme, "routing": routing, "eps": eps, "out": out})
            config = resumable_config(
                resume,
                expect={"system": "advmoe"},
                given={f"--{k}": v for k, v in fixed.items()},
                finished_ok=epochs is not None,
            )
            if epochs is not None:
                config["train"]["epochs"] = epochs
            data_ = load_data(config["data"])
            with resume_run_directory(resume) as run:
                run.write_config(config)
                metrics = _train_and_report(run, config, data_, lightning, resume, quiet, seed)
            return CommandResult(Path(resume), metrics, _report(config, metrics))
        data_ = load_data(data)
        check_images(data_)
        config = make_config(
            model,
            data_,
            data_arg=data,
            scheme=scheme,
            routing=routing,
            experts=experts,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            eps=eps,
            seed=seed,
        )
        path = out or default_run_path("runs", "vision", model)
        with run_directory(path, keep_interrupted=True) as run:
            run.write_config(config)
            metrics = _train_and_report(run, config, data_, lightning, None, quiet, seed)
    return CommandResult(Path(path), metrics, _report(config, metrics))


def _stamp(run: Path, kind: str, out: Path | None) -> Path:
    return out or Path(run) / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def _attack_run(
    run: Path,
    *,
    mode: str,
    eps: float | None = None,
    seed: int = 0,
    steps: int | None = None,
    restarts: int | None = None,
    device: str = "auto",
    data: Path | None = None,
    threads: int | None = None,
    quiet: bool = False,
    out: Path | None = None,
) -> CommandResult:
    """``eval`` (every metric, PGD-10 and PGD-50) or ``attack`` (PGD-``steps`` + router attack)."""
    with torch_threads(threads):
        config, model, own = load_run(run)
        d = load_data(data) if data is not None else own
        check_images(d)
        eps = (config["train"]["eps"] if mode == "eval" else 0.3) if eps is None else eps
        restarts = restarts or 1
        if mode == "eval":
            metrics = evaluate_model(
                model,
                d.x_test,
                d.y_test,
                eps=eps,
                steps=(steps,) if steps is not None else (10, 50),
                restarts=restarts,
                num_classes=d.num_classes,
                seed=seed,
            )
            summary = _report(config, metrics)
        else:
            metrics, summary = _attack_summary(model, config, d, eps, steps or 10, restarts, seed)
        path = _stamp(run, mode, out)
        with run_directory(path) as ev:
            ev.write_config({"system": "advmoe", "run": str(run), "data": d.name, "eps": eps})
            ev.write_metrics(metrics)
            if metrics.get("usage_per_class") is not None:
                usage = metrics["usage_per_class"]
                plot_usage(ev.plot_path("usage_per_class"), usage, row_label(config))
    return CommandResult(Path(path), metrics, summary)


def _attack_summary(model, config, d, eps, steps, restarts, seed) -> tuple[dict, str]:
    x, y = d.x_test, d.y_test
    whole = attack_metrics(model, x, y, eps, steps, restarts, "model", seed)
    router = attack_metrics(model, x, y, eps, steps, restarts, "router", seed)
    metrics: dict[str, Any] = {"eps": eps, "steps": steps, "restarts": restarts, "n": len(x)}
    metrics.update(
        pgd_acc=whole["acc"],
        pgd_flip_rate=whole["flip_rate"],
        router_attack_acc=router["acc"],
        router_flip_rate=router["flip_rate"],
    )
    text = (
        f"{row_label(config)}: PGD-{steps} x{restarts} at eps {eps}: "
        f"{100 * whole['acc']:.1f}% robust accuracy"
    )
    if router["acc"] is not None:
        text += (
            f"; router-only attack: {100 * router['acc']:.1f}% accuracy, "
            f"{100 * router['flip_rate']:.0f}% of routing decisions flipped"
        )
    return metrics, text


#: ``moesuite vision eval RUN``: clean, PGD-10/PGD-50 and router-attack accuracy, FLOPs, latency
evaluate = functools.partial(_attack_run, mode="eval")
#: ``moesuite vision attack RUN``: PGD (whole model, routers included) and the router-only attack
attack = functools.partial(_attack_run, mode="attack")


def compare(
    models: list[str],
    *,
    data: Path | None = None,
    seed: int = 0,
    epochs: int | None = None,
    batch_size: int | None = None,
    experts: int | None = None,
    scheme: str | None = None,
    eps: float | None = None,
    quiet: bool = False,
    seeds: int | None = None,
    threads: int | None = None,
    device: str = "auto",
    out: Path | None = None,
) -> CommandResult:
    """Train and evaluate each model for ``seeds`` seeds at equal epochs; one table, one PNG.

    ``--scheme`` and ``--experts`` apply to the MoE models of the list, dense ones train TRADES.
    """
    import json

    d = load_data(data)
    check_images(d)
    configs = []
    for m in models:
        moe = MODELS.get(m).preset.get("experts", 1) > 1
        for s in range(seed, seed + (seeds or 1)):
            configs.append(
                make_config(
                    m,
                    d,
                    data_arg=data,
                    scheme=scheme if moe else None,
                    experts=experts if moe else None,
                    epochs=epochs,
                    batch_size=batch_size,
                    eps=eps,
                    seed=s,
                )
            )
    path = out or default_run_path("runs", "vision", "compare")
    rows = []
    with torch_threads(threads), run_directory(path) as cmp:
        cmp.write_config({"system": "advmoe", "model": "compare", "runs": configs})
        for config in configs:
            sub = run_directory(
                cmp.path / f"{config['model']}-{config['scheme']}-s{config['seed']}"
            )
            with sub as run:
                run.write_config(config)
                m = _train_and_report(
                    run, config, d, _lightning(device, "1", "auto"), None, quiet, config["seed"]
                )
            rows.append({"label": row_label(config), "seed": config["seed"], **m})
        table = summary_table(
            rows, ref_label=next((r["label"] for r in rows if "resnet18 (" in r["label"]), None)
        )
        cmp.file("results.jsonl").write_text("".join(json.dumps(_scalars(r)) + "\n" for r in rows))
        cmp.file("table.md").write_text(table + "\n")
        plot_robust_vs_flops(cmp.plot_path("robust_vs_flops"), rows, "pgd10_acc", "compare")
        cmp.write_metrics({"rows": [_scalars(r) for r in rows]})
    return CommandResult(Path(path), {"rows": rows}, table)


def _scalars(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not isinstance(v, (list, dict))}


def demo(out_dir: Path) -> list[dict[str, Any]]:
    """The ``moesuite demo`` row: AdvMoE on digits for a few epochs, PGD-10 at the training eps."""
    start = time.perf_counter()
    d = load_data(None)
    config = make_config("advmoe", d, data_arg=None, epochs=4, seed=0)
    with torch_threads(1), run_directory(Path(out_dir) / "run") as run:
        run.write_config(config)
        m = _train_and_report(run, config, d, {"accelerator": "cpu", "devices": 1}, None, True, 0)
    share = m["expert_share_by_epoch"][-1] if m["expert_share_by_epoch"] else []
    return [
        {
            "domain": "vision",
            "task": f"adversarially robust digits (8x8, L-inf eps {config['train']['eps']})",
            "model": "advmoe",
            "metric": "PGD-10 robust accuracy (%)",
            "value": round(100 * m["pgd10_acc"], 1),
            "seconds": round(time.perf_counter() - start, 1),
            "note": f"clean {100 * m['clean_acc']:.1f}%, {config['train']['epochs']} epochs, "
            f"{m['flops'] / 1e6:.2f} MFLOPs/img, expert shares "
            + "/".join(f"{s:.2f}" for s in share),
        }
    ]


SYSTEM = VisionSystem(
    name="advmoe",
    help="AdvMoE robust MoE-CNN: channel-group experts, hard top-1 router, alternating TRADES",
    models=MODELS,
    train=train,
    evaluate=evaluate,
    compare=compare,
    demo=demo,
    verbs={"attack": attack},
)
