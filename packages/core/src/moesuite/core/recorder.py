"""Record what every MoE layer of a model routed during a forward pass (forward hooks).

A :class:`RoutingRecorder` hooks every :class:`~moesuite.core.layer.MoELayer` inside a model and
keeps each layer's :class:`~moesuite.core.routers.RouterOutput`, for statistics and plots. It
only observes: aux losses reach the loss through the model's return value
(:class:`~moesuite.core.output.MoEOutput`), never through hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from moesuite.core.layer import MoELayer
from moesuite.core.routers.base import RouterOutput

__all__ = ["RoutingRecord", "RoutingRecorder", "moe_layers"]


@dataclass
class RoutingRecord:
    """One MoE layer call: the layer's qualified name, the layer and what its router returned."""

    name: str
    layer: MoELayer
    output: RouterOutput


def moe_layers(model: nn.Module) -> list[tuple[str, MoELayer]]:
    """Every ``MoELayer`` inside ``model`` with its qualified name, in registration order."""
    return [(name or "moe", m) for name, m in model.named_modules() if isinstance(m, MoELayer)]


class RoutingRecorder:
    """Context manager collecting the router outputs of every MoE layer in ``model``.

    Args:
        model: any module containing :class:`MoELayer` s.
        detach: keep detached copies of logits/probs only (saves memory when only statistics
            are needed).
        on_record: if given, called with ``(name, layer, router_output)`` at every MoE layer
            call instead of keeping a record: a summary taken there keeps memory flat over
            any number of passes (e.g. a long roll-out); :attr:`records` stays empty.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from moesuite.core import MoELayer, GroupedExperts, routers
        >>> net = nn.Sequential(MoELayer(routers.create("topk", d_model=4, num_experts=2, k=1),
        ...                              GroupedExperts(2, 4, 8)))
        >>> with RoutingRecorder(net) as rec:
        ...     _ = net[0](torch.randn(3, 4))
        >>> [(r.name, r.output.plan.num_tokens) for r in rec.records]
        [('0', 3)]
    """

    def __init__(
        self,
        model: nn.Module,
        detach: bool = False,
        on_record: Callable[[str, nn.Module, RouterOutput], None] | None = None,
    ):
        self.model = model
        self.detach = detach
        self.on_record = on_record
        self.records: list[RoutingRecord] = []
        self._handles: list[Any] = []

    def __enter__(self) -> RoutingRecorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Install the hooks (idempotent)."""
        if self._handles:
            return
        for name, layer in moe_layers(self.model):
            self._handles.append(layer.register_forward_hook(self._hook(name)))

    def stop(self) -> None:
        """Remove the hooks; records are kept."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def clear(self) -> None:
        """Forget the records collected so far."""
        self.records.clear()

    def total_aux_loss(self) -> torch.Tensor:
        """Sum of the recorded layers' weighted aux losses."""
        total = torch.zeros(())
        for rec in self.records:
            total = total + rec.output.aux_loss.to(total.device)
        return total

    def _hook(self, name: str):
        def hook(layer: MoELayer, inputs: Any, output: tuple[torch.Tensor, RouterOutput]):
            out = output[1]
            if self.on_record is not None:
                self.on_record(name, layer, out)
                return
            if self.detach:
                out = RouterOutput(
                    out.plan.with_weight(out.plan.weight.detach()),
                    out.logits.detach(),
                    out.probs.detach(),
                    {k: v.detach() for k, v in out.aux.items()},
                    None,
                    dict(out.aux_weights),
                )
            self.records.append(RoutingRecord(name, layer, out))

        return hook
