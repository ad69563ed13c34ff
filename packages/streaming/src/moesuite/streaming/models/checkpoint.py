"""Saving a trained river model and loading it again (pickle, river's own way of persisting).

Examples:
    >>> import tempfile, pathlib
    >>> from moesuite.streaming.models import create_model
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.pkl"
    >>> save_model(create_model("driftmoe-data", seed=0), path)
    >>> type(load_model(path)).__name__
    'DriftMoEClassifier'
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

__all__ = ["MODEL_FILE", "save_model", "load_model"]

#: where a ``train`` run keeps its model, relative to the run directory
MODEL_FILE = "checkpoints/model.pkl"


def save_model(model: Any, path: str | Path) -> None:
    """Pickle ``model`` to ``path`` (parent directories must exist)."""
    with open(path, "wb") as fh:
        pickle.dump(model, fh)


def load_model(path: str | Path) -> Any:
    """The river classifier pickled at ``path`` (only load files you or moesuite wrote).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a pickled river classifier.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved model (expected a run directory from `train`).")
    try:
        with open(path, "rb") as fh:
            model = pickle.load(fh)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise ValueError(f"{path}: not a saved moesuite model ({exc}).") from None
    if not (hasattr(model, "predict_one") and hasattr(model, "learn_one")):
        raise ValueError(f"{path}: holds a {type(model).__name__}, not a river classifier.")
    return model
