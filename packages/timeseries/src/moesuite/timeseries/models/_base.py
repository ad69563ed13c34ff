"""What every forecaster shares: the interface, the model registry and the forecast-of helper.

A forecaster maps ``x [B, L, C]`` (with optional covariates ``z_past [B, L, Cz]`` and
``z_future [B, H, Ck]``) to ``[B, H, C]``. A model with routers returns a
:class:`~moesuite.core.output.MoEOutput` (the forecast and every router's output, aux losses
included); a model without routers returns the forecast tensor. :func:`as_moe_output` gives
both the same shape for the training step and the evaluation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from moesuite.core.output import MoEOutput
from moesuite.core.registry import Registry

__all__ = ["Forecaster", "MODELS", "as_moe_output"]

#: every forecaster by name (``MODELS.list()``, ``MODELS.help()``); see :func:`create_model`
MODELS: Registry[nn.Module] = Registry("model")


def as_moe_output(out: torch.Tensor | MoEOutput) -> MoEOutput:
    """A forecaster's return value as a :class:`MoEOutput` (no routing for plain tensors).

    Examples:
        >>> import torch
        >>> out = as_moe_output(torch.zeros(2, 3, 1))
        >>> tuple(out.output.shape), out.routing, float(out.aux_loss)
        ((2, 3, 1), [], 0.0)
    """
    return out if isinstance(out, MoEOutput) else MoEOutput(out, [])


class Forecaster(nn.Module):
    """Base class: stores the constructor arguments (:meth:`get_config`) and checks inputs.

    Subclasses call ``self._store_config(locals())`` first in ``__init__``, set
    ``n_channels``, ``lookback``, ``horizon``, and implement :meth:`forecast`; ``trainable`` is
    false for models without parameters (naive baselines are evaluated, not trained).
    """

    uses_covariates: bool = False
    trainable: bool = True
    #: one set of weights forecasts any horizon (no weight depends on ``H``)
    any_horizon: bool = False

    def _store_config(self, local_vars: dict[str, Any]) -> None:
        self._config = {k: v for k, v in local_vars.items() if k not in ("self", "__class__")}

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (``type(model)(**model.get_config())`` rebuilds it)."""
        return dict(self._config)

    def forward(
        self,
        x: torch.Tensor,
        z_past: torch.Tensor | None = None,
        z_future: torch.Tensor | None = None,
        horizon: int | None = None,
    ) -> torch.Tensor | MoEOutput[torch.Tensor]:
        """Forecast ``horizon`` steps (default: the trained horizon) after each window.

        Shapes:
            ``x [B, L, C]``, ``z_past [B, L, Cz]``, ``z_future [B, H, Ck] -> [B, H, C]`` (or a
            :class:`MoEOutput` holding it, for a model with routers).
        """
        H = horizon or self.horizon
        self.check_inputs(x, z_past, z_future)
        if H > self.horizon and not self.any_horizon:
            raise ValueError(
                f"this {type(self).__name__} forecasts at most horizon={self.horizon} steps "
                f"(its weights depend on the horizon), asked for {H}."
            )
        return self.forecast(x, H, z_past, z_future)

    def forecast(
        self, x: torch.Tensor, horizon: int, *covariates: torch.Tensor | None
    ) -> torch.Tensor | MoEOutput[torch.Tensor]:
        """The model's forecast of checked inputs (``covariates``: ``z_past``, ``z_future``)."""
        raise NotImplementedError

    def train_horizon(self, horizon: int) -> int:
        """Future steps a training window needs to forecast ``horizon`` (default: ``horizon``)."""
        return horizon

    def training_pair(
        self, batch: dict[str, torch.Tensor]
    ) -> tuple[MoEOutput[torch.Tensor], torch.Tensor]:
        """The model's output on a training batch and the target it is scored against.

        Direct forecasters forecast ``y``'s horizon; a model with another training target
        (MoHETS: the window shifted by its output step) overrides this. The last
        ``batch["y"].shape[1]`` steps of the output are always the forecast of ``y``.
        """
        out = as_moe_output(self(batch["x"], batch["z_past"], batch["z_future"]))
        return out, batch["y"]

    def predict(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The forecast ``[B, H, C]`` alone (without the routing a model with routers returns)."""
        return as_moe_output(self(*args, **kwargs)).output

    def check_inputs(
        self,
        x: torch.Tensor,
        z_past: torch.Tensor | None = None,
        z_future: torch.Tensor | None = None,
    ) -> None:
        """Raise ``ValueError`` on shapes that do not match the model."""
        if x.dim() != 3 or x.shape[1] != self.lookback or x.shape[2] != self.n_channels:
            raise ValueError(
                f"x must be [B, lookback={self.lookback}, channels={self.n_channels}], "
                f"got {tuple(x.shape)}."
            )
        n_cov = getattr(self, "n_covariates", 0)
        if self.uses_covariates and z_past is not None and z_past.shape[-1] != n_cov:
            raise ValueError(
                f"z_past must have {n_cov} covariate columns, got {tuple(z_past.shape)}."
            )
