"""MixER's model: environment contexts, a top-1 gate over contexts, vector-field experts, RK4.

Every environment ``e`` owns a learnable context ``xi_e``. A gate routes the environment (all
its trajectories) to one expert from ``xi_e`` alone; the expert's vector field
``f(y, xi_e)`` is integrated from each initial condition with a fixed-step differentiable RK4.
The same class gives the two baselines of the paper's comparison through ``gate``:

===================  =====================================================================
``gate``             routing
===================  =====================================================================
``least_squares``    MixER: top-1 by a linear gate refitted by K-means + least squares
                     (:mod:`moesuite.physics.mixer.gate`), no gradient, gate value 1,
                     no aux loss
``gradient``         a gradient-trained MoE: the core's top-1 softmax router
                     (:class:`~moesuite.core.routers.TopKRouter`); the field is scaled by the
                     routed probability so the router learns by backpropagation; its
                     load-balancing and z-losses are returned with the prediction
``none``             one shared context-conditioned vector field (``num_experts = 1``)
===================  =====================================================================

Index legend: ``G`` environments in a batch, ``n`` trajectories each, ``T`` times, ``D`` state
size, ``C`` context size, ``E`` experts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from moesuite.core import routers
from moesuite.core.output import MoEOutput
from moesuite.core.routers.base import RouterOutput
from moesuite.physics.mixer.gate import LeastSquaresGate
from moesuite.physics.mixer.integrate import rk4
from moesuite.physics.mixer.vector_fields import ContextVectorFields

__all__ = ["MixERConfig", "MixERModel", "GATES"]

GATES = ("least_squares", "gradient", "none")


@dataclass(frozen=True, kw_only=True)
class MixERConfig:
    """Architecture of a :class:`MixERModel`.

    Attributes:
        state_dim: ``D`` (padded state size of the data).
        num_envs: training environments (one context each).
        num_experts: ``E`` (the K of K-means for MixER).
        context_dim: ``C``.
        hidden: hidden width of each expert.
        depth: hidden layers of each expert.
        activation: expert activation (``silu`` = swish, as in the paper's code).
        gate: ``least_squares`` (MixER), ``gradient`` or ``none`` (shared model, ``E = 1``).
        substeps: RK4 steps per observation interval.
        same_init: all experts start from identical weights (the authors' ``same_expert_init``).
        context_init_std: std of the initial contexts (small: environments start alike).
        lb_weight: load-balancing loss weight of the gradient-trained router.
        z_weight: z-loss weight of the gradient-trained router.
    """

    state_dim: int
    num_envs: int
    num_experts: int = 4
    context_dim: int = 16
    hidden: int = 64
    depth: int = 2
    activation: str = "silu"
    gate: str = "least_squares"
    substeps: int = 2
    same_init: bool = True
    context_init_std: float = 1e-2
    lb_weight: float = 1e-2
    z_weight: float = 1e-3

    def __post_init__(self) -> None:
        if self.gate not in GATES:
            raise ValueError(f"gate must be one of {GATES}, got {self.gate!r}.")
        for name in (
            "state_dim",
            "num_envs",
            "num_experts",
            "context_dim",
            "hidden",
            "depth",
            "substeps",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}.")
        if self.gate == "none" and self.num_experts != 1:
            raise ValueError(
                f"gate='none' is the shared model and needs num_experts=1, got {self.num_experts}."
            )
        if self.gate == "least_squares" and self.num_envs < self.num_experts:
            raise ValueError(
                f"MixER clusters the {self.num_envs} training environments into num_experts="
                f"{self.num_experts} groups; use num_experts <= {self.num_envs}."
            )
        if not self.context_init_std >= 0:
            raise ValueError(f"context_init_std must be >= 0, got {self.context_init_std}.")


class MixERModel(nn.Module):
    """Contexts + gate + context-conditioned vector-field experts + RK4 (see module docs).

    Args:
        config: the architecture.

    Examples:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> config = MixERConfig(state_dim=2, num_envs=3, num_experts=2, context_dim=4, hidden=8)
        >>> model = MixERModel(config)
        >>> out = model(torch.randn(3, 5, 2), dt=torch.full((3,), 0.1), n_times=4)
        >>> tuple(out.output.shape), out.routing[0].plan.num_tokens
        ((3, 5, 4, 2), 3)
    """

    def __init__(self, config: MixERConfig):
        super().__init__()
        self.config = config
        c = config
        self.contexts = nn.Parameter(torch.randn(c.num_envs, c.context_dim) * c.context_init_std)
        self.experts = ContextVectorFields(
            c.num_experts, c.state_dim, c.context_dim, c.hidden, c.depth, c.activation, c.same_init
        )
        self.gate: nn.Module | None
        if c.gate == "least_squares":
            self.gate = LeastSquaresGate(c.context_dim, c.num_experts)
        elif c.gate == "gradient":
            self.gate = routers.create(
                "topk",
                d_model=c.context_dim,
                num_experts=c.num_experts,
                k=1,
                lb_weight=c.lb_weight,
                z_weight=c.z_weight,
            )
        else:
            self.gate = None

    @property
    def num_experts(self) -> int:
        """``E``."""
        return self.config.num_experts

    def expert_parameters(self) -> list[nn.Parameter]:
        """Parameters of the model phase (experts, and the router if it learns by gradient)."""
        params = list(self.experts.parameters())
        if self.gate is not None:
            params += [p for p in self.gate.parameters() if p.requires_grad]
        return params

    def route(self, context: torch.Tensor) -> RouterOutput | None:
        """The gate's decision for ``context[G, C]`` (``None`` for the shared model)."""
        return None if self.gate is None else self.gate(context)

    def assignments(self, context: torch.Tensor | None = None) -> torch.Tensor:
        """``[G]`` expert chosen for each context (all zeros for the shared model)."""
        context = self.contexts if context is None else context
        out = self.route(context)
        if out is None:
            return torch.zeros(context.shape[0], dtype=torch.long, device=context.device)
        return out.plan.expert_idx[torch.argsort(out.plan.token_idx)]

    def forward(
        self,
        y0: torch.Tensor,
        dt: torch.Tensor,
        n_times: int,
        mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        experts: torch.Tensor | None = None,
    ) -> MoEOutput[torch.Tensor]:
        """Integrate each group's trajectories with its routed expert.

        Args:
            y0: ``[G, n, D]`` initial states.
            dt: ``[G]`` observation interval of each group.
            n_times: ``T``, times returned (including ``t = 0``).
            mask: ``[G, D]`` real state dimensions (padding keeps zero derivative).
            context: ``[G, C]``; the model's own training contexts when ``None`` (then
                ``G == num_envs``).
            experts: ``[G]`` experts to use instead of the gate's choice (gate value 1, no
                router called), e.g. the tied warm-up on expert 0.

        Returns:
            ``MoEOutput(y[G, n, T, D], routing)``: ``routing`` holds the gate's
            :class:`~moesuite.core.routers.RouterOutput` (with the gradient-trained router's
            aux losses), or nothing when no router was called.
        """
        context = self.contexts if context is None else context
        self._check(y0, dt, mask, context)
        if experts is not None:
            field = self.experts.bind_indices(context, experts, None, mask)
            return MoEOutput(rk4(field, y0, dt.reshape(-1, 1), n_times, self.config.substeps))
        out = self.route(context)
        if out is None:
            zeros = torch.zeros(context.shape[0], dtype=torch.long, device=context.device)
            field = self.experts.bind_indices(context, zeros, None, mask)
        else:
            field = self.experts.bind(context, out.plan, mask)
        y = rk4(field, y0, dt.reshape(-1, 1), n_times, self.config.substeps)
        return MoEOutput(y, [] if out is None else [out])

    def forward_all_experts(
        self,
        y0: torch.Tensor,
        dt: torch.Tensor,
        n_times: int,
        mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Every expert on every group, ignoring the gate: ``[G, E, n, T, D]``."""
        context = self.contexts if context is None else context
        self._check(y0, dt, mask, context)
        G, E = context.shape[0], self.num_experts
        idx = torch.arange(E, device=context.device).repeat(G)
        rep = lambda t: t.repeat_interleave(E, dim=0)  # noqa: E731
        field = self.experts.bind_indices(
            rep(context), idx, None, None if mask is None else rep(mask)
        )
        y = rk4(field, rep(y0), rep(dt).reshape(-1, 1), n_times, self.config.substeps)
        return y.reshape(G, E, *y.shape[1:])

    def _check(
        self, y0: torch.Tensor, dt: torch.Tensor, mask: torch.Tensor | None, context: torch.Tensor
    ) -> None:
        G, D = context.shape[0], self.config.state_dim
        if y0.dim() != 3 or y0.shape[0] != G or y0.shape[2] != D:
            raise ValueError(f"y0 must be [G={G}, n, D={D}], got {tuple(y0.shape)}.")
        if dt.shape != (G,):
            raise ValueError(f"dt must be [G={G}], got {tuple(dt.shape)}.")
        if mask is not None and mask.shape != (G, D):
            raise ValueError(f"mask must be [G={G}, D={D}], got {tuple(mask.shape)}.")
