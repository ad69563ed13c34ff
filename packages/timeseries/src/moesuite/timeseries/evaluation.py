"""Test metrics on the standardised scale (MSE, MAE per horizon) and routing by patch position."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from moesuite.core.recorder import RoutingRecorder
from moesuite.core.stats import routing_summary

__all__ = ["ForecastErrors", "evaluate_model", "STANDARD_HORIZONS"]

STANDARD_HORIZONS = (96, 192, 336, 720)


@dataclass
class ForecastErrors:
    """Error sums per forecast step, accumulated over windows and channels.

    Attributes:
        sq: ``[H]`` summed squared errors per step.
        abs: ``[H]`` summed absolute errors per step.
        count: values summed per step (windows x channels).
        routing: per MoE layer, ``[N, E]`` assignment counts by patch position and expert.
        routing_stats: per MoE layer, mean of :func:`moesuite.core.stats.routing_summary` over batches.
    """

    sq: np.ndarray
    abs: np.ndarray
    count: int = 0
    routing: dict[str, np.ndarray] = field(default_factory=dict)
    routing_stats: dict[str, dict[str, float]] = field(default_factory=dict)

    def mse(self, horizon: int | None = None) -> float:
        """MSE over the first ``horizon`` steps (all by default)."""
        h = horizon or len(self.sq)
        return float(self.sq[:h].sum() / (self.count * h))

    def mae(self, horizon: int | None = None) -> float:
        """MAE over the first ``horizon`` steps (all by default)."""
        h = horizon or len(self.abs)
        return float(self.abs[:h].sum() / (self.count * h))

    def summary(self, horizons: Iterable[int] = STANDARD_HORIZONS) -> dict[str, object]:
        """``{"mse", "mae", "by_horizon": {h: {"mse", "mae"}}}``; sub-horizons use the same windows' first steps."""
        H = len(self.sq)
        hs = sorted({h for h in horizons if h < H} | {H})
        return {
            "mse": self.mse(), "mae": self.mae(),
            "by_horizon": {str(h): {"mse": self.mse(h), "mae": self.mae(h)} for h in hs},
        }


def _batch_inputs(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return batch["x"], batch["z_past"], batch["z_future"]


@torch.no_grad()
def evaluate_model(model: nn.Module, batches: Iterable[dict[str, torch.Tensor]], n_patches: int | None = None) -> ForecastErrors:
    """Run ``model`` over evaluation batches and accumulate errors and routing.

    Args:
        model: a forecaster (``model(x, z_past, z_future) -> [B, H, C]``).
        batches: dicts with ``x``, ``y``, ``z_past``, ``z_future`` (a DataLoader).
        n_patches: ``N`` tokens per series, to attribute routed tokens to patch positions
            (the MoE layers see ``B * C * N`` tokens in that order).
    """
    was_training = model.training
    model.eval()
    sq = ab = None
    count = 0
    routing: dict[str, torch.Tensor] = {}
    stats: dict[str, list[dict[str, float]]] = {}
    recorder = RoutingRecorder(model, detach=True)
    try:
        for batch in batches:
            recorder.clear()
            recorder.start()
            pred = model(*_batch_inputs(batch))
            recorder.stop()
            err = pred - batch["y"]
            s, a = (err**2).sum((0, 2)).double(), err.abs().sum((0, 2)).double()
            sq = s if sq is None else sq + s
            ab = a if ab is None else ab + a
            count += err.shape[0] * err.shape[2]
            for rec in recorder.records:
                plan = rec.output.plan
                stats.setdefault(rec.name, []).append(routing_summary(rec.output))
                if n_patches:
                    pos = plan.token_idx % n_patches
                    flat = pos * plan.num_experts + plan.expert_idx
                    c = torch.bincount(flat, minlength=n_patches * plan.num_experts).reshape(n_patches, plan.num_experts)
                    routing[rec.name] = routing.get(rec.name, torch.zeros_like(c)) + c
    finally:
        recorder.stop()
        model.train(was_training)
    if sq is None or ab is None:
        raise ValueError("no evaluation windows: the split is empty.")
    return ForecastErrors(
        sq=sq.numpy(), abs=ab.numpy(), count=count,
        routing={k: v.numpy() for k, v in routing.items()},
        routing_stats={k: _mean_dicts(v) for k, v in stats.items()},
    )


def _mean_dicts(rows: Sequence[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
