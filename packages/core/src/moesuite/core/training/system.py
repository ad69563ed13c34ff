"""The one generic LightningModule every domain trains with.

A domain supplies the model and a ``step_fn(model, batch) -> dict`` returning at least a
``"loss"`` tensor (other entries are logged); optimisation, logging and checkpointing are here.
The step adds the model's router aux losses to its loss itself (``loss = task +
out.aux_loss``, see :class:`~moesuite.core.output.MoEOutput`); on the first training step the
system checks with :class:`~moesuite.core.aux_audit.AuxLossAudit` that every aux loss a router
computed reached the loss, and raises if one was dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch import nn

from moesuite.core.aux_audit import AuxLossAudit

__all__ = ["MoESystem", "OptimConfig", "StepFn"]

StepFn = Callable[[nn.Module, Any], dict[str, torch.Tensor]]


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """Optimiser settings.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        betas: Adam betas.
        schedule: ``"constant"``, ``"cosine"`` (to ``lr * min_lr_ratio`` over ``max_epochs``)
            or ``"step"`` (multiply by ``gamma`` every ``step_size`` epochs).
        warmup_epochs: linear warm-up before the schedule (0 disables it).
        min_lr_ratio: floor of the cosine schedule.
        step_size: epochs between decays for ``"step"``.
        gamma: decay factor for ``"step"``.
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "constant"
    warmup_epochs: int = 0
    min_lr_ratio: float = 0.05
    step_size: int = 10
    gamma: float = 0.5

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}.")
        if self.schedule not in ("constant", "cosine", "step"):
            raise ValueError(
                f"schedule must be 'constant', 'cosine' or 'step', got {self.schedule!r}."
            )


class MoESystem(L.LightningModule):
    """Wraps a model and a step function; logs ``train/*``, ``val/*``, ``test/*``.

    Args:
        model: the network (any ``nn.Module``; MoE layers inside are found by the
            :class:`~moesuite.core.training.MoEAuxLossCallback`).
        step_fn: ``step_fn(model, batch) -> {"loss": ..., other metrics...}``; an optional
            ``"batch_size"`` entry (int) weights epoch averages.
        optim: optimiser settings.
        max_epochs: horizon of the cosine schedule.
        audit_aux: check on the first training step that every router aux loss reaches the loss.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> def step(model, batch):
        ...     x, y = batch
        ...     return {"loss": nn.functional.mse_loss(model(x), y)}
        >>> system = MoESystem(nn.Linear(3, 1), step)
        >>> float(system.step_fn(system.model, (torch.zeros(2, 3), torch.zeros(2, 1)))["loss"]) >= 0
        True
    """

    def __init__(
        self,
        model: nn.Module,
        step_fn: StepFn,
        optim: OptimConfig | None = None,
        max_epochs: int = 10,
        audit_aux: bool = True,
    ):
        super().__init__()
        self.model = model
        self.step_fn = step_fn
        self.optim = optim or OptimConfig()
        self.max_epochs = max_epochs
        self.audit_aux = audit_aux
        self._audit: AuxLossAudit | None = None
        self._audited = False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def _shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        out = dict(self.step_fn(self.model, batch))
        if "loss" not in out:
            raise KeyError(
                f"step_fn must return a dict with a 'loss' entry, got keys {sorted(out)}."
            )
        batch_size = int(out.pop("batch_size", _infer_batch_size(batch)))
        on_step = stage == "train"
        # under DDP each process sees a share of the batches: average epoch metrics over them,
        # so early stopping and the best checkpoint follow the whole validation set
        sync = self._trainer is not None and self.trainer.world_size > 1
        for key, value in out.items():
            self.log(
                f"{stage}/{key}",
                value.detach() if isinstance(value, torch.Tensor) else value,
                on_step=on_step,
                on_epoch=True,
                prog_bar=key == "loss",
                batch_size=batch_size,
                sync_dist=sync,
            )
        return out["loss"]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        if self.audit_aux and not self._audited and self._audit is None:
            with AuxLossAudit(self.model) as self._audit:
                return self._shared_step(batch, "train")
        return self._shared_step(batch, "train")

    def on_after_backward(self) -> None:
        if self._audit is not None:
            audit, self._audit, self._audited = self._audit, None, True
            audit.check()

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "test")

    def configure_optimizers(self) -> Any:
        o = self.optim
        opt = torch.optim.AdamW(
            self.model.parameters(), lr=o.lr, betas=o.betas, weight_decay=o.weight_decay
        )
        if o.schedule == "constant" and o.warmup_epochs == 0:
            return opt
        total = max(self.max_epochs, 1)

        def factor(epoch: int) -> float:
            if o.warmup_epochs and epoch < o.warmup_epochs:
                return (epoch + 1) / (o.warmup_epochs + 1)
            e = epoch - o.warmup_epochs
            if o.schedule == "cosine":
                span = max(total - o.warmup_epochs, 1)
                cos = 0.5 * (1 + torch.cos(torch.tensor(torch.pi * min(e, span) / span)).item())
                return o.min_lr_ratio + (1 - o.min_lr_ratio) * cos
            if o.schedule == "step":
                return o.gamma ** (e // o.step_size)
            return 1.0

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


def _infer_batch_size(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() else 1
    if isinstance(batch, (list, tuple)) and batch:
        return _infer_batch_size(batch[0])
    if isinstance(batch, dict) and batch:
        return _infer_batch_size(next(iter(batch.values())))
    return 1
