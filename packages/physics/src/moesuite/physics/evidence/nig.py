"""Normal-Inverse-Gamma evidential regression (Amini et al. 2020, "Deep Evidential Regression").

A head outputs ``(gamma, nu, alpha, beta)`` per target: the prediction is ``gamma``, the
aleatoric variance ``beta / (alpha - 1)``, the epistemic variance ``beta / (nu (alpha - 1))``.
Marginalising the NIG prior gives a Student-t predictive with ``2 alpha`` degrees of freedom,
location ``gamma`` and scale^2 ``beta (1 + nu) / (nu alpha)``; its negative log-likelihood is
the training loss, plus the evidence regulariser ``|y - gamma| (2 nu + alpha)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "NIG",
    "nig_from_raw",
    "nig_nll",
    "nig_regularizer",
    "evidential_loss",
    "student_t_interval",
]


@dataclass(frozen=True)
class NIG:
    """NIG parameters, each ``[..., n_targets]``."""

    gamma: torch.Tensor
    nu: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor

    @property
    def aleatoric(self) -> torch.Tensor:
        """``E[sigma^2] = beta / (alpha - 1)``."""
        return self.beta / (self.alpha - 1)

    @property
    def epistemic(self) -> torch.Tensor:
        """``Var[mu] = beta / (nu (alpha - 1))``."""
        return self.beta / (self.nu * (self.alpha - 1))

    @property
    def evidence(self) -> torch.Tensor:
        """Total evidence ``2 nu + alpha`` (the regulariser's weight)."""
        return 2 * self.nu + self.alpha

    def detach(self) -> NIG:
        """A copy without gradient history."""
        return NIG(self.gamma.detach(), self.nu.detach(), self.alpha.detach(), self.beta.detach())


def nig_from_raw(raw: torch.Tensor, eps: float = 1e-4) -> NIG:
    """``raw[..., n_targets, 4] -> NIG`` with ``nu, beta > 0`` and ``alpha > 1`` (softplus).

    Examples:
        >>> nig = nig_from_raw(torch.zeros(3, 2, 4))
        >>> tuple(nig.gamma.shape), bool((nig.alpha > 1).all())
        ((3, 2), True)
    """
    if raw.shape[-1] != 4:
        raise ValueError(
            "raw must end in 4 NIG channels (gamma, nu, alpha, beta), "
            f"got shape {tuple(raw.shape)}."
        )
    g, n, a, b = raw.unbind(-1)
    return NIG(g, F.softplus(n) + eps, F.softplus(a) + 1.0 + eps, F.softplus(b) + eps)


def nig_nll(y: torch.Tensor, nig: NIG) -> torch.Tensor:
    """Elementwise NIG negative log-likelihood (the Student-t predictive), ``[..., n_targets]``.

    Examples:
        >>> from scipy import stats
        >>> t = torch.tensor
        >>> nig = NIG(t([0.5]), t([2.0]), t([3.0]), t([0.4]))
        >>> scale = (0.4 * 3.0 / (2.0 * 3.0)) ** 0.5
        >>> ours = float(nig_nll(t([0.9]), nig))
        >>> bool(abs(ours + stats.t.logpdf(0.9, 6.0, 0.5, scale)) < 1e-6)
        True
    """
    omega = 2 * nig.beta * (1 + nig.nu)
    return (
        0.5 * torch.log(math.pi / nig.nu)
        - nig.alpha * torch.log(omega)
        + (nig.alpha + 0.5) * torch.log((y - nig.gamma) ** 2 * nig.nu + omega)
        + torch.lgamma(nig.alpha)
        - torch.lgamma(nig.alpha + 0.5)
    )


def nig_regularizer(y: torch.Tensor, nig: NIG) -> torch.Tensor:
    """Evidence regulariser ``|y - gamma| (2 nu + alpha)``, elementwise."""
    return (y - nig.gamma).abs() * nig.evidence


def evidential_loss(y: torch.Tensor, nig: NIG, coeff: float = 0.01) -> torch.Tensor:
    """Mean NIG NLL + ``coeff`` * mean evidence regulariser (scalar)."""
    return nig_nll(y, nig).mean() + coeff * nig_regularizer(y, nig).mean()


def student_t_interval(nig: NIG, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Central ``level`` predictive interval ``(lower, upper)`` of the Student-t marginal (numpy).

    Examples:
        >>> nig = NIG(torch.zeros(1), torch.ones(1), torch.full((1,), 50.0), torch.full((1,), 49.0))
        >>> lo, hi = student_t_interval(nig, 0.9)
        >>> float(np.round(hi, 2)[0])
        2.32
    """
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}.")
    g, nu, a, b = (
        x.detach().double().cpu().numpy() for x in (nig.gamma, nig.nu, nig.alpha, nig.beta)
    )
    scale = np.sqrt(b * (1 + nu) / (nu * a))
    q = stats.t.ppf(0.5 + level / 2, 2 * a)
    return g - q * scale, g + q * scale
