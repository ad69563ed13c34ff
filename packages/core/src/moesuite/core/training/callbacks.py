"""Lightning callbacks: router aux losses + routing statistics, and per-epoch JSON metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch

from moesuite.core.recorder import RoutingRecorder
from moesuite.core.stats import routing_summary

__all__ = ["MoEAuxLossCallback", "JSONMetricsCallback"]


class MoEAuxLossCallback(L.Callback):
    """Adds every MoE layer's router aux loss to the training loss and logs routing statistics.

    During training batches it hooks every :class:`~moesuite.core.layer.MoELayer` of the
    LightningModule; each layer's weighted aux loss (``RouterOutput.aux_loss``, times
    ``aux_scale``) is attached to the layer's output with
    :func:`~moesuite.core.losses.attach_aux_loss`, so ``loss.backward()`` minimises it without
    the step function knowing about it. After each batch it updates aux-loss-free bias
    balancers with the batch's expert counts and logs ``routing/aux_loss``,
    ``routing/<layer>/load_max_over_mean`` and ``routing/<layer>/entropy``. Expert counts are
    accumulated per layer over the whole fit in :attr:`expert_counts` (for plots).

    Args:
        aux_scale: multiplier of all aux losses (0 logs statistics only).
        update_bias: call ``router.balancer.update(counts)`` for routers that have one.
        log_layers: also log per-layer statistics (not only their mean).
    """

    def __init__(self, aux_scale: float = 1.0, update_bias: bool = True, log_layers: bool = True):
        super().__init__()
        self.aux_scale = aux_scale
        self.update_bias = update_bias
        self.log_layers = log_layers
        self.expert_counts: dict[str, torch.Tensor] = {}
        self._recorder: RoutingRecorder | None = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        if self._recorder is None:
            # layer names relative to the wrapped model ("encoder.0.moe", not "model.encoder.0.moe")
            model = getattr(pl_module, "model", pl_module)
            self._recorder = RoutingRecorder(model, attach_aux=self.aux_scale != 0, aux_scale=self.aux_scale)
        self._recorder.clear()
        self._recorder.start()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        rec = self._recorder
        if rec is None:
            return
        rec.stop()
        if not rec.records:
            return
        aux_total = 0.0
        summaries = []
        for r in rec.records:
            counts = r.output.plan.counts.detach().cpu()
            self.expert_counts[r.name] = self.expert_counts.get(r.name, torch.zeros_like(counts)) + counts
            if self.update_bias:
                balancer = getattr(r.layer.router, "balancer", None)
                if balancer is not None:
                    balancer.update(r.output.plan.counts)
            aux_total += float(r.output.aux_loss.detach())
            s = routing_summary(r.output)
            summaries.append(s)
            if self.log_layers:
                pl_module.log(f"routing/{r.name}/load_max_over_mean", s["load_max_over_mean"], on_step=False, on_epoch=True)
                pl_module.log(f"routing/{r.name}/entropy", s["entropy"], on_step=False, on_epoch=True)
        n = len(summaries)
        pl_module.log("routing/aux_loss", aux_total / n, on_step=False, on_epoch=True)
        pl_module.log("routing/load_max_over_mean", sum(s["load_max_over_mean"] for s in summaries) / n, on_step=False, on_epoch=True)
        pl_module.log("routing/entropy", sum(s["entropy"] for s in summaries) / n, on_step=False, on_epoch=True)
        rec.clear()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._recorder is not None:
            self._recorder.stop()

    def state_dict(self) -> dict[str, Any]:
        return {"expert_counts": {k: v.tolist() for k, v in self.expert_counts.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.expert_counts = {k: torch.tensor(v) for k, v in state_dict.get("expert_counts", {}).items()}


class JSONMetricsCallback(L.Callback):
    """Appends the epoch's logged metrics as one JSON line to ``path`` after each validation."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)

    def _write(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking:
            return
        row: dict[str, Any] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for key, value in trainer.callback_metrics.items():
            row[key] = float(value) if isinstance(value, torch.Tensor) and value.numel() == 1 else value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.val_dataloaders and trainer.num_val_batches in ([], [0], 0):
            self._write(trainer)
