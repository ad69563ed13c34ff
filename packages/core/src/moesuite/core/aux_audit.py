"""Checks that every aux loss a router computes reaches the loss that is minimised.

A router's aux losses (load balancing, z-loss, contrastive...) only act if the training step
adds them to its loss. :class:`AuxLossAudit` hooks every :class:`~moesuite.core.routers.Router`
inside a model during one forward pass and, after ``loss.backward()``, names each weighted aux
term whose gradient never arrived: an aux loss that was computed and dropped.
:class:`~moesuite.core.training.MoESystem` runs it on its first training step, and
:func:`moesuite.core.testing.assert_aux_consumed` runs it in tests of training loops that do
not use Lightning.

Examples:
    >>> import torch
    >>> from moesuite.core import GroupedExperts, MoELayer, routers
    >>> layer = MoELayer(
    ...     routers.create("topk", d_model=4, num_experts=2, k=1), GroupedExperts(2, 4, 8)
    ... )
    >>> with AuxLossAudit(layer) as audit:
    ...     y, routing = layer(torch.randn(6, 4))
    >>> y.sum().backward()              # the aux losses were dropped
    >>> audit.unconsumed()
    ['router: load_balance', 'router: z_loss']
    >>> with AuxLossAudit(layer) as audit:
    ...     y, routing = layer(torch.randn(6, 4))
    >>> (y.sum() + routing.aux_loss).backward()
    >>> audit.unconsumed()
    []
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from moesuite.core.routers.base import Router, RouterOutput

__all__ = ["AuxLossAudit"]


class AuxLossAudit:
    """Context manager: records the weighted aux terms of every router call inside the block.

    Only terms with a non-zero weight that require a gradient are audited (an unweighted term
    is a statistic, not a loss). Hooks on the modules are removed when the block exits; the
    gradient hooks on the recorded terms fire during the later ``backward()``.

    Args:
        model: any module; every :class:`Router` inside it (or the module itself) is hooked.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self._handles: list[Any] = []
        self._terms: list[tuple[str, list[bool]]] = []

    def __enter__(self) -> AuxLossAudit:
        for name, module in self.model.named_modules():
            if isinstance(module, Router):
                self._handles.append(module.register_forward_hook(self._hook(name or "router")))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @property
    def audited(self) -> int:
        """How many weighted aux terms were recorded."""
        return len(self._terms)

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs: Any, out: RouterOutput) -> None:
            if not isinstance(out, RouterOutput):
                return
            for key, value in out.aux.items():
                if (
                    out.aux_weights.get(key, 0.0)
                    and isinstance(value, torch.Tensor)
                    and value.requires_grad
                ):
                    flag = [False]

                    def mark(grad: torch.Tensor, flag: list[bool] = flag) -> None:
                        flag[0] = True

                    value.register_hook(mark)
                    self._terms.append((f"{name}: {key}", flag))

        return hook

    def unconsumed(self) -> list[str]:
        """``"<router>: <aux name>"`` per recorded term no gradient reached (sorted, unique)."""
        return sorted({label for label, flag in self._terms if not flag[0]})

    def check(self) -> None:
        """Raise ``RuntimeError`` naming the aux losses that were computed and not consumed."""
        missing = self.unconsumed()
        if missing:
            raise RuntimeError(
                f"router aux losses were computed but never reached the loss: {missing}. "
                "The model must return its routers' outputs (moesuite.core.MoEOutput) and "
                "the training step must add their aux_loss to the loss; set the weight to 0 "
                "to keep a term as a statistic only."
            )
