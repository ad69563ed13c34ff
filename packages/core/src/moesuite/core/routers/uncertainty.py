"""Uncertainty-aware routing (UaR): Monte-Carlo dropout around any token-choice router.

The wrapper turns a deterministic router into one that knows how sure it is. In training it
runs the inner router ``K`` times on dropped-out copies of its input, averages the routing
probabilities, and tempers each token's logits by how much they varied; at inference it is a
single deterministic pass of the inner router.

Index legend: ``K`` Monte-Carlo passes, ``T`` tokens, ``d`` token width, ``E`` experts.

Training (``router.training`` and ``samples > 1``)::

    x_s      = dropout_p(x),                      s = 1..K         (independent masks)
    z_s, p_s = inner(x_s).logits, inner(x_s).probs                 [K, T, E]
    p_mean   = mean_s p_s                                          [T, E]
    var_t    = mean_e Var_s(z_s[t, e])            (unbiased)       [T]   routing uncertainty
    tau_t    = sqrt(1 + temper * var_t)           (temper = pi / 8: the probit approximation)
    logits   = log(p_mean) / tau_t                                 [T, E]
    probs    = softmax(logits)                                     gates: top-k of probs

Uncertain tokens (large ``var_t``) get flatter gates; with ``dropout=0`` every pass is the same,
``var_t = 0`` and ``probs == p_mean`` exactly. The inner router's aux losses are computed over
the ``K * T`` dropped-out tokens (one batched call) and returned with their weights, so they
keep training it; the mean uncertainty is reported in ``aux["routing_uncertainty"]`` as an
unweighted statistic (never part of ``aux_loss``) and the per-token values in
:attr:`UncertainRouterOutput.uncertainty`.

Inference (eval mode): ``inner(x)`` unchanged, ``uncertainty`` all zeros (one deterministic pass).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from moesuite.core.routers._registry import ROUTERS, register_router
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = ["UncertaintyRouter", "UncertainRouterOutput"]


@dataclass
class UncertainRouterOutput(RouterOutput):
    """A :class:`RouterOutput` with the per-token routing uncertainty.

    Attributes:
        uncertainty: ``[T]`` fp32, the Monte-Carlo variance of each token's router logits
            (mean over experts); zeros at inference and when dropout is off.
    """

    uncertainty: torch.Tensor | None = None


def _check_wrappable(cls: type) -> None:
    if not getattr(cls, "causal", True) or cls.__name__ == "RecurrentRouter":
        raise ValueError(
            f"base {cls.__name__} is not a stateless token-choice router; the uncertainty "
            "wrapper averages per-token probabilities (use e.g. 'topk')."
        )


@register_router("uncertainty")
class UncertaintyRouter(Router):
    """Uncertainty-aware router: ``K`` Monte-Carlo dropout passes of an inner router in training.

    Args:
        d_model: token width.
        num_experts: ``E``.
        k: experts per token (used when the inner router is built here from ``base``).
        base: the inner router, a registered router name (built with ``d_model``,
            ``num_experts``, ``k`` and ``**base_cfg``) or a :class:`Router` instance. It must be
            a token-choice router without state (not ``expert_choice``, not ``recurrent``).
        samples: ``K``, Monte-Carlo passes in training (``1`` disables the wrapper's effect).
        dropout: dropout probability on the router input in the Monte-Carlo passes.
        temper: coefficient of the per-token variance in the temperature
            ``tau = sqrt(1 + temper * var)``; ``pi / 8`` is the probit approximation of the
            expected softmax under Gaussian logit noise; ``0`` keeps the mean probabilities.
        **base_cfg: options of the inner router (e.g. ``lb_weight``, ``z_weight``).

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> router = UncertaintyRouter(d_model=8, num_experts=4, k=2, samples=4, dropout=0.2)
        >>> out = router(torch.randn(6, 8))
        >>> tuple(out.uncertainty.shape), bool((out.uncertainty > 0).all())
        ((6,), True)
        >>> _ = router.eval()
        >>> float(router(torch.randn(6, 8)).uncertainty.abs().max())
        0.0
    """

    def __init__(
        self,
        d_model: int,
        num_experts: int,
        k: int = 2,
        base: str | Router = "topk",
        samples: int = 4,
        dropout: float = 0.1,
        temper: float = math.pi / 8,
        **base_cfg: Any,
    ):
        if isinstance(base, Router):
            if base_cfg:
                raise ValueError(
                    f"base is a router instance; options {sorted(base_cfg)} cannot be applied to "
                    "it (configure the instance, or pass base as a name)."
                )
            inner = base
            if inner.d_model != d_model or inner.num_experts != num_experts:
                raise ValueError(
                    f"base router has d_model={inner.d_model}, num_experts={inner.num_experts}; "
                    f"the wrapper was given d_model={d_model}, num_experts={num_experts}."
                )
            k = inner.k
        elif isinstance(base, str):
            if base == "uncertainty":
                raise ValueError("base='uncertainty' would wrap the wrapper; name a router.")
            _check_wrappable(ROUTERS.get(base).obj)
            inner = ROUTERS.create(base, d_model=d_model, num_experts=num_experts, k=k, **base_cfg)
        else:
            raise TypeError(
                f"base must be a router name or a Router instance, got {type(base).__name__}."
            )
        _check_wrappable(type(inner))
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a positive int, got {samples!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        if not temper >= 0.0:
            raise ValueError(f"temper must be >= 0, got {temper}.")
        super().__init__(d_model, num_experts, k)
        del self.weight  # the inner router holds the routing weights
        self.inner = inner
        self.samples = samples
        self.dropout = dropout
        self.temper = temper
        # renormalising a single gate would make it 1.0 and cut the router's task gradient
        self.normalize = getattr(inner, "normalize", k > 1)

    @property
    def balancer(self) -> Any:
        """The inner router's aux-loss-free bias (``None`` if it has none); steers selection."""
        return getattr(self.inner, "balancer", None)

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        if state is not None:
            raise ValueError("the uncertainty router is stateless; got a router state.")
        T = x.shape[0]
        if not self.training or self.samples == 1:
            out = self.inner(x)
            return UncertainRouterOutput(
                out.plan,
                out.logits,
                out.probs,
                dict(out.aux),
                state,
                dict(out.aux_weights),
                uncertainty=x.new_zeros(T, dtype=torch.float32),
            )
        K = self.samples
        xs = x.unsqueeze(0).expand(K, T, self.d_model)
        if self.dropout > 0:  # inverted dropout; torch.rand is the fastest CPU sampler here
            keep = torch.rand(K, T, self.d_model, device=x.device) >= self.dropout
            xs = xs * keep.to(x.dtype) / (1.0 - self.dropout)
        passes = self.inner(xs.reshape(K * T, self.d_model))
        z = passes.logits.float().view(K, T, self.num_experts)
        p = passes.probs.float().view(K, T, self.num_experts)
        var = z.var(0, unbiased=True).mean(-1)  # [T]
        p_mean = p.mean(0)
        p_mean = p_mean / p_mean.sum(-1, keepdim=True)  # sigmoid scores: a distribution
        tau = torch.sqrt(1.0 + self.temper * var).unsqueeze(-1)
        logits = torch.log(p_mean.clamp_min(1e-20)) / tau
        self.check_logits(logits)
        probs = logits.softmax(-1)
        balancer = self.balancer
        select = probs if balancer is None else probs.detach() + balancer.bias
        idx = torch.topk(select, self.k, dim=-1).indices
        gates = probs.gather(-1, idx)
        if self.normalize:
            gates = gates / gates.sum(-1, keepdim=True).clamp_min(1e-20)
        plan = RoutingPlan.from_topk(idx, gates.to(x.dtype), self.num_experts)
        aux = dict(passes.aux)
        aux["routing_uncertainty"] = var.mean().detach()
        return UncertainRouterOutput(
            plan, logits, probs, aux, state, dict(passes.aux_weights), uncertainty=var.detach()
        )

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, num_experts={self.num_experts}, k={self.k}, "
            f"samples={self.samples}, dropout={self.dropout}, temper={self.temper:.4g}"
        )
