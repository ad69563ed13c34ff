"""Prequential (test-then-train) evaluation and the side-by-side report against the baselines.

:func:`prequential` is river's loop (``river/evaluate/progressive_validation.py``) with what the
benchmark needs on top: throughput timed around the model calls only (stream generation and
metric book-keeping excluded, so every model is timed the same way), accuracy, Cohen's kappa,
kappa-M and kappa-T (:class:`PrequentialMetrics`), windowed accuracy and, for DriftMoE, expert
usage and the router's losses per window. :func:`compare` runs models x streams into a run
directory; :func:`evaluate_run` continues a model saved by ``train`` on a stream.

Run directory layout (``compare``; ``train`` and ``eval`` write one model, ``model.pkl``)::

    config.json                          what was run (models, parameters, streams)
    metrics.json                         one row per (stream, model) + per-window curves
    checkpoints/<stream>__<model>.pkl    the river model after the stream (pickle)
    plots/<stream>_accuracy.png          windowed accuracy of every model, drifts marked
    plots/<stream>__<model>_experts.png  DriftMoE's expert usage over time

Examples:
    >>> from river import tree
    >>> from moesuite.streaming.data import make_stream
    >>> r = prequential(tree.HoeffdingTreeClassifier(), make_stream("sea_abrupt", 2000), window=500)
    >>> r.n, len(r.windows), 0.5 < r.accuracy <= 1.0
    (2000, 4, True)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from moesuite.streaming.data.source import StreamSource
from moesuite.streaming.data.stream import NamedStream

__all__ = [
    "PrequentialMetrics",
    "PrequentialResult",
    "cohen_kappa",
    "prequential",
    "compare",
    "evaluate_run",
    "record",
    "single_run",
    "plot_run_accuracy",
    "Progress",
    "DEFAULT_COMPARE",
]

#: the models `compare` runs when none are named (``moesuite streaming list`` marks them *)
DEFAULT_COMPARE = ("driftmoe-data", "ht", "arf")

#: ``progress(label, total) -> on_step(n)``: how commands show progress (``None``: silent)
Progress = Callable[[str, int | None], Callable[[int], None]]


# ---------------------------------------------------------------- metrics


def cohen_kappa(confusion: Counter, n: int) -> float:
    """Cohen's kappa from a ``Counter`` of ``(y_true, y_pred)`` pairs over ``n`` instances."""
    if n == 0:
        return 0.0
    p0 = sum(c for (t, p), c in confusion.items() if t == p) / n
    true_m: Counter = Counter()
    pred_m: Counter = Counter()
    for (t, p), c in confusion.items():
        true_m[t] += c
        pred_m[p] += c
    pe = sum(true_m[k] * pred_m.get(k, 0) for k in true_m) / (n * n)
    return (p0 - pe) / (1 - pe) if pe < 1 else 0.0


class PrequentialMetrics:
    """Accuracy, Cohen's kappa, kappa-M, kappa-T and windowed accuracy, in one pass.

    river 0.26 has ``CohenKappa`` but neither kappa-M (against the majority-class classifier,
    Bifet et al. 2015) nor kappa-T (against the no-change classifier that predicts the previous
    label, Zliobaite et al. 2015).

    Args:
        window: size of the tumbling windows of :attr:`windows` (``(end index, accuracy)`` each).

    Examples:
        >>> m = PrequentialMetrics(window=2)
        >>> for y, p in [(0, 0), (0, 0), (1, 0), (1, 1)]:
        ...     m.update(y, p)
        >>> s = m.summary()
        >>> s["accuracy"], round(s["kappa"], 3), s["kappa_m"], s["kappa_t"]
        (0.75, 0.5, 0.6666666666666666, 0.5)
        >>> m.windows
        [(2, 1.0), (4, 0.5)]
    """

    def __init__(self, window: int = 1000):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}.")
        self.window = window
        self.n = 0
        self.correct = 0
        self.confusion: Counter = Counter()
        self.windows: list[tuple[int, float]] = []
        self._win_correct = 0
        self._class_counts: Counter = Counter()
        self._majority_correct = 0
        self._last_y: Any = None
        self._nochange_correct = 0

    def update(self, y: Any, y_pred: Any) -> None:
        """Record one prediction ``y_pred`` made before the label ``y`` was learnt."""
        hit = y == y_pred
        self.n += 1
        self.correct += hit
        self._win_correct += hit
        self.confusion[(y, y_pred)] += 1
        if self._class_counts:
            self._majority_correct += self._class_counts.most_common(1)[0][0] == y
        self._class_counts[y] += 1
        self._nochange_correct += self._last_y == y and self.n > 1
        self._last_y = y
        if self.n % self.window == 0:
            self.windows.append((self.n, self._win_correct / self.window))
            self._win_correct = 0

    def summary(self) -> dict[str, float]:
        """``accuracy``, ``kappa``, ``kappa_m``, ``kappa_t`` and ``n`` so far."""
        n = max(self.n, 1)
        acc = self.correct / n
        maj = self._majority_correct / n
        noc = self._nochange_correct / n
        return {
            "n": self.n,
            "accuracy": acc,
            "kappa": cohen_kappa(self.confusion, self.n),
            "kappa_m": (acc - maj) / (1 - maj) if maj < 1 else 0.0,
            "kappa_t": (acc - noc) / (1 - noc) if noc < 1 else 0.0,
        }


# ---------------------------------------------------------------- the prequential loop


@dataclass
class PrequentialResult:
    """Figures of one prequential run (JSON-serialisable via :meth:`to_dict`).

    Attributes:
        accuracy: over the whole stream (likewise ``kappa``, ``kappa_m``, ``kappa_t``).
        kappa: Cohen's kappa.
        kappa_m: kappa against the majority-class classifier.
        kappa_t: kappa against the no-change classifier.
        n: instances seen.
        seconds: time spent inside ``predict_one`` + ``learn_one``.
        throughput: ``n / seconds`` (instances per second).
        windows: ``(end index, accuracy)`` per tumbling window.
        expert_usage: per window, the fraction of predictions each expert led (DriftMoE).
        router_losses: per window with router steps, ``(end index, loss, task_loss,
            aux_loss)``, means over the window's steps; ``loss = task_loss + aux_loss``
            (DriftMoE).
    """

    accuracy: float
    kappa: float
    kappa_m: float
    kappa_t: float
    n: int
    seconds: float
    throughput: float
    windows: list[tuple[int, float]] = field(default_factory=list)
    expert_usage: list[list[float]] = field(default_factory=list)
    router_losses: list[tuple[int, float, float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _WindowDiffs:
    """Per-window increments of a model's running counters (``expert_usage``, ``router_losses``)."""

    def __init__(self, model: Any):
        self.usage_fn = getattr(model, "expert_usage", None)
        self.loss_fn = getattr(model, "router_losses", None)
        self.usage: list[list[float]] = []
        self.losses: list[tuple[int, float, float, float]] = []
        self._last_usage = list(self.usage_fn()) if self.usage_fn else []
        self._last_loss = dict(self.loss_fn()) if self.loss_fn else {}

    def close_window(self, n: int) -> None:
        if self.usage_fn is not None:
            now = list(self.usage_fn())
            last = self._last_usage + [0] * (len(now) - len(self._last_usage))
            delta = [a - b for a, b in zip(now, last, strict=True)]
            total = sum(delta) or 1
            self.usage.append([d / total for d in delta])
            self._last_usage = now
        if self.loss_fn is not None:
            now_l = dict(self.loss_fn())
            steps = now_l["steps"] - self._last_loss.get("steps", 0)
            if steps:
                means = [
                    (now_l[k] - self._last_loss.get(k, 0.0)) / steps
                    for k in ("loss", "task_loss", "aux_loss")
                ]
                self.losses.append((n, *means))
            self._last_loss = now_l


def prequential(
    model: Any,
    stream: Iterable[tuple[dict, Any]],
    window: int = 1000,
    on_step: Callable[[int], None] | None = None,
    step_every: int = 500,
) -> PrequentialResult:
    """Test-then-train ``model`` on ``stream``: predict each ``x``, score it, then learn ``(x, y)``.

    Args:
        model: a river classifier (``predict_one``, ``learn_one``).
        stream: iterable of ``(x, y)``.
        window: tumbling window of the windowed accuracy (and expert usage, router losses).
        on_step: called with the number of instances processed every ``step_every``
            instances (progress bars).
        step_every: see ``on_step``.

    Raises:
        ValueError: the stream is empty.
    """
    metrics = PrequentialMetrics(window)
    per_window = _WindowDiffs(model)
    clock = time.perf_counter
    spent = 0.0
    n = 0
    for x, y in stream:
        t0 = clock()
        y_pred = model.predict_one(x)
        model.learn_one(x, y)
        spent += clock() - t0
        metrics.update(y, y_pred)
        n += 1
        if n % window == 0:
            per_window.close_window(n)
        if on_step is not None and n % step_every == 0:
            on_step(n)
    if n == 0:
        raise ValueError("the stream is empty: expected at least one (x, y) instance.")
    if on_step is not None:
        on_step(n)
    s = metrics.summary()
    return PrequentialResult(
        accuracy=s["accuracy"],
        kappa=s["kappa"],
        kappa_m=s["kappa_m"],
        kappa_t=s["kappa_t"],
        n=n,
        seconds=spent,
        throughput=n / spent if spent > 0 else float("inf"),
        windows=metrics.windows,
        expert_usage=per_window.usage,
        router_losses=per_window.losses,
    )


# ---------------------------------------------------------------- run directories


def default_window(stream: NamedStream) -> int:
    """Window of a run's curves: 1/50 of the stream (at least 50 instances)."""
    return max(50, (stream.n_samples or 10_000) // 50)


def record(
    run: Any,
    model: Any,
    model_name: str,
    stream: NamedStream,
    checkpoint: str,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run ``model`` prequentially on ``stream`` inside a run directory being written.

    Saves the model after the stream as ``checkpoints/<checkpoint>`` and, for DriftMoE, plots
    its expert usage. Returns the summary row and the row with its per-window curves.
    """
    from moesuite.streaming.models.checkpoint import save_model
    from moesuite.streaming.plots import plot_expert_usage

    window = default_window(stream)
    on_step = progress(f"{stream.name} / {model_name}", stream.n_samples) if progress else None
    r = prequential(model, stream, window=window, on_step=on_step)
    row: dict[str, Any] = {
        "stream": stream.name,
        "model": model_name,
        "n": r.n,
        "accuracy": r.accuracy,
        "kappa": r.kappa,
        "kappa_m": r.kappa_m,
        "kappa_t": r.kappa_t,
        "throughput": r.throughput,
        "seconds": r.seconds,
    }
    if hasattr(model, "expert_usage"):
        row["expert_load_max_over_mean"] = _imbalance(model.expert_usage())
    if hasattr(model, "router_losses"):
        sums = model.router_losses()
        steps = max(sums["steps"], 1)
        row.update({f"router_{k}": sums[k] / steps for k in ("loss", "task_loss", "aux_loss")})
    details = {
        **row,
        "windows": r.windows,
        "expert_usage": r.expert_usage,
        "router_losses": r.router_losses,
        "drift_points": stream.drift_points,
        "window": window,
        "resets": getattr(model, "n_resets_", None),
    }
    save_model(model, run.checkpoint_dir / checkpoint)
    if r.expert_usage:
        plot_expert_usage(
            r.expert_usage,
            run.plot_path(f"{_stem(stream.name)}__{model_name}_experts.png"),
            window,
            stream.drift_points,
            title=f"{model_name} on {stream.name}: expert usage per window",
        )
    return row, details


def _stem(name: str) -> str:
    """A stream name as a file-name part (``river:Agrawal`` -> ``river-Agrawal``)."""
    return name.replace(":", "-").replace("/", "-")


def _imbalance(counts: list[int]) -> float:
    """Core routing statistic: max/mean expert usage (1.0 balanced, ``E`` collapsed)."""
    import torch

    from moesuite.core.stats import load_imbalance

    return load_imbalance(torch.tensor(counts, dtype=torch.float64))


def plot_run_accuracy(run: Any, stream: NamedStream, details: Sequence[dict[str, Any]]) -> None:
    """``plots/<stream>_accuracy.png``: the windowed accuracy of each run on ``stream``."""
    from moesuite.streaming.plots import plot_windowed_accuracy

    plot_windowed_accuracy(
        {d["model"]: d["windows"] for d in details},
        run.plot_path(f"{_stem(stream.name)}_accuracy.png"),
        stream.drift_points,
        title=f"{stream.name}: windowed prequential accuracy",
    )


def compare(
    models: Sequence[str],
    sources: Sequence[StreamSource],
    run_path: Path,
    seed: int = 0,
    params: dict[str, dict[str, Any]] | None = None,
    progress: Progress | None = None,
) -> list[dict[str, Any]]:
    """Every model on every stream, side by side (same instances, same seed), into ``run_path``.

    Model names and streams are checked before the run directory is created, and the
    directory only appears once every run has finished (core ``run_directory``).

    Args:
        models: registered model names.
        sources: the streams.
        run_path: run directory to create (must not exist).
        seed: seed of every model.
        params: constructor arguments per model name (``None`` values are ignored).
        progress: see :data:`Progress`.

    Returns:
        One summary row per (stream, model).
    """
    from moesuite.core.training import run_directory
    from moesuite.streaming.models import MODELS

    if not models:
        raise ValueError("--model: give at least one model; `moesuite streaming list` names them.")
    params = params or {}
    for name in models:
        MODELS.get(name)  # ValueError listing the names
    for src in sources:
        src.open()  # a bad file fails here, before the run directory exists
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    with run_directory(run_path) as run:
        for src in sources:
            details = []
            for name in models:
                model = MODELS.create(name, seed=seed, **params.get(name, {}))
                stream = src.open()
                row, detail = record(
                    run, model, name, stream, f"{_stem(stream.name)}__{name}.pkl", progress
                )
                rows.append(row)
                details.append(detail)
            plot_run_accuracy(run, stream, details)
            runs.extend(details)
        run.write_config(
            {
                "command": "compare",
                "models": list(models),
                "params": params,
                "seed": seed,
                "sources": [s.to_config() for s in sources],
            }
        )
        run.write_metrics({"rows": rows, "runs": runs})
    return rows


def evaluate_run(
    run_dir: Path,
    out: Path | None = None,
    stream: str | None = None,
    data: Path | None = None,
    target: str | None = None,
    n: int | None = None,
    seed: int | None = None,
    stream_args: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """Load the model a ``train`` (or ``eval``) run saved and continue it prequentially.

    With neither ``stream`` nor ``data``, the model continues on the run's own stream
    (:meth:`StreamSource.following`: a generated stream drawn again with the next seed, or
    the rest of a real stream or file).

    Args:
        run_dir: the run directory (``config.json`` + ``checkpoints/model.pkl``).
        out: run directory to create (default ``runs/streaming/<model>-eval/<timestamp>``).
        stream: a registered stream to continue on instead.
        data: a CSV or ARFF file to continue on instead (with ``target``).
        target: the label column of ``data``.
        n: instances (default: see :class:`StreamSource` and :meth:`StreamSource.following`).
        seed: seed of a generated stream (default: the run's seed + 1, new instances).
        stream_args: ``key=value`` arguments of a ``river:NAME`` ``stream``.
        progress: see :data:`Progress`.

    Returns:
        The run directory written and its summary row (in a list).
    """
    from moesuite.core.training import default_run_path, read_json
    from moesuite.streaming.models.checkpoint import MODEL_FILE, load_model

    config = read_json(Path(run_dir) / "config.json")
    if "model" not in config or "source" not in config:
        raise ValueError(
            f"RUN {run_dir}: written by `{config.get('command', '?')}`, not by `train`; "
            "`eval` continues the one model a `train` run saved."
        )
    trained = StreamSource.from_config(config["source"])
    if stream is None and data is None and target is None and not stream_args:
        src = trained.following(config["n_processed"])
        src = replace(src, n=n or src.n, seed=src.seed if seed is None else seed)
    else:
        seed = trained.seed + 1 if seed is None else seed
        src = StreamSource(stream, data, target, n, seed, args=stream_args)
    model = load_model(Path(run_dir) / MODEL_FILE)
    name = config["model"]
    opened = src.open()
    path = out or default_run_path("runs", "streaming", f"{name}-eval")
    config = {
        "command": "eval",
        "model": name,
        "params": config.get("params", {}),
        "seed": config.get("seed"),
        "from_run": str(run_dir),
        "source": src.to_config(),
    }
    return path, [single_run(path, model, name, opened, config, progress)]


def single_run(
    path: Path,
    model: Any,
    model_name: str,
    stream: NamedStream,
    config: dict[str, Any],
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One model on one stream into the run directory ``path``, the model saved as ``model.pkl``.

    ``config.json`` gets ``config`` plus ``n_processed``, the instances the model learnt (what
    a later ``eval`` of this run continues after). Returns the summary row.
    """
    from moesuite.core.training import run_directory
    from moesuite.streaming.models.checkpoint import MODEL_FILE

    with run_directory(path) as run:
        row, detail = record(run, model, model_name, stream, Path(MODEL_FILE).name, progress)
        plot_run_accuracy(run, stream, [detail])
        run.write_config({**config, "n_processed": row["n"]})
        run.write_metrics({"rows": [row], "runs": [detail]})
    return row
