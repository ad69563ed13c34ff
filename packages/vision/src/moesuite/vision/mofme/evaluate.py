"""Restoration metrics: tiled inference, PSNR/SSIM per weather, routing statistics, cost.

- :func:`restore_image`: any-size inference by overlapping tiles blended with linear ramps.
- :func:`evaluate_test_set`: PSNR and SSIM (scikit-image, data range 1) per weather and averaged
  on a :class:`~moesuite.vision.data.restoration.WeatherTestSet`, the input's PSNR beside them,
  the PSNR of restoring already-clean photos, task-expert mutual information and gate entropy.
- :func:`evaluate_pairs`: the same on users' ``degraded/`` + ``clean/`` pairs.
- :func:`count_parameters`, :func:`flops_per_pixel`, :func:`time_inference` (median of
  interleaved rounds), :func:`save_strip` (before/after image strips as PNG).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moesuite.core import losses
from moesuite.core.recorder import RoutingRecorder
from moesuite.core.training import torch_threads
from moesuite.vision.data.paired import Pair
from moesuite.vision.data.restoration import WeatherTestSet
from moesuite.vision.data.weather import WEATHERS

__all__ = [
    "PSNR_CAP",
    "as_float",
    "psnr",
    "ssim",
    "restore_image",
    "evaluate_test_set",
    "evaluate_pairs",
    "validation_report",
    "count_parameters",
    "flops_per_pixel",
    "time_inference",
    "save_strip",
]

#: PSNR of an exact reconstruction (infinite) is reported as this many dB
PSNR_CAP = 100.0


def psnr(restored: np.ndarray, clean: np.ndarray) -> float:
    """PSNR in dB for images in ``[0, 1]`` (scikit-image, data range 1), capped at 100 dB."""
    mse = float(np.mean((np.asarray(restored, np.float64) - np.asarray(clean, np.float64)) ** 2))
    if mse == 0.0:
        return PSNR_CAP
    from skimage.metrics import peak_signal_noise_ratio

    return min(PSNR_CAP, float(peak_signal_noise_ratio(clean, restored, data_range=1.0)))


def ssim(restored: np.ndarray, clean: np.ndarray) -> float:
    """SSIM of RGB images in ``[0, 1]`` (scikit-image, data range 1, per channel, averaged)."""
    from skimage.metrics import structural_similarity

    if min(clean.shape[:2]) < 7:  # below scikit-image's 7x7 window
        return float("nan")
    return float(structural_similarity(clean, restored, data_range=1.0, channel_axis=2))


def as_float(img: np.ndarray) -> np.ndarray:
    """uint8 images to float32 in ``[0, 1]``; float images as float32."""
    return img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)


def _positions(size: int, tile: int, stride: int) -> list[int]:
    pos = list(range(0, size - tile + 1, stride))
    if pos[-1] != size - tile:
        pos.append(size - tile)
    return pos


def restore_image(
    model: nn.Module,
    image: np.ndarray,
    tile: int,
    overlap: int | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """Restore an RGB image of any size by overlapping ``tile x tile`` tiles.

    Tiles are blended with weights that ramp linearly over the ``overlap`` border (default
    ``tile // 8``); images smaller than a tile are mirror-padded. Returns float32 ``[H, W, 3]``.
    """
    patch = int(getattr(model, "patch", 1))
    if not isinstance(tile, int) or tile < patch:
        raise ValueError(
            f"--tile {tile} is smaller than the model's {patch}px patch; use --tile >= {patch} "
            "(the training crop size works best)."
        )
    image = as_float(np.asarray(image))
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB image [H, W, 3], got shape {image.shape}.")
    H, W = image.shape[:2]
    overlap = tile // 8 if overlap is None else overlap
    x = np.pad(image, ((0, max(0, tile - H)), (0, max(0, tile - W)), (0, 0)), mode="symmetric")
    Hp, Wp = x.shape[:2]
    stride = max(1, tile - overlap)
    boxes = [(y, x0) for y in _positions(Hp, tile, stride) for x0 in _positions(Wp, tile, stride)]
    ramp = np.minimum(
        1.0, np.minimum(np.arange(1, tile + 1), np.arange(tile, 0, -1)) / (overlap + 1)
    )
    window = np.outer(ramp, ramp).astype(np.float32)[:, :, None]
    out = np.zeros_like(x)
    weight = np.zeros((Hp, Wp, 1), dtype=np.float32)
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(boxes), batch_size):
            chunk = boxes[i : i + batch_size]
            tiles = np.stack([x[y : y + tile, x0 : x0 + tile] for y, x0 in chunk])
            batch = torch.from_numpy(tiles.transpose(0, 3, 1, 2).copy()).to(device)
            pred = model(batch).output.clamp(0, 1).cpu().numpy().transpose(0, 2, 3, 1)
            for (y, x0), p in zip(chunk, pred, strict=True):
                out[y : y + tile, x0 : x0 + tile] += p * window
                weight[y : y + tile, x0 : x0 + tile] += window
    return (out / weight)[:H, :W]


class _RoutingTally:
    """Gate mass per (weather, expert) and summed token entropy, per MoE layer."""

    def __init__(self, n_tasks: int):
        self.n_tasks = n_tasks
        self.joint: dict[str, torch.Tensor] = {}
        self.entropy = 0.0
        self.tokens = 0

    def add(self, records: list, task: int) -> None:
        for r in records:
            gates = r.output.plan.to_dense().float().sum(0).cpu()
            joint = self.joint.setdefault(r.name, torch.zeros(self.n_tasks, gates.numel()))
            joint[task] += gates
            T = r.output.probs.shape[0]
            self.entropy += float(losses.routing_entropy(r.output.probs)) * T
            self.tokens += T

    def summary(self) -> dict[str, Any]:
        if not self.joint:
            return {}
        mis, loads = [], {}
        for name, joint in self.joint.items():
            p = joint / joint.sum()
            pw, pe = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
            nz = p > 0
            mis.append(float((p[nz] * (p[nz] / (pw * pe)[nz]).log()).sum()))
            loads[name] = [round(float(v), 4) for v in pe.flatten()]
        mi = float(np.mean(mis))
        return {
            "task_expert_mi": round(mi, 4),
            "task_expert_mi_normalised": round(mi / math.log(self.n_tasks), 4)
            if self.n_tasks > 1
            else None,
            "task_expert_mi_per_layer": [round(m, 4) for m in mis],
            "gate_entropy": round(self.entropy / max(self.tokens, 1), 4),
            "expert_load": loads,
        }


def evaluate_test_set(
    model: nn.Module,
    test: WeatherTestSet,
    tile: int,
    clean_images: int = 4,
    progress: bool = False,
) -> dict[str, Any]:
    """PSNR/SSIM per weather and averaged, input PSNR, clean-input PSNR, routing statistics.

    Args:
        model: a restorer (eval mode).
        test: the synthesised test set.
        tile: tile side for inference.
        clean_images: how many of the clean photos to also restore as they are (a restorer
            should leave them nearly unchanged: ``clean_input_psnr``).
        progress: print one line per weather.
    """
    model.eval()
    tally = _RoutingTally(len(test.weathers))
    out: dict[str, Any] = {"psnr": {}, "ssim": {}, "input_psnr": {}, "input_ssim": {}}
    with RoutingRecorder(model, detach=True) as rec:
        for t, weather in enumerate(test.weathers):
            ps, ss, ips, iss = [], [], [], []
            for degraded, clean in zip(test.degraded[weather], test.clean, strict=True):
                d, c = as_float(degraded), as_float(clean)
                restored = restore_image(model, d, tile)
                tally.add(rec.records, t)
                rec.clear()
                ps.append(psnr(restored, c))
                ss.append(ssim(restored, c))
                ips.append(psnr(d, c))
                iss.append(ssim(d, c))
            out["psnr"][weather], out["ssim"][weather] = _mean(ps), _mean(ss)
            out["input_psnr"][weather], out["input_ssim"][weather] = _mean(ips), _mean(iss)
            if progress:
                print(f"  {weather}: PSNR {out['psnr'][weather]:.2f} dB (input {_mean(ips):.2f})")
        rec.stop()
    out["psnr_mean"] = _mean(list(out["psnr"].values()))
    out["ssim_mean"] = _mean(list(out["ssim"].values()), 4)
    out["input_psnr_mean"] = _mean(list(out["input_psnr"].values()))
    cleans = [as_float(c) for c in test.clean[:clean_images]]
    out["clean_input_psnr"] = _mean([psnr(restore_image(model, c, tile), c) for c in cleans])
    out["images"] = len(test.names)
    out["routing"] = tally.summary()
    return out


def evaluate_pairs(model: nn.Module, pairs: Sequence[Pair], tile: int) -> dict[str, Any]:
    """PSNR/SSIM of restored ``degraded/`` images against ``clean/`` (and of the input)."""
    model.eval()
    ps, ss, ips = [], [], []
    for pair in pairs:
        restored = restore_image(model, pair.degraded, tile)
        ps.append(psnr(restored, pair.clean))
        ss.append(ssim(restored, pair.clean))
        ips.append(psnr(pair.degraded, pair.clean))
    return {
        "psnr_mean": _mean(ps),
        "ssim_mean": _mean(ss, 4),
        "input_psnr_mean": _mean(ips),
        "images": len(pairs),
        "per_image_psnr": {p.name: round(v, 3) for p, v in zip(pairs, ps, strict=True)},
    }


def validation_report(
    model: nn.Module, val: torch.utils.data.TensorDataset, png: Path | None = None
) -> dict[str, Any]:
    """PSNR/SSIM on the fixed validation crops, per weather (``"paired"``: unknown weather)."""
    model.eval()
    degraded, clean, labels = val.tensors
    with torch.no_grad():
        restored = torch.cat([model(d).output.clamp(0, 1) for d in degraded.split(32)])
    to_np = lambda t: t.permute(0, 2, 3, 1).cpu().numpy()  # noqa: E731
    R, C, D = to_np(restored), to_np(clean), to_np(degraded)
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels.tolist()):
        groups.setdefault(WEATHERS[label] if label >= 0 else "paired", []).append(i)
    report = {
        "val_psnr": {g: _mean([psnr(R[i], C[i]) for i in idx]) for g, idx in groups.items()},
        "val_ssim": {g: _mean([ssim(R[i], C[i]) for i in idx], 4) for g, idx in groups.items()},
        "val_input_psnr": {g: _mean([psnr(D[i], C[i]) for i in idx]) for g, idx in groups.items()},
    }
    report["val_psnr_mean"] = _mean(list(report["val_psnr"].values()))
    if png is not None:
        picks = [idx[j] for idx in groups.values() for j in range(min(2, len(idx)))]
        save_strip(
            png,
            [[D[i], R[i], C[i]] for i in picks],
            ["degraded", "restored", "clean"],
            [_label(labels[i].item()) for i in picks],
        )
    return report


def _label(label: int) -> str:
    return WEATHERS[label] if label >= 0 else "paired"


def _mean(values: Sequence[float], digits: int = 3) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return round(float(np.mean(finite)), digits) if finite else float("nan")


# ------------------------------------------------------------------ cost
def count_parameters(model: nn.Module) -> dict[str, int]:
    """Total parameters and those of the feed-forward (dense / MoE / MoFME) blocks."""
    total = sum(p.numel() for p in model.parameters())
    ffns = getattr(model, "ffn_modules", lambda: [])()
    moe = sum(p.numel() for f in ffns for p in f.parameters())
    return {"total": int(total), "moe_blocks": int(moe)}


def flops_per_pixel(model: nn.Module, tile: int = 64) -> float:
    """Forward FLOPs per pixel in eval mode, on one ``tile x tile`` input.

    Counted by ``torch.utils.flop_counter`` (matmuls, convolutions, attention): for a routed
    model, the FLOPs of the experts each token actually visits (active FLOPs).
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    x = torch.rand(1, 3, tile, tile, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return counter.get_total_flops() / (tile * tile)


def time_inference(
    models: dict[str, nn.Module],
    tile: int = 64,
    batch: int = 16,
    rounds: int = 7,
    threads: int = 2,
) -> dict[str, dict[str, float]]:
    """CPU seconds per forward of ``batch`` tiles: median of ``rounds`` interleaved rounds.

    Every round times each model once, in an order that rotates from round to round, so a
    load change on a shared machine hits every model alike.
    """
    x = torch.rand(batch, 3, tile, tile, generator=torch.Generator().manual_seed(0))
    names = list(models)
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch_threads(threads), torch.no_grad():
        for n in names:  # warm-up
            models[n].eval()(x)
        for r in range(rounds):
            for n in names[r % len(names) :] + names[: r % len(names)]:
                start = time.perf_counter()
                models[n](x)
                times[n].append(time.perf_counter() - start)
    return {
        n: {"median_s": float(np.median(t)), "min_s": float(np.min(t)), "rounds": len(t)}
        for n, t in times.items()
    }


def save_strip(
    path: str | Path,
    rows: list[list[np.ndarray]],
    col_labels: Sequence[str],
    row_labels: Sequence[str] = (),
    max_side: int = 160,
) -> Path:
    """A grid of images (rows x columns) with labels, as PNG.

    Images are shown at most ``max_side`` px (nearest-neighbour subsampling) to keep it small.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows, n_cols = len(rows), len(col_labels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.9 * n_cols, 1.9 * n_rows), squeeze=False)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            step = max(1, math.ceil(max(img.shape[:2]) / max_side))
            ax = axes[i][j]
            ax.imshow(np.clip(img[::step, ::step], 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(col_labels[j], fontsize=8)
            if j == 0 and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=56)
    plt.close(fig)
    return path
