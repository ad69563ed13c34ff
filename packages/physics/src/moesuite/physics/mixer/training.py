"""Meta-training of MixER and its baselines with the core's Lightning plumbing.

One optimisation *outer step* (one Lightning training step) is, as in the authors' proximal
alternating scheme:

1. ``inner_steps[0]`` Adam steps on the contexts only, each minimising
   ``loss + beta_ctx / 2 * ||xi - xi_old||^2``;
2. ``inner_steps[1]`` Adam steps on the model (experts, and a gradient-trained router) only,
   with ``loss + beta_model / 2 * ||theta - theta_old||^2``;

where ``xi_old`` / ``theta_old`` are the values at the start of the outer step. For MixER the
gate is refitted by K-means + least squares (:mod:`moesuite.physics.mixer.gate`, no gradient)
every ``gate_every`` inner steps of both phases. Learning rates decay by ``decay_factor`` at
each fraction of the run in ``decay_at`` (step decay). The loss is the masked trajectory MSE
of all training environments (one batch holds the whole training split). Baselines train
with exactly the same schedule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from moesuite.core.stats import routing_summary
from moesuite.core.training import MoESystem
from moesuite.physics.mixer.bisect import bisect_widest_group, split_schedule
from moesuite.physics.mixer.gate import (
    GateUpdateConfig,
    GateUpdateResult,
    LeastSquaresGate,
    kmeans_least_squares_update,
)
from moesuite.physics.mixer.merge import merge_split_pair
from moesuite.physics.mixer.model import MixERModel

__all__ = ["TrainConfig", "MixERSystem", "TrajectoryBatch", "trajectory_mse", "mixer_step", "make_loader"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation settings shared by MixER and its baselines.

    Attributes:
        epochs: Lightning epochs.
        steps_per_epoch: outer steps per epoch (each sees the whole training split).
        inner_steps: ``(context steps, model steps)`` per outer step.
        lr_model: Adam learning rate of the experts (and gradient-trained router).
        lr_context: Adam learning rate of the contexts (higher than the model's: contexts that
            move fast organise by family before the experts specialise).
        decay_at: fractions of the run at which both learning rates are multiplied by
            ``decay_factor`` (the authors decay by 0.4 at 1/3 and 2/3).
        decay_factor: step-decay factor.
        proximal: ``(beta_context, beta_model)`` proximal weights. The authors use 10 with 12
            inner steps; with our 2 inner steps any beta >= 1 measurably slowed training (the
            pull-back cancels most of each step), so the default is 0: plain alternating steps.
        gate_every: refit MixER's gate every this many inner steps.
        gate_ics: trajectories per environment used to score every expert for the gate update.
        gate_update: K-means / least-squares settings.
        grad_clip: clip the gradient norm of each inner step (0 disables it).
        curriculum: fraction of the run over which the training horizon grows linearly from
            ``min_horizon`` observations to the full trajectory (0: full horizon from the
            start). Short horizons first make long oscillatory trajectories trainable.
        min_horizon: observations (including ``t = 0``) at the start of the curriculum.
        warmup: fraction of the run during which a multi-expert model trains as one shared
            field (every environment on expert 0, no gate updates); expert 0 is then copied
            into every expert. Contexts first organise in one coordinate system, which the
            K-means of the gate update then clusters (0 disables it).
        split_warmup: fraction of the run, right after the tied warm-up, over which the
            experts are untied one bisection at a time (:mod:`moesuite.physics.mixer.bisect`:
            the most spread group of contexts is split by 2-means, its second half gets a copy
            of the parent expert; ``E - 1`` splits evenly spaced, no gate updates meanwhile);
            the gate then starts from the groups' centroids. 0: all experts untied at once.
        merge_ratio: if > 1, after a gate update (every ``merge_every``-th, from
            ``merge_after`` of the run on) the most redundant pair of experts -- each fits the
            other's environments within this loss ratio, the signature of one family split
            over two experts -- is merged: one half's contexts are moved onto the other's
            (:mod:`moesuite.physics.mixer.merge`) and the gate is refitted at once. 0 disables it.
        merge_every: gate updates between merge checks.
        merge_after: fraction of the run before which no merge is tried (the experts need to
            specialise after the warm-up for their losses to tell families apart).
        seed: seeds initialisation, K-means seeding and the least-squares noise.
    """

    epochs: int = 40
    steps_per_epoch: int = 10
    inner_steps: tuple[int, int] = (2, 2)
    lr_model: float = 3e-3
    lr_context: float = 1e-2
    decay_at: tuple[float, ...] = (1 / 3, 2 / 3)
    decay_factor: float = 0.4
    proximal: tuple[float, float] = (0.0, 0.0)
    gate_every: int = 2
    gate_ics: int = 1
    gate_update: GateUpdateConfig = field(default_factory=GateUpdateConfig)
    grad_clip: float = 1.0
    curriculum: float = 0.5
    min_horizon: int = 4
    warmup: float = 0.3
    split_warmup: float = 0.0
    merge_ratio: float = 0.0
    merge_every: int = 10
    merge_after: float = 0.4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "steps_per_epoch", "gate_every", "gate_ics", "merge_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        object.__setattr__(self, "inner_steps", tuple(self.inner_steps))
        object.__setattr__(self, "proximal", tuple(self.proximal))
        object.__setattr__(self, "decay_at", tuple(self.decay_at))
        if len(self.inner_steps) != 2 or any(not isinstance(s, int) or s < 0 for s in self.inner_steps) or sum(self.inner_steps) == 0:
            raise ValueError(f"inner_steps must be two ints >= 0 (context, model), not both 0; got {self.inner_steps!r}.")
        if not (self.lr_model > 0 and self.lr_context > 0):
            raise ValueError(f"learning rates must be > 0, got lr_model={self.lr_model}, lr_context={self.lr_context}.")
        if len(self.proximal) != 2 or min(self.proximal) < 0:
            raise ValueError(f"proximal must be two weights >= 0, got {self.proximal!r}.")
        if any(not 0 < f < 1 for f in self.decay_at) or not 0 < self.decay_factor <= 1:
            raise ValueError("decay_at must hold fractions in (0, 1) and decay_factor must be in (0, 1].")
        if not 0 <= self.curriculum <= 1:
            raise ValueError(f"curriculum must be a fraction in [0, 1], got {self.curriculum!r}.")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}.")
        if not 0 <= self.split_warmup < 1 or self.warmup + self.split_warmup >= 1:
            raise ValueError(f"split_warmup must be a fraction in [0, 1 - warmup), got {self.split_warmup!r}.")
        if not (self.merge_ratio == 0 or self.merge_ratio > 1):
            raise ValueError(f"merge_ratio must be 0 (off) or > 1, got {self.merge_ratio!r}.")
        if not 0 <= self.merge_after < 1:
            raise ValueError(f"merge_after must be a fraction in [0, 1), got {self.merge_after!r}.")
        if not isinstance(self.min_horizon, int) or self.min_horizon < 2:
            raise ValueError(f"min_horizon must be an int >= 2, got {self.min_horizon!r}.")
        if isinstance(self.gate_update, dict):
            object.__setattr__(self, "gate_update", GateUpdateConfig(**self.gate_update))
        if not isinstance(self.gate_update, GateUpdateConfig):
            raise TypeError(f"gate_update must be a GateUpdateConfig, got {type(self.gate_update).__name__}.")

    @property
    def outer_steps(self) -> int:
        """Total outer steps."""
        return self.epochs * self.steps_per_epoch

    @property
    def warmup_steps(self) -> int:
        """Outer steps of the tied warm-up."""
        return int(round(self.warmup * self.outer_steps))

    @property
    def split_steps(self) -> int:
        """Outer steps of the bisection warm-up (after the tied one)."""
        return int(round(self.split_warmup * self.outer_steps))

    def horizon(self, outer_step: int, n_times: int) -> int:
        """Observations trained on at ``outer_step`` (the curriculum), at most ``n_times``."""
        span = self.curriculum * self.outer_steps
        if span <= 0 or outer_step >= span:
            return n_times
        start = min(self.min_horizon, n_times)
        return min(n_times, start + int((n_times - start) * outer_step / span))


@dataclass
class TrajectoryBatch:
    """Trajectories of ``G`` environments: ``y[G, n, T, D]``, ``dt[G]``, ``mask[G, D]`` (float)."""

    y: torch.Tensor
    dt: torch.Tensor
    mask: torch.Tensor

    @classmethod
    def from_numpy(cls, y: Any, dt: Any, mask: Any) -> TrajectoryBatch:
        """Build from numpy arrays (float32 tensors)."""
        return cls(torch.as_tensor(y, dtype=torch.float32), torch.as_tensor(dt, dtype=torch.float32),
                   torch.as_tensor(mask, dtype=torch.float32))

    def first(self, n: int) -> TrajectoryBatch:
        """The first ``n`` trajectories of every environment."""
        return TrajectoryBatch(self.y[:, :n], self.dt, self.mask)

    def until(self, n_times: int) -> TrajectoryBatch:
        """The first ``n_times`` observations of every trajectory."""
        return TrajectoryBatch(self.y[:, :, :n_times], self.dt, self.mask)

    def repeat(self, k: int) -> TrajectoryBatch:
        """Each environment repeated ``k`` times in a row (``[G * k, ...]``)."""
        return TrajectoryBatch(*(t.repeat_interleave(k, dim=0) for t in (self.y, self.dt, self.mask)))


def trajectory_mse(pred: torch.Tensor, true: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[G]`` mean squared error per environment over its real state dimensions.

    ``pred``/``true`` are ``[G, ..., D]``; ``mask`` is ``[G, D]``. The first time (the given
    initial condition) is included; it contributes zero error.
    """
    m = mask.reshape(mask.shape[0], *([1] * (pred.dim() - 2)), mask.shape[1]).to(pred.dtype)
    sq = ((pred - true) ** 2 * m).flatten(1).sum(1)
    count = m.expand_as(pred).flatten(1).sum(1)
    return sq / count


def mixer_step(model: MixERModel, batch: TrajectoryBatch, tied: bool = False,
               experts: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Loss of one batch: mean per-environment trajectory MSE (+ a trained router's aux loss).

    ``tied`` sends every environment to expert 0 (the warm-up of a multi-expert model);
    ``experts [G]`` sends each environment to the given expert (the bisection warm-up).
    """
    y0 = batch.y[:, :, 0]
    if tied and experts is None:
        experts = torch.zeros(batch.y.shape[0], dtype=torch.long, device=y0.device)
    pred, out = model(y0, batch.dt, batch.y.shape[2], batch.mask, experts=experts)
    per_env = trajectory_mse(pred, batch.y, batch.mask)
    mse = per_env.mean()
    result = {"loss": mse, "mse": mse.detach()}
    if out is not None and out.aux:
        result["loss"] = mse + out.aux_loss
        result["aux_loss"] = out.aux_loss.detach()
    return result


class _Repeat(Dataset):
    def __init__(self, batch: TrajectoryBatch, length: int):
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> TrajectoryBatch:
        return self.batch


def make_loader(batch: TrajectoryBatch, steps_per_epoch: int) -> DataLoader:
    """A loader yielding the whole training split ``steps_per_epoch`` times per epoch."""
    return DataLoader(_Repeat(batch, steps_per_epoch), batch_size=None, shuffle=False)


class MixERSystem(MoESystem):
    """The core's :class:`~moesuite.core.training.MoESystem` with MixER's alternating optimisation.

    Lightning's manual optimisation runs the proximal context and model phases of each outer
    step, the gate updates and the step-decay schedules (see the module docs).

    Args:
        model: a :class:`~moesuite.physics.mixer.model.MixERModel` (any ``gate``).
        config: the optimisation settings.

    Attributes:
        last_gate_update: the most recent :class:`GateUpdateResult` (MixER only).
        gate_updates: number of gate updates done.
        groups: ``[N]`` expert of each environment during the bisection warm-up.
        merges: ``(outer step, kept expert, merged expert)`` of every merge done.
    """

    def __init__(self, model: MixERModel, config: TrainConfig):
        super().__init__(model, mixer_step, max_epochs=config.epochs)
        self.automatic_optimization = False
        self.config = config
        self.generator = torch.Generator().manual_seed(config.seed)
        self.last_gate_update: GateUpdateResult | None = None
        self.gate_updates = 0
        self.merges: list[tuple[int, int, int]] = []
        self.groups: torch.Tensor | None = None
        self._inner = 0
        self._outer = 0

    def configure_optimizers(self) -> Any:
        c = self.config
        opt_model = torch.optim.Adam(self.model.expert_parameters(), lr=c.lr_model)
        opt_ctx = torch.optim.Adam([self.model.contexts], lr=c.lr_context)
        milestones = sorted({max(1, round(f * c.outer_steps)) for f in c.decay_at})
        scheds = [torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma=c.decay_factor) for o in (opt_model, opt_ctx)]
        return [opt_model, opt_ctx], scheds

    @torch.no_grad()
    def update_gate(self, batch: TrajectoryBatch) -> GateUpdateResult | None:
        """Refit a least-squares gate from every expert's loss on every environment."""
        model: MixERModel = self.model  # type: ignore[assignment]
        if not isinstance(model.gate, LeastSquaresGate):
            return None
        sub = batch.first(self.config.gate_ics)
        pred = model.forward_all_experts(sub.y[:, :, 0], sub.dt, sub.y.shape[2], sub.mask)  # [G, E, n, T, D]
        G, E = pred.shape[:2]
        rep = sub.repeat(E)
        losses = trajectory_mse(pred.flatten(0, 1), rep.y, rep.mask).reshape(G, E)
        losses = torch.nan_to_num(losses, nan=float("inf"), posinf=float("inf"))
        c = self.config
        result = kmeans_least_squares_update(model.gate, model.contexts, losses, c.gate_update, self.generator)
        self.gate_updates += 1
        if c.merge_ratio and self._outer >= c.merge_after * c.outer_steps and self.gate_updates % c.merge_every == 0:
            pair = merge_split_pair(model.contexts.data, losses, result.routed, c.merge_ratio)
            if pair is not None:
                self.merges.append((self._outer, *pair))
                result = kmeans_least_squares_update(model.gate, model.contexts, losses, c.gate_update, self.generator)
        self.last_gate_update = result
        return result

    def _phase(self, batch: TrajectoryBatch, opt: Any, params: list[torch.nn.Parameter], beta: float, steps: int,
               tied: bool) -> dict[str, torch.Tensor]:
        old = [p.detach().clone() for p in params]
        out: dict[str, torch.Tensor] = {}
        for _ in range(steps):
            if not tied and self._inner % self.config.gate_every == 0:
                result = self.update_gate(batch)
                if result is not None:
                    self.log("gate/agreement", result.agreement, on_step=False, on_epoch=True)
            self._inner += 1
            out = mixer_step(self.model, batch, tied, self.groups if tied else None)  # type: ignore[arg-type]
            prox = sum(((p - o) ** 2).sum() for p, o in zip(params, old, strict=True))
            loss = out["loss"] + 0.5 * beta * prox
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            opt.step()
        return out

    def _untie(self, opt: Any) -> None:
        """End of the tied warm-up: every expert (and its Adam state) becomes a copy of expert 0."""
        self._copy_weights(opt, 0, None)

    def _copy_expert(self, opt: Any, source: int, target: int) -> None:
        """Expert ``target`` (and its Adam state) becomes a copy of expert ``source`` (a bisection)."""
        self._copy_weights(opt, source, target)

    @torch.no_grad()
    def _copy_weights(self, opt: Any, source: int, target: int | None) -> None:
        """Expert ``target`` (``None``: every expert) and its Adam state become copies of ``source``."""
        model: MixERModel = self.model  # type: ignore[assignment]
        model.experts.copy_expert(source, target)
        index = slice(None) if target is None else target
        inner = getattr(opt, "optimizer", opt)
        for p in model.experts.parameters():
            for value in inner.state.get(p, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == p.shape:
                    value[index] = value[source].clone()

    @torch.no_grad()
    def _bisection_warmup(self, opt: Any) -> bool:
        """Advance the bisection warm-up at the current outer step; ``True`` while it runs."""
        c, model = self.config, self.model
        start, end = c.warmup_steps, c.warmup_steps + c.split_steps
        if not c.split_steps or not start <= self._outer <= end or model.num_experts < 2:
            return False
        if self._outer == end:  # hand over to the gate, warm-started from the groups' centroids
            x = model.contexts.detach()
            model.gate.centroids.copy_(torch.stack([x[self.groups == g].mean(0) for g in range(model.num_experts)]))
            model.gate.has_centroids.fill_(True)
            self.groups = None
            return False
        if self.groups is None:
            self.groups = torch.zeros(model.contexts.shape[0], dtype=torch.long)
        schedule = split_schedule(start, c.split_steps, model.num_experts - 1)
        for _ in range(schedule.count(self._outer)):
            new = int(self.groups.max()) + 1
            parent, self.groups = bisect_widest_group(model.contexts, self.groups, new, self.generator)
            self._copy_expert(opt, parent, new)
        return True

    def training_step(self, batch: TrajectoryBatch, batch_idx: int) -> torch.Tensor:
        opt_model, opt_ctx = self.optimizers()
        model: MixERModel = self.model  # type: ignore[assignment]
        n_ctx, n_model = self.config.inner_steps
        beta_ctx, beta_model = self.config.proximal
        horizon = self.config.horizon(self._outer, batch.y.shape[2])
        batch = batch.until(horizon)
        multi = model.num_experts > 1
        tied = multi and self._outer < self.config.warmup_steps
        if multi and self.config.warmup_steps and self._outer == self.config.warmup_steps:
            self._untie(opt_model)
        if multi and isinstance(model.gate, LeastSquaresGate) and self._bisection_warmup(opt_model):
            tied = True  # routed by the groups, no gate updates
        self._outer += 1
        out = {}
        if n_ctx:
            out = self._phase(batch, opt_ctx, [model.contexts], beta_ctx, n_ctx, tied)
        if n_model:
            out = self._phase(batch, opt_model, model.expert_parameters(), beta_model, n_model, tied)
        for sched in self.lr_schedulers():
            sched.step()
        G = batch.y.shape[0]
        self.log("train/horizon", float(horizon), on_step=False, on_epoch=True)
        for key, value in out.items():
            self.log(f"train/{key}", value.detach(), on_step=True, on_epoch=True, prog_bar=key == "loss", batch_size=G)
        with torch.no_grad():
            routed = model.route(model.contexts)
        if routed is not None:
            summary = routing_summary(routed)
            self.log("routing/load_max_over_mean", summary["load_max_over_mean"], on_step=False, on_epoch=True)
            self.log("routing/unused_experts", summary["unused_experts"], on_step=False, on_epoch=True)
        return out["loss"].detach()


def fit_system(system: MixERSystem, batch: TrajectoryBatch, trainer: L.Trainer) -> MixERSystem:
    """Run ``trainer.fit`` on the whole-split loader."""
    trainer.fit(system, make_loader(batch, system.config.steps_per_epoch))
    return system
