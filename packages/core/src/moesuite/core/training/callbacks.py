"""Lightning callbacks: routing statistics, RNG state in checkpoints, per-epoch JSON metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from moesuite.core.recorder import RoutingRecorder
from moesuite.core.stats import routing_summary

__all__ = ["RoutingStatsCallback", "RNGStateCallback", "RunCheckpoint", "JSONMetricsCallback"]


class RoutingStatsCallback(L.Callback):
    """Logs routing statistics of every MoE layer and updates aux-loss-free bias balancers.

    It only observes: the aux losses are the training step's business (a model returns its
    routers' outputs in a :class:`~moesuite.core.output.MoEOutput` and the step adds
    ``aux_loss`` to its loss). During training batches it hooks every
    :class:`~moesuite.core.layer.MoELayer` of the LightningModule; after each batch it updates
    aux-loss-free bias balancers with the batch's expert counts and logs
    ``routing/<layer>/load_max_over_mean`` and ``routing/<layer>/entropy`` (and their means over
    layers). Expert counts are accumulated per layer over the whole fit in
    :attr:`expert_counts` (for plots).

    Args:
        update_bias: call ``router.balancer.update(counts)`` for routers that have one.
        log_layers: also log per-layer statistics (not only their mean).
    """

    def __init__(self, update_bias: bool = True, log_layers: bool = True):
        super().__init__()
        self.update_bias = update_bias
        self.log_layers = log_layers
        self.expert_counts: dict[str, torch.Tensor] = {}
        self._recorder: RoutingRecorder | None = None

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._recorder is None:
            # layer names relative to the wrapped model ("encoder.0.moe", not "model.encoder.0.moe")
            self._recorder = RoutingRecorder(getattr(pl_module, "model", pl_module), detach=True)
        self._recorder.clear()
        self._recorder.start()

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        rec = self._recorder
        if rec is None:
            return
        rec.stop()
        if not rec.records:
            return
        summaries = []
        for r in rec.records:
            counts = r.output.plan.counts.detach().cpu()
            self.expert_counts[r.name] = (
                self.expert_counts.get(r.name, torch.zeros_like(counts)) + counts
            )
            if self.update_bias:
                balancer = getattr(r.layer.router, "balancer", None)
                if balancer is not None:
                    balancer.update(r.output.plan.counts)
            s = routing_summary(r.output)
            summaries.append(s)
            if self.log_layers:
                pl_module.log(
                    f"routing/{r.name}/load_max_over_mean",
                    s["load_max_over_mean"],
                    on_step=False,
                    on_epoch=True,
                )
                pl_module.log(
                    f"routing/{r.name}/entropy", s["entropy"], on_step=False, on_epoch=True
                )
        n = len(summaries)
        pl_module.log(
            "routing/load_max_over_mean",
            sum(s["load_max_over_mean"] for s in summaries) / n,
            on_step=False,
            on_epoch=True,
        )
        pl_module.log(
            "routing/entropy",
            sum(s["entropy"] for s in summaries) / n,
            on_step=False,
            on_epoch=True,
        )
        rec.clear()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._recorder is not None:
            self._recorder.stop()

    def state_dict(self) -> dict[str, Any]:
        return {"expert_counts": {k: v.tolist() for k, v in self.expert_counts.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.expert_counts = {
            k: torch.tensor(v) for k, v in state_dict.get("expert_counts", {}).items()
        }


class RNGStateCallback(L.Callback):
    """Saves every random generator a run draws from in its checkpoints; restores them on resume.

    The python, numpy and torch global generators, and the ``torch.Generator`` of each training
    loader that shuffles with its own (``DataLoader(generator=g)``; :func:`~.trainer.fit` hands
    them over with :meth:`track`). With it, a run resumed from its last checkpoint draws the same
    shuffles, dropout masks and noise as the uninterrupted run would have (Lightning restores
    weights, optimiser, scheduler and loop position, but not the random generators). A
    LightningDataModule that makes its own generators saves them in its own ``state_dict``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.generators: list[torch.Generator] = []

    def track(self, loaders: Any) -> None:
        """Follow the generators of ``loaders`` (a DataLoader, or a list/dict of them)."""
        flat = (
            list(loaders.values())
            if isinstance(loaders, dict)
            else list(loaders)
            if isinstance(loaders, (list, tuple))
            else [loaders]
        )
        self.generators = []
        for loader in flat:
            for g in (
                getattr(loader, "generator", None),
                getattr(getattr(loader, "sampler", None), "generator", None),
            ):
                if isinstance(g, torch.Generator) and all(g is not f for f in self.generators):
                    self.generators.append(g)

    def state_dict(self) -> dict[str, Any]:
        from lightning.fabric.utilities.seed import _collect_rng_states

        return {
            "rng": _collect_rng_states(include_cuda=torch.cuda.is_available()),
            "loader_generators": [g.get_state() for g in self.generators],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        from lightning.fabric.utilities.seed import _set_rng_states

        if "rng" in state_dict:
            _set_rng_states(state_dict["rng"])
        saved = state_dict.get("loader_generators", [])
        if len(saved) != len(self.generators):
            raise RuntimeError(
                f"the checkpoint holds {len(saved)} training-loader generator state(s) but the "
                f"resumed run's loaders have {len(self.generators)}; resume with the same data "
                "settings."
            )
        for g, state in zip(self.generators, saved, strict=True):
            g.set_state(state)


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` whose saved paths follow the run directory when it moves.

    A run is written in a temporary directory and renamed when it finishes or is interrupted;
    the checkpoint state records the old paths. On resume they are re-anchored to the current
    ``checkpoints/`` so the best-model bookkeeping carries on.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        old = state_dict.get("dirpath")
        if old and self.dirpath and str(old) != str(self.dirpath):
            new = str(self.dirpath)

            def move(p: Any) -> Any:
                return (
                    new + str(p)[len(str(old)) :]
                    if isinstance(p, str) and p.startswith(str(old))
                    else p
                )

            state_dict = dict(state_dict)
            state_dict["dirpath"] = new
            for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
                if key in state_dict:
                    state_dict[key] = move(state_dict[key])
            if "best_k_models" in state_dict:
                state_dict["best_k_models"] = {
                    move(k): v for k, v in state_dict["best_k_models"].items()
                }
        super().load_state_dict(state_dict)


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
            row[key] = (
                float(value) if isinstance(value, torch.Tensor) and value.numel() == 1 else value
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.val_dataloaders and trainer.num_val_batches in ([], [0], 0):
            self._write(trainer)
