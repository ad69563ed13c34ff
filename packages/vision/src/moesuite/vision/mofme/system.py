"""MoFME behind ``moesuite vision``: train, eval, compare, restore and the demo row.

Every function validates its inputs before it writes anything; run directories are written
atomically and a restored folder appears only when every image is done.

``SYSTEM`` is built on first access (a module ``__getattr__``): ``moesuite.vision.systems``
imports this module while it builds its registry, so importing it here at module level would
make importing this module first (doctests do) a circular import.
"""

from __future__ import annotations

import datetime as _dt
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moesuite.vision.systems import CommandResult, VisionSystem

__all__ = ["SYSTEM", "train", "evaluate", "compare", "restore", "demo"]  # noqa: F822


def _result(run_dir: Path, metrics: dict[str, Any], summary: str) -> CommandResult:
    from moesuite.vision.systems import CommandResult

    return CommandResult(run_dir, metrics, summary)


# options the CLI may pass that only some models take
_MOE_ONLY = ("experts", "uar")
_MOFME_ONLY = ("modulation",)


def _model_options(model: str, experts, modulation, uar) -> dict[str, Any]:
    given = {"experts": experts, "modulation": modulation, "uar": uar}
    for name in _MOE_ONLY + _MOFME_ONLY:
        if given[name] is None:
            continue
        if model == "dense-restorer" or (name in _MOFME_ONLY and model != "mofme"):
            owner = "mofme" if name in _MOFME_ONLY else "the MoE models (mofme, moe-restorer)"
            flag = "--uar/--no-uar" if name == "uar" else f"--{name}"
            raise ValueError(f"{flag} applies to {owner} only, not to {model}.")
    if modulation is not None:
        from moesuite.vision.mofme.experts import MODULATIONS

        if modulation not in MODULATIONS:
            raise ValueError(f"--modulation {modulation!r}: expected one of {list(MODULATIONS)}.")
    return {k: v for k, v in given.items() if v is not None}


def _budget(model: str, data, epochs, steps, batch_size, lr, seed, threads, options):
    from moesuite.vision.mofme.training import TrainConfig

    if epochs is not None and steps is not None:
        raise ValueError("--epochs and --steps both set the training length; give one of them.")
    kwargs: dict[str, Any] = {"model": model, "data": data, "seed": seed, "model_options": options}
    if steps is not None:
        kwargs["steps"] = steps
    if epochs is not None:
        kwargs["steps"] = epochs * TrainConfig.steps_per_epoch
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    if lr is not None:
        kwargs["lr"] = lr
    if threads is not None:
        kwargs["threads"] = threads
    if data is not None and not Path(data).exists():
        raise FileNotFoundError(
            f"--data {data}: no such folder (expected a folder of clean photos or one with "
            "degraded/ and clean/ subfolders)."
        )
    return TrainConfig(**kwargs)


def train(
    model: str,
    *,
    data: Path | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    experts: int | None = None,
    modulation: str | None = None,
    uar: bool | None = None,
    threads: int | None = None,
    device: str = "auto",
    devices: str = "auto",
    strategy: str = "auto",
    resume: Path | None = None,
    seed: int = 0,
    out: Path | None = None,
    quiet: bool = False,
) -> CommandResult:
    """Train a restorer (quick default: 300 steps on 48 px crops, about two minutes)."""
    from moesuite.vision.mofme.training import resume_restorer, train_restorer

    if resume is not None:
        from moesuite.core.training import resumable_config

        resumable_config(resume, expect={"system": "mofme", "model": model})
        result = resume_restorer(
            resume, device=device, devices=devices, strategy=strategy, quiet=quiet
        )
    else:
        options = _model_options(model, experts, modulation, uar)
        cfg = _budget(model, data, epochs, steps, batch_size, lr, seed, threads, options)
        result = train_restorer(
            cfg, out=out, device=device, devices=devices, strategy=strategy, quiet=quiet
        )
    m = result.metrics
    if not m:  # a DDP worker rank
        return _result(result.run_dir, m, "")
    per = ", ".join(f"{w} {v:.2f}" for w, v in m["val_psnr"].items())
    inp = ", ".join(f"{w} {v:.2f}" for w, v in m["val_input_psnr"].items())
    summary = (
        f"{model}: validation PSNR {m['val_psnr_mean']:.2f} dB ({per}; input {inp}); "
        f"{m['parameters']['total']:,} parameters ({m['parameters']['moe_blocks']:,} in the "
        f"feed-forward blocks); {m['steps']} steps in {m['train_seconds']:.0f} s"
    )
    return _result(result.run_dir, m, summary)


def _test_data(data: Path | None, quiet: bool):
    """The cached Kodak24 weather test set, a user's paired folders, or their clean photos."""
    from moesuite.vision.data.paired import is_paired_folder, load_pairs
    from moesuite.vision.data.paths import shared_path
    from moesuite.vision.data.restoration import TEST_SET, weather_test_set

    if data is not None and is_paired_folder(data):
        return load_pairs(data), f"{data} (paired)"
    folder = Path(data) if data is not None else shared_path("images", TEST_SET)
    if not quiet:
        print(f"test set: {folder} under rain, haze and snow (synthesised once, then cached)")
    return weather_test_set(folder), f"{folder} + synthesised weather"


def evaluate(
    run: Path,
    *,
    data: Path | None = None,
    out: Path | None = None,
    threads: int | None = None,
    device: str = "auto",
    seed: int = 0,
    quiet: bool = False,
) -> CommandResult:
    """Test a run: PSNR/SSIM per weather, routing statistics, parameters, FLOPs, CPU time."""
    from moesuite.core.training import run_directory, torch_threads
    from moesuite.vision.data.restoration import WeatherTestSet
    from moesuite.vision.mofme.evaluate import (
        count_parameters,
        evaluate_pairs,
        evaluate_test_set,
        flops_per_pixel,
        time_inference,
    )
    from moesuite.vision.mofme.training import load_run

    model, config = load_run(run)
    _check_device(device)
    tile = int(config["train"]["crop"])
    test, source = _test_data(data, quiet)
    path = Path(out) if out is not None else Path(run) / f"eval-{_stamp()}"
    with torch_threads(threads):
        if isinstance(test, WeatherTestSet):
            metrics = evaluate_test_set(model, test, tile, progress=not quiet)
        else:
            metrics = evaluate_pairs(model, test, tile)
    metrics.update(
        {
            "data": source,
            "parameters": count_parameters(model),
            "flops_per_pixel": flops_per_pixel(model, tile),
            "cpu_seconds_16_tiles": time_inference({"m": model}, tile, rounds=3)["m"],
        }
    )
    with run_directory(path) as rd:
        rd.write_config({"system": "mofme", "model": config["model"], "run": str(run)})
        rd.write_metrics(metrics)
        if isinstance(test, WeatherTestSet):
            _test_strip(rd.plot_path("test_strip"), model, test, tile)
    text = f"{config['model']}: test PSNR {metrics['psnr_mean']:.2f} dB"
    if "psnr" in metrics:
        text += " (" + ", ".join(f"{w} {v:.2f}" for w, v in metrics["psnr"].items()) + ")"
    text += f", SSIM {metrics['ssim_mean']:.4f}; input {metrics['input_psnr_mean']:.2f} dB"
    if "clean_input_psnr" in metrics:
        text += f"; already-clean input kept at {metrics['clean_input_psnr']:.1f} dB"
    return _result(rd.final_path, metrics, text)


def _test_strip(png: Path, model, test, tile: int, images: int = 2) -> None:
    from moesuite.vision.mofme.evaluate import as_float, restore_image, save_strip

    rows, labels = [], []
    for w in test.weathers:
        for i in range(min(images, len(test.names))):
            d = as_float(test.degraded[w][i])
            rows.append([d, restore_image(model, d, tile), as_float(test.clean[i])])
            labels.append(f"{test.names[i]} {w}")
    save_strip(png, rows, ["degraded", "restored", "clean"], labels, max_side=200)


def _check_device(device: str) -> None:
    if device in ("cuda", "gpu"):
        raise ValueError(
            f"--device {device}: MoFME evaluation and restoration run on the CPU; use --device cpu."
        )


def _stamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def compare(
    models: list[str],
    *,
    data: Path | None = None,
    seeds: int | None = None,
    seed: int = 0,
    epochs: int | None = None,
    steps: int | None = None,
    batch_size: int | None = None,
    quiet: bool = False,
    experts: int | None = None,
    modulation: str | None = None,
    uar: bool | None = None,
    threads: int | None = None,
    device: str = "auto",
    out: Path | None = None,
) -> CommandResult:
    """Train and test several restorers at one budget; a table, JSON lines and an image strip."""
    import json

    from moesuite.core.training import run_directory
    from moesuite.vision.data.restoration import WeatherTestSet
    from moesuite.vision.mofme.compare import (
        Variant,
        markdown_table,
        run_variant,
        strip,
        summarise,
        timing_rows,
    )
    from moesuite.vision.mofme.model import MODELS

    for m in models:
        MODELS.get(m)
    variants = []
    for m in dict.fromkeys(models):
        opts = _model_options(
            m,
            experts if m != "dense-restorer" else None,
            modulation if m == "mofme" else None,
            uar if m != "dense-restorer" else None,
        )
        variants.append(Variant(m, opts))
    budget = _budget(models[0], data, epochs, steps, batch_size, None, seed, threads, {})
    test, source = _test_data(data, quiet)
    path = Path(out) if out is not None else Path("runs") / "vision" / "compare" / _stamp()
    rows = []
    with run_directory(path) as rd:
        for s in range(seed, seed + (seeds or 1)):
            for v in variants:
                if not quiet:
                    print(f"training {v.label} (seed {s})...")
                row = run_variant(v, s, budget, test, rd.path / f"{v.label}-s{s}", quiet)
                rows.append(row)
                with open(rd.file("results.jsonl"), "a") as fh:
                    fh.write(json.dumps(row, default=str) + "\n")
        firsts = {v.label: rd.path / f"{v.label}-s{seed}" for v in variants}
        timings = timing_rows(firsts, budget.crop, rounds=3)
        summary = summarise(rows)
        table = markdown_table(summary, timings)
        rd.file("table.md").write_text(f"Data: {source}\n\n" + table)
        rd.write_metrics({"summary": summary, "timing": timings})
        if isinstance(test, WeatherTestSet):
            strip(rd.plot_path("strip"), firsts, test, budget.crop)
    return _result(rd.final_path, {"summary": summary}, table)


def restore(
    run: Path,
    *,
    images: Path,
    tile: int | None = None,
    threads: int | None = None,
    device: str = "auto",
    out: Path | None = None,
) -> CommandResult:
    """Restore an image or every image of a folder (any size, by tiles) into ``out``."""
    from moesuite.core.training import torch_threads
    from moesuite.vision.data.images import list_images, read_image, save_image
    from moesuite.vision.mofme.evaluate import restore_image
    from moesuite.vision.mofme.training import load_run

    images = Path(images)
    if not images.exists():
        raise FileNotFoundError(f"{images}: no such image or folder.")
    model, config = load_run(run)
    _check_device(device)
    tile = int(config["train"]["crop"]) if tile is None else tile
    if tile < model.patch:
        raise ValueError(
            f"--tile {tile} is smaller than the model's {model.patch}px patch; use --tile >= "
            f"{model.patch} (the training crop, {config['train']['crop']}, works best)."
        )
    paths = list_images(images) if images.is_dir() else [images]
    inputs = [(p, read_image(p, channels=3)) for p in paths]  # every image read before writing
    if out is None:
        base = images if images.is_dir() else images.parent / images.stem
        out = base.with_name(base.name + "-restored")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"--out {out} exists and is not empty; choose another folder.")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    start = time.perf_counter()
    try:
        tmp.mkdir(parents=True)
        with torch_threads(threads):
            for p, img in inputs:
                save_image(tmp / f"{p.stem}.png", restore_image(model, img, tile))
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    seconds = time.perf_counter() - start
    sizes = sorted({f"{img.shape[1]}x{img.shape[0]}" for _, img in inputs})
    summary = (
        f"restored {len(inputs)} image(s) ({', '.join(sizes[:4])}) with {config['model']} "
        f"in {seconds:.1f} s (tile {tile}) -> {out}"
    )
    return _result(out, {"images": len(inputs), "seconds": seconds}, summary)


def demo(out_dir: Path) -> list[dict[str, Any]]:
    """The ``moesuite demo`` row: a short MoFME training, then one test photo per weather."""
    import numpy as np

    from moesuite.vision.data.images import read_image
    from moesuite.vision.data.paths import shared_path
    from moesuite.vision.data.restoration import TEST_SET
    from moesuite.vision.data.weather import WEATHERS, synthesize
    from moesuite.vision.mofme.evaluate import psnr, restore_image
    from moesuite.vision.mofme.training import TrainConfig, train_restorer

    start = time.perf_counter()
    cfg = TrainConfig(model="mofme", steps=100, steps_per_epoch=50, val_crops=12)
    result = train_restorer(cfg, out=Path(out_dir) / "run", device="cpu", quiet=True)
    clean = read_image(shared_path("images", TEST_SET, "kodim23.png"), channels=3)[:192, :192]
    gains = []
    for i, w in enumerate(WEATHERS):
        degraded = synthesize(clean, w, rng=np.random.default_rng([7, i]))
        restored = restore_image(result.model, degraded, cfg.crop)
        gains.append(psnr(restored, clean) - psnr(degraded, clean))
    m = result.metrics
    return [
        {
            "domain": "vision",
            "task": "all-weather restoration (CBSD68+McMaster crops -> Kodak crop)",
            "model": "mofme",
            "metric": "PSNR gain over input (dB, mean of rain/haze/snow)",
            "value": round(float(np.mean(gains)), 2),
            "seconds": round(time.perf_counter() - start, 1),
            "params": m["parameters"]["total"],
            "note": f"{m['steps']} steps; "
            + ", ".join(f"{w} {g:+.1f}" for w, g in zip(WEATHERS, gains, strict=True)),
        }
    ]


_SYSTEM: list[VisionSystem] = []


def _system() -> VisionSystem:
    from moesuite.vision.mofme.model import MODELS
    from moesuite.vision.systems import VisionSystem  # may ask for SYSTEM again: built once

    if not _SYSTEM:
        _SYSTEM.append(
            VisionSystem(
                name="mofme",
                help="MoFME all-weather restoration: FiLM experts on one shared FFN, "
                "uncertainty-aware router",
                models=MODELS,
                train=train,
                evaluate=evaluate,
                compare=compare,
                demo=demo,
                verbs={"restore": restore},
            )
        )
    return _SYSTEM[0]


def __getattr__(name: str) -> Any:
    if name == "SYSTEM":
        return _system()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
