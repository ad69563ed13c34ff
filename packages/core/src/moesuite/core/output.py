"""What a model with routers returns: its prediction and its routers' outputs, aux losses included.

Models thread each router's :class:`~moesuite.core.routers.RouterOutput` into their return value
instead of stashing it (STYLE 7), and the training step adds :attr:`MoEOutput.aux_loss` to the
task loss where a reader sees it::

    out = model(x)                          # MoEOutput
    task = F.mse_loss(out.output, y)
    loss = task + out.aux_loss              # every router's weighted aux losses
    return {"loss": loss, "task_loss": task, "aux_loss": out.aux_loss}

Examples:
    >>> import torch
    >>> from moesuite.core import GroupedExperts, MoELayer, routers
    >>> layer = MoELayer(routers.create("topk", d_model=8, num_experts=4, k=2, lb_weight=0.01),
    ...                  GroupedExperts(4, 8, 16))
    >>> y, routing = layer(torch.randn(5, 8))
    >>> out = MoEOutput(y, [routing])
    >>> bool(out.aux_loss > 0), sorted(out.aux_terms())
    (True, ['load_balance', 'z_loss'])
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch

from moesuite.core.routers.base import RouterOutput

__all__ = ["MoEOutput", "total_aux_loss"]

T = TypeVar("T")


def total_aux_loss(
    routing: Iterable[RouterOutput], like: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum of every router output's weighted aux loss (a zero scalar when there is none).

    Args:
        routing: router outputs, e.g. one per MoE layer.
        like: a tensor whose device the zero result takes when ``routing`` is empty.
    """
    total: torch.Tensor | None = None
    for r in routing:
        total = r.aux_loss if total is None else total + r.aux_loss
    if total is None:
        return torch.zeros((), device=like.device if like is not None else None)
    return total


@dataclass
class MoEOutput(Generic[T]):
    """A model's prediction with what each of its routers returned, in call order.

    Attributes:
        output: the prediction (a tensor, or any structure the domain's loss reads).
        routing: one :class:`RouterOutput` per router call.
    """

    output: T
    routing: list[RouterOutput] = field(default_factory=list)

    @property
    def aux_loss(self) -> torch.Tensor:
        """Weighted sum of every router's aux losses: add it to the task loss."""
        like = self.output if isinstance(self.output, torch.Tensor) else None
        return total_aux_loss(self.routing, like)

    def aux_terms(self) -> dict[str, torch.Tensor]:
        """Each aux loss by name, weighted and summed over routers, detached (for logging)."""
        terms: dict[str, torch.Tensor] = {}
        for r in self.routing:
            for name, value in r.aux.items():
                w = r.aux_weights.get(name, 0.0)
                if w:
                    v = (w * value).detach()
                    terms[name] = terms[name] + v if name in terms else v
        return terms

    def __iter__(self) -> Any:
        # ``y, routing = model(x)`` unpacks like MoELayer's ``(y, RouterOutput)``
        return iter((self.output, self.routing))
