"""Few-shot adaptation: fit a fresh context per new environment, everything else frozen.

For each new environment, ``starts`` candidate contexts are optimised in parallel from the
K-means centres of the trained contexts (for MixER these sit in the different experts'
regions of context space, so every expert gets a chance: the gate's top-1 choice is not
differentiable); the candidate with the lowest loss on the environment's few trajectories is
kept. Only the new contexts receive gradients; the model's parameters and buffers are left
bitwise unchanged (their ``requires_grad`` flags are restored afterwards). The baselines adapt
with the same procedure and the same number of starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from moesuite.physics.mixer.gate import kmeans
from moesuite.physics.mixer.model import MixERModel
from moesuite.physics.mixer.trajectories import TrajectoryBatch, trajectory_mse

__all__ = ["AdaptConfig", "adapt_contexts", "frozen"]


@dataclass(frozen=True, kw_only=True)
class AdaptConfig:
    """Settings of context adaptation.

    Attributes:
        steps: Adam steps on the new contexts.
        lr: Adam learning rate.
        starts: candidate starting contexts per environment (K-means centres of the trained
            contexts); ``None`` uses one per expert of the model, or ``default_starts``.
        default_starts: starts when the model has a single expert and ``starts`` is ``None``.
        seed: K-means seeding.
    """

    steps: int = 300
    lr: float = 1e-2
    starts: int | None = None
    default_starts: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"steps must be an int >= 0, got {self.steps!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}.")
        for name in ("starts", "default_starts"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive int, got {value!r}.")


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Temporarily set ``requires_grad=False`` on every parameter and switch to eval mode."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    was_training = module.training
    for p, _ in flags:
        p.requires_grad_(False)
    module.eval()
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        module.train(was_training)


def adapt_contexts(
    model: MixERModel, batch: TrajectoryBatch, config: AdaptConfig | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fit one new context per environment of ``batch``; the model is not modified.

    Args:
        model: a trained model.
        batch: the new environments' few trajectories (``y[A, s, T, D]``).
        config: adaptation settings.

    Returns:
        ``(contexts[A, C], fit_mse[A])``: the best candidate of each environment and its loss.

    Examples:
        >>> import torch
        >>> from moesuite.physics.mixer.model import MixERConfig
        >>> _ = torch.manual_seed(0)
        >>> config = MixERConfig(state_dim=2, num_envs=4, num_experts=2, context_dim=3, hidden=8)
        >>> model = MixERModel(config)
        >>> y = torch.randn(2, 1, 5, 2)
        >>> batch = TrajectoryBatch(y, torch.full((2,), 0.1), torch.ones(2, 2))
        >>> ctx, mse = adapt_contexts(model, batch, AdaptConfig(steps=3))
        >>> tuple(ctx.shape), tuple(mse.shape)
        ((2, 3), (2,))
    """
    cfg = config or AdaptConfig()
    A = batch.y.shape[0]
    trained = model.contexts.detach()
    K = (
        cfg.starts
        if cfg.starts is not None
        else (model.num_experts if model.num_experts > 1 else cfg.default_starts)
    )
    K = min(K, trained.shape[0])
    _, centres = kmeans(trained, K, generator=torch.Generator().manual_seed(cfg.seed))
    ctx = centres.to(trained.dtype).repeat(A, 1).clone().requires_grad_(True)  # [A * K, C]
    rep = batch.repeat(K)
    y0, T = rep.y[:, :, 0], rep.y.shape[2]
    opt = torch.optim.Adam([ctx], lr=cfg.lr)
    with frozen(model):
        for _ in range(cfg.steps):
            pred = model(y0, rep.dt, T, rep.mask, context=ctx).output
            per = trajectory_mse(pred, rep.y, rep.mask)
            per = torch.nan_to_num(per, nan=1e6, posinf=1e6)
            opt.zero_grad(set_to_none=True)
            per.sum().backward()
            opt.step()
        with torch.no_grad():
            pred = model(y0, rep.dt, T, rep.mask, context=ctx).output
            per = torch.nan_to_num(trajectory_mse(pred, rep.y, rep.mask), nan=float("inf")).reshape(
                A, K
            )
    best = per.argmin(1)
    chosen = ctx.detach().reshape(A, K, -1)[torch.arange(A), best]
    return chosen, per[torch.arange(A), best]
