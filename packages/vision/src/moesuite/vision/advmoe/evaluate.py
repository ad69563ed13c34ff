"""Robustness and cost of a trained network: clean and PGD accuracy, router attack, FLOPs, latency.

- clean accuracy on the held-out images;
- robust accuracy under PGD-10 and PGD-50 (L-infinity, random start, ``restarts`` starts, the
  same step size and seeds, so PGD-50 is never weaker than PGD-10), attacking the whole model,
  routers included;
- router-only attack: accuracy on images that push every router away from its clean choice,
  and the fraction of routing decisions it flips;
- inference FLOPs per image (``torch.utils.flop_counter``: the convolutions actually run, i.e.
  the chosen expert only, plus the router), parameters, CPU latency (batch of one, median);
- expert usage per class (share of images of each class sent to each expert, averaged over the
  model's routers).
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from moesuite.vision.advmoe.attacks import check_attack_args, logits_of, pgd, router_attack
from moesuite.vision.advmoe.model import AdvResNet, expert_choices

__all__ = [
    "accuracy",
    "attack_metrics",
    "flops_per_image",
    "latency_ms",
    "usage_per_class",
    "evaluate",
]


def _batches(n: int, size: int):
    for lo in range(0, n, size):
        yield slice(lo, min(n, lo + size))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Top-1 accuracy (model in eval mode)."""
    model.eval()
    right = 0
    for s in _batches(len(x), batch_size):
        right += int((logits_of(model(x[s])).argmax(1) == y[s]).sum())
    return right / max(1, len(x))


def attack_metrics(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int,
    restarts: int = 1,
    target: str = "model",
    seed: int = 0,
    batch_size: int = 250,
) -> dict[str, float | None]:
    """Accuracy under an attack, and the share of routing decisions it flips.

    Args:
        model: the attacked network (eval mode is set here).
        x: clean images ``[N, C, H, W]`` in ``[0, 1]``.
        y: labels ``[N]``.
        eps: L-infinity radius.
        steps: attack steps.
        restarts: random starts per image.
        target: ``"model"``: PGD on the classifier's loss through the whole model (routers
            included); ``"router"``: the router-only attack (``acc`` is None for a dense model).
        seed: seeds the random starts (batch ``i`` uses ``seed + i``).
        batch_size: images attacked at once.

    Returns:
        ``{"acc": accuracy on the attacked images, "flip_rate": share of (router, image)
        decisions that differ from the clean ones (None without routers)}``.
    """
    check_attack_args(eps, steps, restarts)
    if target not in ("model", "router"):
        raise ValueError(f"target must be 'model' or 'router', got {target!r}.")
    moe = bool(getattr(model, "is_moe", False))
    if target == "router" and not moe:
        return {"acc": None, "flip_rate": None}
    model.eval()
    right, flips, decisions = 0, 0, 0
    for i, s in enumerate(_batches(len(x), batch_size)):
        if target == "model":
            x_adv = pgd(model, x[s], y[s], eps, steps, restarts, seed=seed + i)
        else:
            x_adv = router_attack(model, x[s], eps, steps, restarts, seed=seed + i)
        with torch.no_grad():
            clean, adv = model(x[s]), model(x_adv)
        right += int((logits_of(adv).argmax(1) == y[s]).sum())
        if moe:
            a = expert_choices(adv.routing, len(x_adv))
            flips += int((a != expert_choices(clean.routing, len(x_adv))).sum())
            decisions += a.numel()
    return {"acc": right / max(1, len(x)), "flip_rate": flips / decisions if moe else None}


@torch.no_grad()
def flops_per_image(model: nn.Module, x: torch.Tensor) -> float:
    """Inference FLOPs per image (multiply-adds count 2), as executed: chosen experts only."""
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() / len(x)


@torch.no_grad()
def latency_ms(model: nn.Module, x: torch.Tensor, rounds: int = 30) -> float:
    """Median CPU time of one forward pass on one image, in milliseconds (after a warm-up)."""
    model.eval()
    one = x[:1]
    for _ in range(3):
        model(one)
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        model(one)
        times.append(time.perf_counter() - t)
    return 1e3 * sorted(times)[len(times) // 2]


@torch.no_grad()
def usage_per_class(
    model: AdvResNet, x: torch.Tensor, y: torch.Tensor, num_classes: int
) -> list[list[float]] | None:
    """``[class][expert]`` share of each class's images per expert (mean over routers)."""
    if not model.is_moe:
        return None
    model.eval()
    counts = torch.zeros(num_classes, model.experts)
    for s in _batches(len(x), 500):
        choice = expert_choices(model(x[s]).routing, len(x[s]))  # [R, B]
        for row in choice:
            counts.index_put_((y[s], row), torch.ones(len(row)), accumulate=True)
    return (counts / counts.sum(1, keepdim=True).clamp_min(1)).tolist()


def evaluate(
    model: AdvResNet,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float = 0.3,
    steps: tuple[int, ...] = (10, 50),
    restarts: int = 1,
    robust_n: int | None = None,
    num_classes: int = 10,
    seed: int = 0,
) -> dict[str, Any]:
    """Every metric of the module docstring; PGD on the first ``robust_n`` images (all: None)."""
    for s in steps:
        check_attack_args(eps, s, restarts)
    xr, yr = (x, y) if robust_n is None else (x[:robust_n], y[:robust_n])
    metrics: dict[str, Any] = {
        "clean_acc": accuracy(model, x, y),
        "eps": eps,
        "restarts": restarts,
        "n_clean": len(x),
        "n_robust": len(xr),
    }
    for s in steps:
        metrics[f"pgd{s}_acc"] = attack_metrics(model, xr, yr, eps, s, restarts, seed=seed)["acc"]
    routed = attack_metrics(model, xr, yr, eps, max(steps), restarts, "router", seed)
    metrics["router_attack_acc"], metrics["router_flip_rate"] = routed["acc"], routed["flip_rate"]
    metrics["flops"] = flops_per_image(model, x[:64])
    metrics["params"] = sum(p.numel() for p in model.parameters())
    metrics["latency_ms"] = latency_ms(model, x)
    metrics["usage_per_class"] = usage_per_class(model, x, y, num_classes)
    return metrics
