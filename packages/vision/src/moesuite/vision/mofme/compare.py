"""Train and evaluate several restorers at one budget: result rows, a table, an image strip.

Used by ``moesuite vision compare`` and by ``benchmarks/vision/bench_mofme.py``. A *variant* is
a registered model with options (``experts``, ``modulation``, ``uar``); every variant gets the
same :class:`~moesuite.vision.mofme.training.TrainConfig` budget (steps, batch, crop, learning
rate) and is selected on validation only (its best validation checkpoint), then tested.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from moesuite.vision.data.restoration import WeatherTestSet
from moesuite.vision.mofme.evaluate import (
    as_float,
    count_parameters,
    evaluate_pairs,
    evaluate_test_set,
    flops_per_pixel,
    restore_image,
    save_strip,
    time_inference,
)
from moesuite.vision.mofme.training import TrainConfig, load_run, resume_restorer, train_restorer

__all__ = ["Variant", "run_variant", "summarise", "markdown_table", "timing_rows", "strip"]


@dataclass(frozen=True)
class Variant:
    """A model name with its options; ``label`` names it in tables (``mofme-vector-uar-n8``)."""

    model: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A short unique name for the variant."""
        o = self.options
        parts = [self.model]
        if self.model == "mofme":
            parts.append(o.get("modulation", "vector"))
            parts.append("uar" if o.get("uar", True) else "plain")
        elif o.get("uar"):
            parts.append("uar")
        if self.model != "dense-restorer" and o.get("experts") is not None:
            parts.append(f"n{o['experts']}")
        named = ("experts", "modulation", "uar")
        parts += [f"{k}={v}" for k, v in sorted(o.items()) if k not in named]
        return "-".join(parts)


def run_variant(
    variant: Variant,
    seed: int,
    budget: TrainConfig,
    test: WeatherTestSet | Sequence,
    run_dir: Path,
    quiet: bool = True,
) -> dict[str, Any]:
    """Train ``variant`` with ``budget`` (its seed replaced) into ``run_dir`` and test it."""
    cfg = replace(budget, model=variant.model, seed=seed, model_options=dict(variant.options))
    if (run_dir / "checkpoints" / "model.pt").is_file():  # trained by an interrupted invocation
        model, config = load_run(run_dir)
        train_metrics = _read_metrics(run_dir)
    else:
        if (run_dir / "INTERRUPTED").is_file():  # stopped mid-training: continue it
            result = resume_restorer(run_dir, device="cpu", quiet=quiet)
        else:
            result = train_restorer(cfg, out=run_dir, device="cpu", quiet=quiet)
        model, train_metrics = result.model, result.metrics
    if isinstance(test, WeatherTestSet):
        metrics = evaluate_test_set(model, test, tile=cfg.crop)
    else:
        metrics = evaluate_pairs(model, test, tile=cfg.crop)
    return {
        "label": variant.label,
        "model": variant.model,
        "options": variant.options,
        "seed": seed,
        "run_dir": str(run_dir),
        "steps": train_metrics.get("steps"),
        "train_seconds": train_metrics.get("train_seconds"),
        "val_psnr_mean": train_metrics.get("val_psnr_mean"),
        "parameters": count_parameters(model),
        "flops_per_pixel": flops_per_pixel(model, cfg.crop),
        **metrics,
    }


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    from moesuite.core.training import read_json

    return read_json(run_dir / "metrics.json")


def summarise(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows grouped by label: means (and standard deviations over seeds) of the test figures."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["label"], []).append(row)
    out = []
    for label, rs in groups.items():
        entry: dict[str, Any] = {"label": label, "seeds": len(rs)}
        for key in ("psnr_mean", "ssim_mean", "clean_input_psnr", "val_psnr_mean"):
            vals = [r[key] for r in rs if r.get(key) is not None]
            entry[key] = float(np.mean(vals)) if vals else math.nan
            entry[key + "_std"] = float(np.std(vals)) if len(vals) > 1 else 0.0
        for w in rs[0].get("psnr", {}) or {}:
            entry[f"psnr_{w}"] = float(np.mean([r["psnr"][w] for r in rs]))
        mi = [r.get("routing", {}).get("task_expert_mi") for r in rs]
        ent = [r.get("routing", {}).get("gate_entropy") for r in rs]
        entry["task_expert_mi"] = float(np.mean(mi)) if None not in mi and mi else None
        entry["gate_entropy"] = float(np.mean(ent)) if None not in ent and ent else None
        entry["parameters"] = rs[0]["parameters"]
        entry["flops_per_pixel"] = rs[0]["flops_per_pixel"]
        entry["input_psnr_mean"] = rs[0].get("input_psnr_mean")
        out.append(entry)
    return out


def markdown_table(
    summary: Sequence[dict[str, Any]], timings: dict[str, dict[str, float]] | None = None
) -> str:
    """The results as a Markdown table (test PSNR/SSIM mean +- std over seeds, cost)."""
    weathers = [k.removeprefix("psnr_") for k in summary[0] if k.startswith("psnr_")]
    weathers = [w for w in weathers if w not in ("mean", "mean_std")]
    head = ["model", "seeds", "PSNR mean", *[f"PSNR {w}" for w in weathers], "SSIM"]
    head += ["clean-in PSNR", "params", "MoE-block params", "kFLOPs/px", "MI task-expert"]
    head += ["gate entropy"]
    if timings:
        head.append("CPU ms / 16 tiles")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in summary:
        cells = [
            e["label"],
            str(e["seeds"]),
            f"{e['psnr_mean']:.2f} ± {e['psnr_mean_std']:.2f}",
            *[f"{e[f'psnr_{w}']:.2f}" for w in weathers],
            f"{e['ssim_mean']:.4f}",
            f"{e['clean_input_psnr']:.1f}",
            f"{e['parameters']['total'] / 1e3:.0f}k",
            f"{e['parameters']['moe_blocks'] / 1e3:.0f}k",
            f"{e['flops_per_pixel'] / 1e3:.1f}",
            "-" if e["task_expert_mi"] is None else f"{e['task_expert_mi']:.3f}",
            "-" if e["gate_entropy"] is None else f"{e['gate_entropy']:.3f}",
        ]
        if timings:
            t = timings.get(e["label"])
            cells.append("-" if t is None else f"{1e3 * t['median_s']:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def timing_rows(
    run_dirs: dict[str, Path], tile: int, rounds: int = 7, threads: int = 2
) -> dict[str, dict[str, float]]:
    """Interleaved CPU inference timing of one trained run per label (see ``time_inference``)."""
    models = {label: load_run(path)[0] for label, path in run_dirs.items()}
    return time_inference(models, tile=tile, rounds=rounds, threads=threads)


def strip(
    path: Path,
    run_dirs: dict[str, Path],
    test: WeatherTestSet,
    tile: int,
    image: int = 0,
    box: int = 160,
) -> Path:
    """One PNG of a ``box``-px region of test image ``image``.

    Rows are the weathers; columns the degraded input, each model's restoration, the clean photo.
    """
    models = {label: load_run(p)[0] for label, p in run_dirs.items()}
    image = min(image, len(test.names) - 1)
    clean = as_float(test.clean[image])
    H, W = clean.shape[:2]
    y, x = max(0, (H - box) // 2), max(0, (W - box) // 2)
    rows = []
    for w in test.weathers:
        degraded = as_float(test.degraded[w][image])
        row = [degraded[y : y + box, x : x + box]]
        for model in models.values():
            row.append(restore_image(model, degraded, tile)[y : y + box, x : x + box])
        row.append(clean[y : y + box, x : x + box])
        rows.append(row)
    return save_strip(path, rows, ["degraded", *models, "clean"], test.weathers, max_side=box)
