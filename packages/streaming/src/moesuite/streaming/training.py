"""Train one model on one stream (test-then-train, one pass) and save it so it can be loaded again.

River learners learn online: training *is* the prequential loop
(:func:`~moesuite.streaming.evaluate.prequential`), so the figures of a ``train`` run are its
prequential metrics. The run directory keeps the model (``checkpoints/model.pkl``) and the
stream it learnt from, so that ``eval RUN`` (:func:`~moesuite.streaming.evaluate.evaluate_run`)
can load it and continue on new instances.

Run directory::

    config.json               model, parameters, seed, stream (source) and instances processed
    metrics.json              the prequential row and its per-window curves
    checkpoints/model.pkl     the model after the stream
    plots/<stream>_accuracy.png, plots/<stream>__<model>_experts.png

Examples:
    >>> import tempfile, pathlib
    >>> from moesuite.streaming.data.source import StreamSource
    >>> run = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> row = train("ht", StreamSource(stream="sea_abrupt", n=1000), run)
    >>> row["n"], sorted(p.name for p in run.iterdir())
    (1000, ['checkpoints', 'config.json', 'metrics.json', 'plots'])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from moesuite.streaming.data.source import StreamSource
from moesuite.streaming.evaluate import Progress, single_run

__all__ = ["train"]


def train(
    model_name: str,
    source: StreamSource,
    run_path: Path,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit the registered model ``model_name`` on ``source`` prequentially and save it.

    Args:
        model_name: registered model name (``moesuite streaming list``).
        source: the stream to learn from.
        run_path: run directory to create (must not exist; written atomically).
        seed: the model's seed.
        params: constructor arguments (``None`` values keep the model's defaults).
        progress: see :data:`~moesuite.streaming.evaluate.Progress`.

    Returns:
        The prequential summary row.
    """
    from moesuite.streaming.models import MODELS

    params = {k: v for k, v in (params or {}).items() if v is not None}
    model = MODELS.create(model_name, seed=seed, **params)  # bad names fail before any file
    stream = source.open()
    config = {
        "command": "train",
        "model": model_name,
        "params": params,
        "seed": seed,
        "source": source.to_config(),
    }
    return single_run(run_path, model, model_name, stream, config, progress)
