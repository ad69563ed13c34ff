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
each fraction of the run in ``decay_at`` (step decay). The loss (:func:`mixer_step`) is the
masked trajectory MSE of all training environments (one batch holds the whole training split)
plus the aux losses of a router trained by gradient. Baselines train with exactly the same
schedule.

:class:`MixERSystem` is MixER's own LightningModule (manual optimisation), trained by the core's
:func:`~moesuite.core.training.make_trainer` and :func:`~moesuite.core.training.fit`, so it has
the same checkpoints, RNG state and ``--resume`` as every other system; its own counters and
K-means generator are saved in the checkpoints too. :func:`train` writes a run directory,
:func:`compare` trains several models on the same data.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

from moesuite.core.aux_audit import AuxLossAudit
from moesuite.core.stats import routing_summary
from moesuite.core.training import (
    default_run_path,
    fit,
    make_trainer,
    run_directory,
    seed_everything,
)
from moesuite.physics._runs import markdown_table, open_run, resumed_config, write_run_config
from moesuite.physics.data.odes import (
    GenerationConfig,
    ODEBenchConfig,
    ODEDataset,
    generate,
    generate_odebench,
    load_dataset,
    parse_families,
)
from moesuite.physics.mixer.adapt import AdaptConfig
from moesuite.physics.mixer.evaluate import (
    COMPARE_COLUMNS,
    dataset_from_record,
    evaluate_model,
    write_plots,
)
from moesuite.physics.mixer.gate import (
    GateUpdateConfig,
    GateUpdateResult,
    LeastSquaresGate,
    kmeans_least_squares_update,
)
from moesuite.physics.mixer.model import MixERModel
from moesuite.physics.mixer.plots import plot_expert_assignment
from moesuite.physics.mixer.registry import MODELS, model_config
from moesuite.physics.mixer.trajectories import TrajectoryBatch, make_loader, trajectory_mse

__all__ = [
    "QUICK_EPOCHS",
    "QUICK_FAMILIES",
    "MixERSystem",
    "MixERTrainConfig",
    "compare",
    "default_num_experts",
    "hold_out_validation",
    "mixer_step",
    "prepare_data",
    "train",
    "train_model",
]

#: families of the quick default (one 3-D chaotic, two 2-D oscillators)
QUICK_FAMILIES = "lotka_volterra,van_der_pol,lorenz"
#: the ``--families`` value naming the MixER authors' ten-family set (ODEBench-2D)
ODEBENCH = "odebench2d"
#: epochs of the quick default (each epoch is ``steps_per_epoch`` outer steps)
QUICK_EPOCHS = 20


@dataclass(frozen=True, kw_only=True)
class MixERTrainConfig:
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
            inner steps; with 2 inner steps the pull-back cancels most of each step, so the
            default is 0: plain alternating steps (docs/experiments.md).
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
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "steps_per_epoch", "gate_every", "gate_ics"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        object.__setattr__(self, "inner_steps", tuple(self.inner_steps))
        object.__setattr__(self, "proximal", tuple(self.proximal))
        object.__setattr__(self, "decay_at", tuple(self.decay_at))
        steps = self.inner_steps
        if len(steps) != 2 or any(not isinstance(s, int) or s < 0 for s in steps) or not sum(steps):
            raise ValueError(
                f"inner_steps must be two ints >= 0 (context, model), not both 0; got {steps!r}."
            )
        if not (self.lr_model > 0 and self.lr_context > 0):
            raise ValueError(
                f"learning rates must be > 0, got lr_model={self.lr_model}, "
                f"lr_context={self.lr_context}."
            )
        if len(self.proximal) != 2 or min(self.proximal) < 0:
            raise ValueError(f"proximal must be two weights >= 0, got {self.proximal!r}.")
        if any(not 0 < f < 1 for f in self.decay_at) or not 0 < self.decay_factor <= 1:
            raise ValueError(
                "decay_at must hold fractions in (0, 1) and decay_factor must be in (0, 1]."
            )
        if not 0 <= self.curriculum <= 1:
            raise ValueError(f"curriculum must be a fraction in [0, 1], got {self.curriculum!r}.")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}.")
        if not isinstance(self.min_horizon, int) or self.min_horizon < 2:
            raise ValueError(f"min_horizon must be an int >= 2, got {self.min_horizon!r}.")
        if isinstance(self.gate_update, dict):
            object.__setattr__(self, "gate_update", GateUpdateConfig(**self.gate_update))
        if not isinstance(self.gate_update, GateUpdateConfig):
            raise TypeError(
                f"gate_update must be a GateUpdateConfig, got {type(self.gate_update).__name__}."
            )

    @property
    def outer_steps(self) -> int:
        """Total outer steps."""
        return self.epochs * self.steps_per_epoch

    @property
    def warmup_steps(self) -> int:
        """Outer steps of the tied warm-up."""
        return int(round(self.warmup * self.outer_steps))

    def horizon(self, outer_step: int, n_times: int) -> int:
        """Observations trained on at ``outer_step`` (the curriculum), at most ``n_times``."""
        span = self.curriculum * self.outer_steps
        if span <= 0 or outer_step >= span:
            return n_times
        start = min(self.min_horizon, n_times)
        return min(n_times, start + int((n_times - start) * outer_step / span))


def mixer_step(
    model: MixERModel, batch: TrajectoryBatch, tied: bool = False
) -> dict[str, torch.Tensor]:
    """Loss of one batch: ``loss = mse + aux_loss`` (a trained router's aux losses, else 0).

    ``mse`` is the mean per-environment trajectory MSE; ``tied`` sends every environment to
    expert 0 (the warm-up of a multi-expert model; no router is called then).
    """
    y0 = batch.y[:, :, 0]
    experts = torch.zeros(batch.y.shape[0], dtype=torch.long, device=y0.device) if tied else None
    out = model(y0, batch.dt, batch.y.shape[2], batch.mask, experts=experts)
    mse = trajectory_mse(out.output, batch.y, batch.mask).mean()
    aux = out.aux_loss
    return {"loss": mse + aux, "mse": mse.detach(), "aux_loss": aux.detach()}


class MixERSystem(L.LightningModule):
    """MixER's alternating optimisation as a LightningModule (manual optimisation).

    Each training step runs the proximal context and model phases of one outer step, the gate
    updates and the step-decay schedules (see the module docs). The first routed step is
    audited (:class:`~moesuite.core.aux_audit.AuxLossAudit`): a router whose aux losses do not
    reach the loss raises.

    Args:
        model: a :class:`~moesuite.physics.mixer.model.MixERModel` (any ``gate``).
        config: the optimisation settings.

    Args:
        model: the model to train.
        config: the optimisation settings.
        validation: held-out trajectories of the training environments (see
            :func:`hold_out_validation`); at the end of each epoch their full-horizon MSE is
            logged as ``val/mse`` and the weights with the lowest one are kept in
            :attr:`best_state`.

    Attributes:
        last_gate_update: the most recent :class:`GateUpdateResult` (MixER only).
        gate_updates: number of gate updates done (aborted ones included).
        gate_aborts: gate updates skipped by the abort rule (the gate kept its weights).
        best_state: the weights of the best validation epoch (``None`` without validation).
        best_val: their validation MSE.
    """

    def __init__(
        self,
        model: MixERModel,
        config: MixERTrainConfig,
        validation: TrajectoryBatch | None = None,
    ):
        super().__init__()
        self.model = model
        self.automatic_optimization = False
        self.config = config
        self.validation = validation
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_val = float("inf")
        self.generator = torch.Generator().manual_seed(config.seed)
        self.last_gate_update: GateUpdateResult | None = None
        self.gate_updates = 0
        self.gate_aborts = 0
        self._inner = 0
        self._outer = 0
        self._audited = False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def configure_optimizers(self) -> Any:
        c = self.config
        opt_model = torch.optim.Adam(self.model.expert_parameters(), lr=c.lr_model)
        opt_ctx = torch.optim.Adam([self.model.contexts], lr=c.lr_context)
        milestones = sorted({max(1, round(f * c.outer_steps)) for f in c.decay_at})
        scheds = [
            torch.optim.lr_scheduler.MultiStepLR(o, milestones, gamma=c.decay_factor)
            for o in (opt_model, opt_ctx)
        ]
        return [opt_model, opt_ctx], scheds

    @torch.no_grad()
    def update_gate(self, batch: TrajectoryBatch) -> GateUpdateResult | None:
        """Refit a least-squares gate from every expert's loss on every environment."""
        model: MixERModel = self.model
        if not isinstance(model.gate, LeastSquaresGate):
            return None
        sub = batch.first(self.config.gate_ics)
        y0, T = sub.y[:, :, 0], sub.y.shape[2]
        pred = model.forward_all_experts(y0, sub.dt, T, sub.mask)  # [G, E, n, T, D]
        G, E = pred.shape[:2]
        rep = sub.repeat(E)
        losses = trajectory_mse(pred.flatten(0, 1), rep.y, rep.mask).reshape(G, E)
        losses = torch.nan_to_num(losses, nan=float("inf"), posinf=float("inf"))
        update = self.config.gate_update
        result = kmeans_least_squares_update(
            model.gate, model.contexts, losses, update, self.generator
        )
        self.gate_updates += 1
        self.gate_aborts += int(result.aborted)
        self.last_gate_update = result
        return result

    def _phase(
        self,
        batch: TrajectoryBatch,
        opt: Any,
        params: list[torch.nn.Parameter],
        beta: float,
        steps: int,
        tied: bool,
    ) -> dict[str, torch.Tensor]:
        old = [p.detach().clone() for p in params]
        out: dict[str, torch.Tensor] = {}
        for _ in range(steps):
            if not tied and self._inner % self.config.gate_every == 0:
                result = self.update_gate(batch)
                if result is not None:
                    self.log("gate/agreement", result.agreement, on_step=False, on_epoch=True)
            self._inner += 1
            audit = AuxLossAudit(self.model) if not self._audited else None
            with audit or nullcontext():
                out = mixer_step(self.model, batch, tied)
            prox = sum(((p - o) ** 2).sum() for p, o in zip(params, old, strict=True))
            loss = out["loss"] + 0.5 * beta * prox
            opt.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if audit is not None:
                audit.check()
                self._audited = not tied  # audit until the first step that calls the router
            if self.config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
            opt.step()
        return out

    @torch.no_grad()
    def _untie(self, opt: Any) -> None:
        """End of the tied warm-up: every expert (and its Adam state) becomes expert 0's copy."""
        model: MixERModel = self.model
        model.experts.copy_expert(0, None)
        inner = getattr(opt, "optimizer", opt)
        for p in model.experts.parameters():
            for value in inner.state.get(p, {}).values():
                if isinstance(value, torch.Tensor) and value.shape == p.shape:
                    value[:] = value[0].clone()

    def training_step(self, batch: TrajectoryBatch, batch_idx: int) -> torch.Tensor:
        opt_model, opt_ctx = self.optimizers()
        model: MixERModel = self.model
        c = self.config
        n_ctx, n_model = c.inner_steps
        beta_ctx, beta_model = c.proximal
        horizon = c.horizon(self._outer, batch.y.shape[2])
        batch = batch.until(horizon)
        multi = model.num_experts > 1
        tied = multi and self._outer < c.warmup_steps
        if multi and c.warmup_steps and self._outer == c.warmup_steps:
            self._untie(opt_model)
        self._outer += 1
        out = {}
        if n_ctx:
            out = self._phase(batch, opt_ctx, [model.contexts], beta_ctx, n_ctx, tied)
        if n_model:
            params = model.expert_parameters()
            out = self._phase(batch, opt_model, params, beta_model, n_model, tied)
        for sched in self.lr_schedulers():
            sched.step()
        G = batch.y.shape[0]
        self.log("train/horizon", float(horizon), on_step=False, on_epoch=True)
        for key, value in out.items():
            self.log(
                f"train/{key}",
                value.detach(),
                on_step=True,
                on_epoch=True,
                prog_bar=key == "loss",
                batch_size=G,
            )
        with torch.no_grad():
            routed = model.route(model.contexts)
        if routed is not None:
            summary = routing_summary(routed)
            for key in ("load_max_over_mean", "unused_experts"):
                self.log(f"routing/{key}", summary[key], on_step=False, on_epoch=True)
        return out["loss"].detach()

    def on_train_epoch_end(self) -> None:
        if self.validation is None:
            return
        model: MixERModel = self.model
        v = self.validation
        with torch.no_grad():
            pred = model(v.y[:, :, 0], v.dt, v.y.shape[2], v.mask).output
            mse = float(trajectory_mse(pred, v.y, v.mask).mean())
        self.log("val/mse", mse, on_step=False, on_epoch=True)
        if mse < self.best_val:  # NaN never wins
            self.best_val = mse
            self.best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["mixer"] = {
            "inner": self._inner,
            "outer": self._outer,
            "gate_updates": self.gate_updates,
            "gate_aborts": self.gate_aborts,
            "generator": self.generator.get_state(),
            "best_val": self.best_val,
            "best_state": self.best_state,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("mixer")
        if state is not None:
            self._inner, self._outer = state["inner"], state["outer"]
            self.gate_updates = state["gate_updates"]
            self.gate_aborts = state.get("gate_aborts", 0)
            self.generator.set_state(state["generator"])
            self.best_val = state.get("best_val", float("inf"))
            self.best_state = state.get("best_state")


def hold_out_validation(dataset: ODEDataset, n: int = 1) -> tuple[ODEDataset, TrajectoryBatch]:
    """Split ``n`` held-out trajectories per training environment off the in-domain test set.

    Returns ``(dataset whose test split keeps the rest, validation batch)``: the validation
    trajectories select the best epoch's weights (:class:`MixERSystem`), the rest score.
    """
    test = dataset.train.test
    if not 1 <= n < test.shape[1]:
        raise ValueError(
            f"cannot hold out {n} of {test.shape[1]} test trajectories per environment for "
            "validation; generate more (n_test_ics)."
        )
    tr = dataset.train
    kept = dataclasses.replace(tr, test=test[:, n:])
    val = TrajectoryBatch.from_numpy(test[:, :n], tr.dt, tr.mask)
    return dataclasses.replace(dataset, train=kept), val


def default_num_experts(num_families: int) -> int:
    """MixER's experts: one per family, and 3 for a single family (the paper's high-data caveat)."""
    return num_families if num_families > 1 else 3


def prepare_data(
    families: str | None, data: Path | None, seed: int = 0, **generation: Any
) -> tuple[ODEDataset, dict[str, Any]]:
    """The dataset to train on and a JSON record of where it came from.

    With ``data``, the ``.npz`` is loaded and ``families`` (``None`` or ``"all"``: all of the
    file's families) selects some of its families. ``families="odebench2d"`` is the MixER
    authors' ten ODEBench-2D families on their grid (:func:`~moesuite.physics.odes.
    generate_odebench`, ``generation``: :class:`~moesuite.physics.odes.ODEBenchConfig` fields).
    Otherwise the families are generated (``None``: :data:`QUICK_FAMILIES`) with
    :class:`~moesuite.physics.odes.GenerationConfig` fields in ``generation``.
    """
    if data is not None:
        ds = load_dataset(data)
        if families not in (None, "all"):
            ds = ds.subset([f.strip() for f in str(families).split(",") if f.strip()])
        return ds, {"path": str(Path(data).resolve()), "families": list(ds.families)}
    if families == ODEBENCH:
        bench = ODEBenchConfig(seed=seed, **generation)
        return generate_odebench(bench), {"path": None, "odebench": dataclasses.asdict(bench)}
    names = parse_families(families or QUICK_FAMILIES)
    gen = GenerationConfig(families=names, seed=seed, **generation)
    record = dataclasses.asdict(gen)
    record["families"] = list(gen.families)
    return generate(gen), {"path": None, "generation": record}


def train_model(
    model: str,
    dataset: ODEDataset,
    *,
    num_experts: int | None = None,
    train_config: MixERTrainConfig | None = None,
    model_overrides: dict[str, Any] | None = None,
    run_path: Path | None = None,
    progress: bool = False,
    resume: Path | None = None,
    lightning: dict[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
    validation: TrajectoryBatch | None = None,
) -> tuple[MixERModel, MixERSystem, float]:
    """Build and train one model on ``dataset.train`` with the core's trainer.

    Args:
        model: a name of :data:`~.registry.MODELS`.
        dataset: the data (its ``train`` split is trained on).
        num_experts: MixER's experts (default :func:`default_num_experts`).
        train_config: the optimisation settings.
        model_overrides: other :class:`~.model.MixERConfig` fields.
        run_path: the run directory being written (checkpoints, logs); ``None``: nothing.
        progress: show a progress bar.
        resume: an interrupted run directory to continue from its last checkpoint.
        lightning: ``accelerator``/``devices``/``strategy`` for the trainer.
        callbacks: extra Lightning callbacks.
        validation: held-out trajectories (:func:`hold_out_validation`): the returned model
            has the weights of the epoch with the lowest validation MSE.

    Returns:
        ``(model, system, seconds)``.
    """
    if (lightning or {}).get("strategy") in ("ddp", "ddp_spawn"):
        raise ValueError(
            "--strategy: MixER's alternating context and model steps leave some parameters "
            "without a gradient in each step; use 'ddp_find_unused_parameters_true'."
        )
    tc = train_config or MixERTrainConfig()
    E = num_experts or default_num_experts(len(dataset.families))
    seed_everything(tc.seed)
    shape = {"state_dim": dataset.state_dim, "num_envs": dataset.train.num_envs}
    net = MODELS.create(model, **shape, num_experts=E, **(model_overrides or {}))
    system = MixERSystem(net, tc, validation)
    batch = TrajectoryBatch.from_numpy(dataset.train.fit, dataset.train.dt, dataset.train.mask)
    trainer = make_trainer(
        run_path,
        max_epochs=tc.epochs,
        seed=tc.seed,
        progress=progress,
        routing_stats=False,
        monitor="train/mse_epoch",
        callbacks=callbacks,
        **(lightning or {}),
    )
    # log once per epoch: every outer step of a process (all of them, or its share under DDP)
    trainer.log_every_n_steps = max(1, tc.steps_per_epoch // max(1, trainer.world_size))
    start = time.perf_counter()
    fit(trainer, system, make_loader(batch, tc.steps_per_epoch), resume=resume)
    if system.best_state is not None:
        net.load_state_dict(system.best_state)
    return net, system, time.perf_counter() - start


def train(
    model: str,
    *,
    families: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    data: Path | None = None,
    progress: bool = True,
    num_experts: int | None = None,
    resume: Path | None = None,
    lightning: dict[str, Any] | None = None,
    callbacks: Sequence[L.Callback] = (),
) -> Path:
    """Train ``model`` and write a run directory; returns its path.

    Args:
        model: a name of :data:`~.registry.MODELS` (``moesuite physics list``).
        families: comma-separated family names or ``"all"``; ``None``: :data:`QUICK_FAMILIES`
            (or, with ``data``, every family in the file).
        epochs: training epochs (``None``: :data:`QUICK_EPOCHS`).
        seed: seeds data generation, initialisation and the gate updates.
        out: run directory to create (default ``runs/physics/<model>/<timestamp>``).
        data: an ``.npz`` written by :func:`moesuite.physics.odes.save_dataset`.
        progress: show the progress bar.
        num_experts: experts of MixER (default: one per family).
        resume: an interrupted run directory of ``model`` to continue with its own settings
            (``families``, ``epochs``, ``out``, ``data`` and ``num_experts`` must be unset).
        lightning: ``accelerator``/``devices``/``strategy`` for the trainer.
        callbacks: extra Lightning callbacks.

    Raises:
        ValueError: unknown model or family, bad epochs, malformed data (clear message).
    """
    MODELS.get(model)
    if resume is not None:
        given = {"families": families, "epochs": epochs, "out": out, "data": data}
        config = resumed_config(resume, model, num_experts=num_experts, **given)
        dataset, data_record = dataset_from_record(config["data"]), config["data"]
        E, seed = config["num_experts"], config["seed"]
        tc = MixERTrainConfig(**config["train_config"])
        adapt = AdaptConfig(**config["adapt_config"])
    else:
        if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"epochs must be a positive int, got {epochs!r}.")
        dataset, data_record = prepare_data(families, data, seed)
        E = num_experts or default_num_experts(len(dataset.families))
        tc = MixERTrainConfig(epochs=epochs or QUICK_EPOCHS, seed=seed)
        adapt = AdaptConfig(seed=seed, starts=E)  # the same starts for MixER and both baselines
    shape = {"state_dim": dataset.state_dim, "num_envs": dataset.train.num_envs}
    cfg = model_config(model, **shape, num_experts=E)
    with open_run(model, out, resume) as run:
        final = run.final_path
        write_run_config(
            run,
            model,
            "parametric ODE families (MixER)",
            families=list(dataset.families),
            num_experts=E,
            seed=seed,
            model_config=dataclasses.asdict(cfg),
            train_config=dataclasses.asdict(tc),
            adapt_config=dataclasses.asdict(adapt),
            data=data_record,
        )
        net, system, seconds = train_model(
            model,
            dataset,
            num_experts=E,
            train_config=tc,
            run_path=run.path,
            progress=progress,
            resume=resume,
            lightning=lightning,
            callbacks=callbacks,
        )
        saved = {"state_dict": net.state_dict(), "config": dataclasses.asdict(net.config)}
        torch.save(saved, run.checkpoint_dir / "model.pt")
        start = time.perf_counter()
        evaluation = evaluate_model(net, dataset, adapt)
        metrics = dict(
            evaluation.metrics,
            train_seconds=round(seconds, 2),
            eval_seconds=round(time.perf_counter() - start, 2),
            gate_updates=system.gate_updates,
            gate_aborts=system.gate_aborts,
        )
        run.write_metrics(metrics)
        write_plots(run.path / "plots", dataset, evaluation, model)
    return final


def compare(
    models: Sequence[str],
    *,
    families: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    out: Path | None = None,
    data: Path | None = None,
    progress: bool = True,
    num_experts: int | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """Train ``models`` on the same data with the same schedule and adaptation, side by side.

    Writes ``comparison.md``, ``metrics.json`` (every model's metrics), ``config.json`` and
    ``plots/expert_assignment_<model>.png`` into ``out`` (default
    ``runs/physics/compare/<timestamp>``).

    Returns:
        ``(run directory, one row of metrics per model)``.
    """
    for model in models:
        MODELS.get(model)
    if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"epochs must be a positive int, got {epochs!r}.")
    dataset, data_record = prepare_data(families, data, seed)
    E = num_experts or default_num_experts(len(dataset.families))
    tc = MixERTrainConfig(epochs=epochs or QUICK_EPOCHS, seed=seed)
    adapt = AdaptConfig(seed=seed, starts=E)
    final = Path(out) if out is not None else default_run_path("runs", "physics", "compare")
    rows = []
    with run_directory(final) as run:
        settings = {"num_experts": E, "train_config": dataclasses.asdict(tc), "data": data_record}
        run.write_config({"command": "compare", "models": list(models), **settings})
        for model in models:
            net, _, seconds = train_model(model, dataset, num_experts=E, train_config=tc)
            evaluation = evaluate_model(net, dataset, adapt)
            rows.append({"model": model, **evaluation.metrics, "train_seconds": round(seconds, 2)})
            plot_expert_assignment(
                run.plot_path(f"expert_assignment_{model}"),
                dataset.families,
                dataset.train.family,
                evaluation.experts,
                net.num_experts,
                f"{model}: expert per training environment (ARI {evaluation.metrics['ari']:.2f})",
            )
        run.write_metrics({"split": "test", "models": rows})
        (run.path / "comparison.md").write_text(markdown_table(rows, COMPARE_COLUMNS) + "\n")
    return final, rows
