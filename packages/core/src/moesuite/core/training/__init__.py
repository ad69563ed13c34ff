"""Training plumbing shared by every domain: one system class, one trainer factory, run dirs.

Examples:
    >>> import tempfile, torch
    >>> from torch import nn
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from moesuite.core.training import MoESystem, fit, make_trainer, run_directory
    >>> data = DataLoader(TensorDataset(torch.randn(32, 3), torch.randn(32, 1)), batch_size=8)
    >>> step = lambda model, b: {"loss": nn.functional.mse_loss(model(b[0]), b[1])}
    >>> with run_directory(tempfile.mkdtemp() + "/run") as run:
    ...     trainer = make_trainer(
    ...         run.path, max_epochs=1, progress=False, monitor="train/loss_epoch"
    ...     )
    ...     _ = fit(trainer, MoESystem(nn.Linear(3, 1), step), data)
    >>> sorted(p.name for p in run.path.iterdir())
    ['checkpoints', 'logs']
    >>> sorted(p.name for p in (run.path / "checkpoints").iterdir())
    ['best.ckpt', 'last.ckpt']
"""

from moesuite.core.training.callbacks import (
    JSONMetricsCallback,
    RNGStateCallback,
    RoutingStatsCallback,
)
from moesuite.core.training.rundir import (
    INTERRUPTED,
    RunDirectory,
    default_run_path,
    read_json,
    resumable_config,
    resume_run_directory,
    run_directory,
    to_jsonable,
)
from moesuite.core.training.system import MoESystem, OptimConfig, StepFn
from moesuite.core.training.threads import torch_threads
from moesuite.core.training.trainer import (
    fit,
    last_checkpoint,
    make_trainer,
    quiet_lightning,
    seed_everything,
)

__all__ = [
    "INTERRUPTED",
    "JSONMetricsCallback",
    "MoESystem",
    "OptimConfig",
    "RNGStateCallback",
    "RoutingStatsCallback",
    "RunDirectory",
    "StepFn",
    "default_run_path",
    "fit",
    "last_checkpoint",
    "make_trainer",
    "quiet_lightning",
    "read_json",
    "resumable_config",
    "resume_run_directory",
    "run_directory",
    "seed_everything",
    "to_jsonable",
    "torch_threads",
]
