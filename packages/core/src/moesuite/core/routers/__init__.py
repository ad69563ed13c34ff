"""Routers: ``create(name, d_model=, num_experts=, **cfg)`` builds any registered router.

=================  ====================================================  ======
name               rule                                                  causal
=================  ====================================================  ======
``topk``           token-choice top-k, softmax or sigmoid, aux-free bias  yes
``noisy_topk``     Shazeer 2017 noisy top-k + importance/load losses      yes
``expert_choice``  experts pick their top-C tokens                        no
``sinkhorn``       top-k of a log-domain Sinkhorn plan (training)         yes (eval)
``topp``           dynamic k by cumulative probability                    yes
``recurrent``      RMoE: GRU over depth, state passed layer to layer      yes
``prototype``      cosine similarity to learnable prototypes              yes
``uncertainty``    MC-dropout wrapper of a router (UaR, MoFME)            yes
=================  ====================================================  ======
"""

from moesuite.core.routers._registry import (
    ROUTERS,
    create,
    get_router_class,
    list_routers,
    register_router,
)
from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routers.conditional import ConditionalRouter
from moesuite.core.routers.expert_choice import ExpertChoiceRouter
from moesuite.core.routers.noisy_topk import NoisyTopKRouter
from moesuite.core.routers.prototype import PrototypeRouter
from moesuite.core.routers.recurrent import RecurrentRouter
from moesuite.core.routers.sinkhorn import SinkhornRouter
from moesuite.core.routers.topk import TopKRouter
from moesuite.core.routers.topp import TopPRouter
from moesuite.core.routers.uncertainty import UncertaintyRouter

__all__ = [
    "Router",
    "RouterOutput",
    "ROUTERS",
    "create",
    "get_router_class",
    "list_routers",
    "register_router",
    "TopKRouter",
    "NoisyTopKRouter",
    "ExpertChoiceRouter",
    "SinkhornRouter",
    "TopPRouter",
    "RecurrentRouter",
    "PrototypeRouter",
    "ConditionalRouter",
    "UncertaintyRouter",
]
