"""The interface every forecaster shares: ``forward(x, z_past, z_future, horizon) -> [B, H, C]``."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Forecaster"]


class Forecaster(nn.Module):
    """Base class: stores the constructor arguments (:meth:`get_config`) and checks inputs.

    Subclasses call ``self._store_config(locals())`` first in ``__init__`` and set
    ``n_channels``, ``lookback``, ``horizon``; ``trainable`` is false for models without
    parameters (naive baselines are evaluated, not trained).
    """

    uses_covariates: bool = False
    trainable: bool = True
    #: the conv-decoder models forecast any horizon from one set of weights
    any_horizon: bool = False

    def _store_config(self, local_vars: dict[str, Any]) -> None:
        self._config = {k: v for k, v in local_vars.items() if k not in ("self", "__class__")}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (``type(model)(**model.get_config())`` rebuilds it)."""
        return dict(self._config)

    def check_inputs(self, x: torch.Tensor, z_past: torch.Tensor | None = None, z_future: torch.Tensor | None = None) -> None:
        """Raise ``ValueError`` on shapes that do not match the model."""
        if x.dim() != 3 or x.shape[1] != self.lookback or x.shape[2] != self.n_channels:
            raise ValueError(
                f"x must be [B, lookback={self.lookback}, channels={self.n_channels}], got {tuple(x.shape)}."
            )
        n_cov = getattr(self, "n_covariates", 0)
        if self.uses_covariates and z_past is not None and z_past.shape[-1] != n_cov:
            raise ValueError(f"z_past must have {n_cov} covariate columns, got {tuple(z_past.shape)}.")
