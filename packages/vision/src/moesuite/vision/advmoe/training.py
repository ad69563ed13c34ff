"""Adversarial training: dense TRADES, joint TRADES of an MoE, and AdvMoE's alternating steps.

- ``dense``: TRADES (Zhang et al. 2019, beta 6): ``CE(f(x), y) + beta KL(f(x) || f(x'))`` with
  ``x'`` maximising the KL inside the eps ball.
- ``joint``: the same TRADES step on an MoE-CNN, every parameter (routers included, through
  their straight-through gates) in one optimiser: the "vanilla" robust MoE training.
- ``advmoe``: per batch (1) a backbone step on TRADES with examples crafted against model and
  routers (the routers' KL added to the attack, as in the authors' code), on the backbone's own
  optimiser; (2) fresh examples, then a router step on the routers' own optimiser. The router
  loss is the authors' (``router_objective="authors"``): ``alpha CE(router(x), y mod E) + beta
  KL(router(x) || router(x'))``, or the paper's (``"trades"``): the model's TRADES loss taken
  with respect to the routers. Both steps add the routers' aux losses (Switch load balance and
  z-loss from the core router), which keep routing from collapsing onto one expert.

The training step writes its loss as ``task + out.aux_loss`` so the aux losses are in plain
sight. A non-finite loss or router score (a NaN reported by the authors' users) skips the
update and is counted (``train/skipped``); ten in a row stop training with an error. Expert
usage is logged per epoch (``usage/expert<e>``, ``usage/min_share``).

Lightning runs it with manual optimisation (two optimisers, two backward passes per batch), so
``make_trainer``/``fit`` give the run directory, checkpoints (both optimisers), ``--resume`` and
``--device/--devices/--strategy`` as for every other moesuite model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from moesuite.core.output import MoEOutput
from moesuite.vision.advmoe.attacks import kl_sum, trades_kl
from moesuite.vision.advmoe.model import AdvResNet, expert_choices

__all__ = [
    "SCHEMES",
    "ROUTER_OBJECTIVES",
    "TrainConfig",
    "trades_loss",
    "router_loss",
    "AdvTrainer",
]

SCHEMES = ("advmoe", "joint", "dense")
ROUTER_OBJECTIVES = ("authors", "trades")
_MAX_SKIPPED = 10


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Adversarial training settings.

    Attributes:
        scheme: ``"advmoe"``, ``"joint"`` or ``"dense"`` (see the module docstring).
        epochs: passes over the training images.
        batch_size: images per step.
        lr: Adam learning rate of the backbone (and of everything under ``joint``/``dense``).
        router_lr: Adam learning rate of the routers' optimiser (``advmoe``).
        eps: L-infinity radius of the training attack.
        attack_steps: sign-gradient steps of the TRADES attack (the authors train with 2).
        attack_step_ratio: their size relative to eps (the authors' 5/255 at eps 8/255).
        beta: TRADES' robustness weight (6 in TRADES and AdvMoE).
        alpha: weight of the router's ``CE(router(x), y mod E)`` (authors' objective; 6).
        router_objective: ``"authors"`` or ``"trades"`` (the paper's), see the module docstring.
        eps_warmup: fraction of the training steps over which eps rises linearly from 0 (a
            short budget at MNIST's eps 0.3 does not start learning at full eps; 0 disables).
        clip: gradient-norm clip of each step (guards the routers against blow-ups).
    """

    scheme: str = "advmoe"
    epochs: int = 3
    batch_size: int = 128
    lr: float = 1e-3
    router_lr: float = 1e-3
    eps: float = 0.3
    attack_steps: int = 2
    attack_step_ratio: float = 0.625
    beta: float = 6.0
    alpha: float = 6.0
    router_objective: str = "authors"
    eps_warmup: float = 0.3
    clip: float = 5.0

    def __post_init__(self) -> None:
        if self.scheme not in SCHEMES:
            raise ValueError(f"--scheme must be one of {list(SCHEMES)}, got {self.scheme!r}.")
        if self.router_objective not in ROUTER_OBJECTIVES:
            raise ValueError(
                f"router_objective must be one of {list(ROUTER_OBJECTIVES)}, "
                f"got {self.router_objective!r}."
            )
        if not self.eps >= 0:
            raise ValueError(f"--eps must be >= 0 (an L-infinity radius), got {self.eps}.")
        if not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {self.epochs}.")
        if self.attack_steps < 1:
            raise ValueError(f"attack_steps must be >= 1, got {self.attack_steps}.")
        if not 0 <= self.eps_warmup < 1:
            raise ValueError(f"eps_warmup must be in [0, 1), got {self.eps_warmup}.")


def trades_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, beta: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor], MoEOutput]:
    """TRADES on ``(x, x_adv)``: ``CE + beta KL / B + aux``; returns loss, its parts, clean out.

    ``aux`` is the mean of the routers' aux losses over the clean and the adversarial batch.
    """
    nat = model(x)
    adv = model(x_adv)
    task = F.cross_entropy(nat.output, y)
    robust = kl_sum(adv.output, nat.output) / x.shape[0]
    aux = (nat.aux_loss + adv.aux_loss) / 2  # the routers ran on both batches
    loss = task + beta * robust + aux
    return loss, {"task_loss": task, "robust_loss": robust, "aux_loss": aux}, nat


def router_loss(
    model: AdvResNet,
    x: torch.Tensor,
    y: torch.Tensor,
    x_adv: torch.Tensor,
    alpha: float,
    beta: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], MoEOutput]:
    """The authors' router loss, summed over routers, plus the routers' aux losses.

    ``alpha CE(router(x), y mod E) + beta KL(router(x) || router(x_adv)) / B + aux``.
    """
    nat = model(x)
    adv = model(x_adv)
    target = y % model.experts
    ce = sum(F.cross_entropy(r.logits, target) for r in nat.routing)
    kl = (
        sum(kl_sum(a.logits, c.logits) for a, c in zip(adv.routing, nat.routing, strict=True))
        / x.shape[0]
    )
    task = alpha * ce + beta * kl
    aux = (nat.aux_loss + adv.aux_loss) / 2
    loss = task + aux
    return loss, {"router_task_loss": task, "router_aux_loss": aux}, nat


class AdvTrainer(L.LightningModule):
    """The LightningModule of all three schemes (manual optimisation).

    Args:
        model: an :class:`AdvResNet` (dense for ``dense``, MoE for ``joint``/``advmoe``).
        cfg: the training settings.
        steps_per_epoch: batches per epoch (for the eps warm-up).
    """

    def __init__(self, model: AdvResNet, cfg: TrainConfig, steps_per_epoch: int):
        super().__init__()
        if cfg.scheme == "dense" and model.is_moe:
            raise ValueError("--scheme dense trains a dense network; this model has routers.")
        if cfg.scheme != "dense" and not model.is_moe:
            raise ValueError(
                f"--scheme {cfg.scheme} trains routers; a dense network takes --scheme dense."
            )
        self.automatic_optimization = False
        self.model = model
        self.cfg = cfg
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.skipped_in_a_row = 0
        self.usage_history: list[list[float]] = []
        self._counts: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> MoEOutput:
        return self.model(x)

    def current_eps(self, batch_idx: int) -> float:
        """The eps of this step (linear warm-up over the first ``eps_warmup`` of training)."""
        warm = self.cfg.eps_warmup * self.cfg.epochs * self.steps_per_epoch
        step = self.current_epoch * self.steps_per_epoch + batch_idx + 1
        return self.cfg.eps * min(1.0, step / warm) if warm > 0 else self.cfg.eps

    def configure_optimizers(self) -> Any:
        cfg = self.cfg
        if cfg.scheme == "advmoe":
            return [
                torch.optim.Adam(self.model.backbone_parameters(), lr=cfg.lr),
                torch.optim.Adam(self.model.router_parameters(), lr=cfg.router_lr),
            ]
        return torch.optim.Adam(self.model.parameters(), lr=cfg.lr)

    def _craft(self, x: torch.Tensor, eps: float, router_kl: bool) -> torch.Tensor:
        self.model.eval()  # as the authors: batch-norm statistics frozen while crafting
        try:
            step = self.cfg.attack_step_ratio * eps
            return trades_kl(self.model, x, eps, self.cfg.attack_steps, step, router_kl)
        finally:
            self.model.train()

    def _guarded_step(self, loss: torch.Tensor, out: MoEOutput, opt: Any, params: list) -> bool:
        """Backward and step unless the loss or a router score is not finite (then skip)."""
        finite = bool(torch.isfinite(loss)) and all(
            bool(torch.isfinite(r.logits).all()) for r in out.routing
        )
        opt.zero_grad()
        if finite:
            self.manual_backward(loss)
            norm = torch.nn.utils.clip_grad_norm_(params, self.cfg.clip)
            finite = bool(torch.isfinite(norm))
        if finite:
            opt.step()
            self.skipped_in_a_row = 0
            return True
        opt.zero_grad()
        self.skipped_in_a_row += 1
        if self.skipped_in_a_row >= _MAX_SKIPPED:
            raise FloatingPointError(
                f"{_MAX_SKIPPED} training steps in a row had a non-finite loss or router score; "
                "lower --lr or check the data."
            )
        return False

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        cfg = self.cfg
        eps = self.current_eps(batch_idx)
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        advmoe = cfg.scheme == "advmoe"
        backbone = self.model.backbone_parameters() if advmoe else list(self.model.parameters())
        try:
            x_adv = self._craft(x, eps, router_kl=advmoe)
            loss, parts, nat = trades_loss(self.model, x, y, x_adv, cfg.beta)
        except FloatingPointError:  # the core router refuses non-finite logits
            loss, parts, nat = torch.tensor(float("nan")), {}, MoEOutput(None, [])
        skipped = not self._guarded_step(loss, nat, opts[0], backbone)
        logs = {"loss": loss, **parts}
        if advmoe:
            routers = self.model.router_parameters()
            try:
                x_adv = self._craft(x, eps, router_kl=True)
                if cfg.router_objective == "authors":
                    rloss, rparts, rnat = router_loss(self.model, x, y, x_adv, cfg.alpha, cfg.beta)
                else:
                    rloss, rparts, rnat = trades_loss(self.model, x, y, x_adv, cfg.beta)
                    rparts = {"router_aux_loss": rparts["aux_loss"]}
            except FloatingPointError:
                rloss, rparts, rnat = torch.tensor(float("nan")), {}, MoEOutput(None, [])
            skipped |= not self._guarded_step(rloss, rnat, opts[1], routers)
            logs.update({"router_loss": rloss, **rparts})
        if nat.routing:
            self._count(nat, x.shape[0])
        logs = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in logs.items()}
        self.log_dict(
            {f"train/{k}": v for k, v in logs.items()},
            on_step=True,
            on_epoch=True,
            batch_size=x.shape[0],
        )
        self.log("train/skipped", float(skipped), on_step=False, on_epoch=True, reduce_fx="sum")
        self.log("train/eps", eps, on_step=True, on_epoch=False)

    def _count(self, out: MoEOutput, batch: int) -> None:
        choice = expert_choices(out.routing, batch)
        counts = (
            torch.stack([torch.bincount(c, minlength=self.model.experts) for c in choice])
            .sum(0)
            .float()
        )
        self._counts = counts if self._counts is None else self._counts + counts

    def on_train_epoch_end(self) -> None:
        if self._counts is None:
            return
        share = self._counts / self._counts.sum().clamp_min(1)
        self.usage_history.append(share.tolist())
        for e, s in enumerate(share.tolist()):
            self.log(f"usage/expert{e}", s)
        self.log("usage/min_share", float(share.min()))
        self._counts = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["usage_history"] = self.usage_history

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.usage_history = list(checkpoint.get("usage_history", []))
