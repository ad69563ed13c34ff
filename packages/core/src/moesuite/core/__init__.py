"""moesuite.core: routers, losses, grouped experts, kernels and expert parallelism.

Examples:
    >>> import torch
    >>> from moesuite.core import MoELayer, GroupedExperts, routers
    >>> layer = MoELayer(routers.create("topk", d_model=16, num_experts=8, k=2),
    ...                  GroupedExperts(8, 16, 32))
    >>> y, routing = layer(torch.randn(4, 16))
    >>> tuple(y.shape), routing.plan.counts.sum().item()
    ((4, 16), 8)
"""

from importlib.metadata import PackageNotFoundError, version

from moesuite.core import losses, routers
from moesuite.core.balance import AuxFreeBias, CapacityPolicy
from moesuite.core.experts import ExpertList, GroupedExperts
from moesuite.core.layer import MoELayer
from moesuite.core.output import MoEOutput
from moesuite.core.routers import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

try:
    __version__ = version("moesuite-core")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AuxFreeBias",
    "CapacityPolicy",
    "ExpertList",
    "GroupedExperts",
    "MoELayer",
    "MoEOutput",
    "Router",
    "RouterOutput",
    "RoutingPlan",
    "losses",
    "routers",
    "__version__",
]
