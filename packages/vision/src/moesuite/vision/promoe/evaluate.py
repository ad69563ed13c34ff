"""Evaluation of a class-conditional diffusion model, with a feature network trained here.

For each guidance scale: ``per_class`` images of every class are generated and compared with
the held-out images in the feature space of :class:`~moesuite.vision.nn.feature_net.FeatureNet`
(trained once on the training images and cached): FID and KID (torchmetrics, the feature net as
the custom feature extractor), precision and recall by k-NN radii (Kynkaanniemi et al. 2019,
k = 3), the class accuracy of the samples under the feature net's classifier, and the sampling
time. Once per model: the mutual information between a token's class and its expert
(``class_expert_mi``, nats, the mean over MoE layers of held-out images noised at three
levels), activated / total parameters and FLOPs per image (``torch.utils.flop_counter``).
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from moesuite.core import MoELayer
from moesuite.core.routers import ConditionalRouter
from moesuite.vision.nn.feature_net import FeatureNet, feature_net_for
from moesuite.vision.promoe.data import ImageData
from moesuite.vision.promoe.diffusion import Objective, sample

__all__ = [
    "evaluate_model",
    "generative_metrics",
    "precision_recall",
    "class_expert_mi",
    "flops_per_image",
    "image_grid",
    "write_sample_grids",
]

#: noise levels (times in (0, 1)) at which the class-expert mutual information is measured
MI_TIMES = (0.25, 0.5, 0.75)


def _features(net: FeatureNet, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([net(b) for b in images.split(batch_size)]).double()


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (k-NN radius manifolds) of ``fake`` against ``real`` features.

    Precision: fraction of fake samples inside the union of the real samples' k-NN balls;
    recall: fraction of real samples inside the union of the fake samples' balls.

    Examples:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> real = torch.randn(200, 4, generator=g)
        >>> p, r = precision_recall(real, real + 100)
        >>> p, r
        (0.0, 0.0)
        >>> p, r = precision_recall(real, torch.randn(200, 4, generator=g))
        >>> p > 0.8 and r > 0.8
        True
    """

    def radii(x: torch.Tensor) -> torch.Tensor:
        d = torch.cdist(x, x)
        return d.kthvalue(min(k + 1, x.shape[0]), dim=1).values  # +1: the point itself

    def inside(points: torch.Tensor, centres: torch.Tensor, r: torch.Tensor) -> float:
        return float((torch.cdist(points, centres) <= r[None]).any(1).double().mean())

    real, fake = real.double(), fake.double()
    return inside(fake, real, radii(real)), inside(real, fake, radii(fake))


def generative_metrics(
    net: FeatureNet,
    real: torch.Tensor,
    fake: torch.Tensor,
    fake_labels: torch.Tensor,
    seed: int = 0,
) -> dict[str, float]:
    """FID, KID (mean, std), precision, recall and class accuracy of ``fake`` vs ``real``.

    Images are ``[N, C, H, W]`` in ``[0, 1]``.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    net = net.eval()
    subset = min(1000, real.shape[0], fake.shape[0])
    with warnings.catch_warnings(), torch.random.fork_rng():
        torch.manual_seed(seed)  # KID draws its subsets from torch's generator
        warnings.filterwarnings("ignore", message=r".*will save all extracted features.*")
        fid = FrechetInceptionDistance(feature=net, normalize=True)
        kid = KernelInceptionDistance(feature=net, subset_size=subset, subsets=50, normalize=True)
        for metric in (fid, kid):
            for chunk in real.split(500):
                metric.update(chunk, real=True)
            for chunk in fake.split(500):
                metric.update(chunk, real=False)
        fid_value = float(fid.compute())
        kid_mean, kid_std = (float(v) for v in kid.compute())
    precision, recall = precision_recall(_features(net, real), _features(net, fake))
    accuracy = float((net.predict(fake) == fake_labels).double().mean())
    return {
        "fid": fid_value,
        "kid": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "class_accuracy": accuracy,
    }


def _routed_experts(layer: MoELayer) -> int:
    r = layer.router
    return r.num_routed_experts if isinstance(r, ConditionalRouter) else r.num_experts


def _mutual_information(joint: torch.Tensor) -> tuple[float, float]:
    """MI (nats) of a count table and MI over ``min(H(row), H(col))`` (0 when that is 0)."""
    p = joint.double() / joint.sum().clamp_min(1)
    pr, pc = p.sum(1, keepdim=True), p.sum(0, keepdim=True)
    nz = p > 0
    mi = float((p[nz] * (p[nz] / (pr @ pc)[nz]).log()).sum())

    def entropy(q: torch.Tensor) -> float:
        q = q[q > 0]
        return float(-(q * q.log()).sum())

    h = min(entropy(pr.flatten()), entropy(pc.flatten()))
    return mi, (mi / h if h > 0 else 0.0)


@torch.no_grad()
def class_expert_mi(
    model: nn.Module,
    objective: Objective,
    images: torch.Tensor,
    labels: torch.Tensor,
    times: tuple[float, ...] = MI_TIMES,
    seed: int = 0,
) -> dict[str, Any]:
    """Mutual information between the class of a token's image and the expert it is routed to.

    Images (``[0, 1]``) are noised at each time of ``times`` and run with their true labels;
    for every MoE layer the (class, routed expert) pairs of its assignments are counted. Returns
    ``{"mi", "nmi", "per_layer_mi"}`` (means over noise levels; ``mi``/``nmi`` also over layers);
    an empty dict for a dense model.
    """
    layers = [b.mlp for b in model.blocks if isinstance(b.mlp, MoELayer)]
    if not layers:
        return {}
    model.eval()
    C = int(labels.max()) + 1
    tables = [torch.zeros(C, _routed_experts(layer)) for layer in layers]
    g = torch.Generator().manual_seed(seed)
    x0 = images * 2 - 1
    L = model.num_tokens
    per_time = []
    for level in times:
        for t_ in tables:
            t_.zero_()
        for xb, yb in zip(x0.split(500), labels.split(500), strict=True):
            noise = torch.randn(xb.shape, generator=g)
            x_t, t, _ = objective.corrupt(xb, noise, torch.full((xb.shape[0],), level))
            out = model(x_t, t, yb)
            for table, r in zip(tables, out.routing, strict=True):
                keep = r.plan.expert_idx < table.shape[1]
                cls = yb[r.plan.token_idx[keep] // L]
                table.index_put_(
                    (cls, r.plan.expert_idx[keep]), torch.ones(int(keep.sum())), accumulate=True
                )
        per_time.append([_mutual_information(t_) for t_ in tables])
    mi = np.array([[m for m, _ in row] for row in per_time])  # [times, layers]
    nmi = np.array([[n for _, n in row] for row in per_time])
    return {
        "mi": float(mi.mean()),
        "nmi": float(nmi.mean()),
        "per_layer_mi": mi.mean(0).tolist(),
        "max_mi": math.log(min(C, tables[0].shape[1])),
    }


def _sdpa_flops(*args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    q, k = args[0], args[1]
    B, H, Lq, D = q
    return 4 * B * H * Lq * k[2] * D  # Q K^T and A V


def flops_per_image(model: nn.Module) -> int:
    """Forward FLOPs of one conditional image (``torch.utils.flop_counter``).

    CPU attention kernels, which the counter does not know, are added by ``4 B H L^2 d``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    custom = {}
    for name in ("_scaled_dot_product_flash_attention_for_cpu",):
        op = getattr(aten, name, None)
        if op is not None:
            custom[op] = _sdpa_flops
    model.eval()
    n = 4
    x = torch.zeros(n, model.in_channels, *model.image_size)
    with FlopCounterMode(display=False, custom_mapping=custom) as counter, torch.no_grad():
        model(x, torch.full((n,), 500.0), torch.arange(n) % model.num_classes)
    return int(counter.get_total_flops() // n)


def evaluate_model(
    model: nn.Module,
    objective: Objective,
    data: ImageData,
    feature_dir: str | Path,
    cfgs: tuple[float, ...] = (1.0, 1.5),
    steps: int = 25,
    per_class: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[dict[str, Any], dict[float, tuple[torch.Tensor, torch.Tensor]]]:
    """Every metric of the module docstring; returns ``(report, {cfg: (images, labels)})``."""
    from tqdm.auto import tqdm

    net, net_info = feature_net_for(
        data.train_images,
        data.train_labels,
        data.held_images,
        data.held_labels,
        feature_dir,
        name=data.name,
    )
    held_per_class = int(torch.bincount(data.held_labels).min())
    n_class = per_class or held_per_class
    labels = torch.arange(data.num_classes).repeat_interleave(n_class)
    report: dict[str, Any] = {
        "feature_net": {k: net_info[k] for k in ("held_out_accuracy", "path")},
        "sampling_steps": steps,
        "samples_per_class": n_class,
    }
    samples = {}
    for cfg in cfgs:
        g = torch.Generator().manual_seed(seed)
        bar = tqdm(total=len(labels), desc=f"sampling cfg {cfg}", disable=not progress, leave=False)
        start = time.perf_counter()
        fake = sample(
            model,
            objective,
            labels,
            cfg=cfg,
            steps=steps,
            generator=g,
            progress=lambda n, bar=bar: bar.update(n - bar.n),
        )
        seconds = time.perf_counter() - start
        bar.close()
        m = generative_metrics(net, data.held_images, fake, labels, seed=seed)
        m["sampling_seconds_per_image"] = seconds / len(labels)
        report[f"cfg_{cfg}"] = m
        samples[cfg] = (fake, labels)
    report["class_expert"] = class_expert_mi(
        model, objective, data.held_images, data.held_labels, seed=seed
    )
    report["parameters"] = model.parameter_counts()
    report["flops_per_image"] = flops_per_image(model)
    return report, samples


def image_grid(images: torch.Tensor, rows: int) -> np.ndarray:
    """``[N, C, H, W]`` in ``[0, 1]`` -> one ``[rows*(H+1)+1, cols*(W+1)+1, C]`` array."""
    N, C, H, W = images.shape
    cols = math.ceil(N / rows)
    grid = np.ones(((H + 1) * rows + 1, (W + 1) * cols + 1, C), dtype=np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        grid[1 + r * (H + 1) : 1 + r * (H + 1) + H, 1 + c * (W + 1) : 1 + c * (W + 1) + W] = (
            img.permute(1, 2, 0).numpy()
        )
    return grid


def class_rows(images: torch.Tensor, labels: torch.Tensor, per_row: int) -> torch.Tensor:
    """The first ``per_row`` images of each class, class by class (one grid row per class)."""
    picks = [images[labels == c][:per_row] for c in labels.unique(sorted=True)]
    return torch.cat(picks)


def write_sample_grids(
    run: Any, samples: dict[float, tuple[torch.Tensor, torch.Tensor]], num_classes: int
) -> list[Path]:
    """``plots/samples_cfg<s>.png``: one row per class, up to 10 samples each."""
    from moesuite.vision.data.images import save_image

    paths = []
    for cfg, (images, labels) in samples.items():
        rows = class_rows(images, labels, 10)
        paths.append(save_image(run.plot_path(f"samples_cfg{cfg}"), image_grid(rows, num_classes)))
    return paths
