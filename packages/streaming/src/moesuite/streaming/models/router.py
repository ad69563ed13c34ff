"""DriftMoE's neural router: a small MLP trained online on the experts' correctness mask.

``v[B, d] -> hidden -> hidden/2`` (ReLU) feeds the core's
:class:`~moesuite.core.routers.topk.TopKRouter`, which gives one logit per expert ``[B, E]``,
the top-k selection and the Switch load-balancing loss. The router learns with Adam on
mini-batches of the most recent instances; its training step (:meth:`OnlineRouter.training_step`)
is the loss a reader sees::

    task = masked BCE(logits, mask of the experts that were right)
    loss = task + out.aux_loss        # lb_weight * load balancing, returned by the core head

Two implementations take the same step: ``trainer="numpy"`` (the default,
:class:`~moesuite.streaming.models.numpy_adam.NumpyAdam`: the forward, backward and Adam update
written out, which is what a per-instance stream learner can afford) and ``trainer="torch"``,
the readable reference (:meth:`OnlineRouter.training_step` with autograd). The tests check that
both give the same losses and weights, aux loss included. Per-instance routing reads a numpy
mirror of the weights (:meth:`OnlineRouter.logits_one`).

Examples:
    >>> import numpy as np
    >>> r = OnlineRouter(n_inputs=3, n_experts=4, hidden=8, seed=0)
    >>> r.logits_one(np.zeros(3)).shape
    (4,)
    >>> V = np.random.default_rng(0).normal(size=(32, 3))
    >>> M = np.zeros((32, 4)); M[:, 2] = 1.0
    >>> for _ in range(60):
    ...     losses = r.fit_batch(V, M, np.ones_like(M))
    >>> int(np.argmax(r.logits_one(V[0]))), sorted(losses)
    (2, ['aux_loss', 'loss', 'task_loss'])
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from moesuite.core import routers
from moesuite.core.output import MoEOutput
from moesuite.core.training import torch_threads
from moesuite.streaming.models.numpy_adam import NumpyAdam

__all__ = ["OnlineRouter", "masked_bce"]

_TRAINERS = ("numpy", "torch")


def masked_bce(logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``logits[B, E]`` against ``mask[B, E]``, averaged over ``valid``.

    Entries with ``valid == 0`` (experts whose correctness was not measured) do not count.
    """
    bce = nn.functional.binary_cross_entropy_with_logits(
        logits, mask, weight=valid, reduction="sum"
    )
    return bce / valid.sum().clamp_min(1.0)


class OnlineRouter(nn.Module):
    """MLP trunk + the core top-k router head, trained online from correctness masks.

    Args:
        n_inputs: width ``d`` of the feature vector.
        n_experts: ``E``, one logit each.
        hidden: first hidden width (the second is ``hidden // 2``, at least 1).
        k: experts selected per instance by the head (the core router's ``k``).
        lr: Adam learning rate.
        lb_weight: weight of the core's Switch load-balancing loss in the training loss
            (0 keeps it as a statistic only).
        seed: seed of the Xavier-uniform initialisation.
        trainer: ``"numpy"`` (default) or ``"torch"`` (the reference): which implementation
            takes the Adam steps.
    """

    def __init__(
        self,
        n_inputs: int,
        n_experts: int,
        hidden: int = 64,
        k: int = 1,
        lr: float = 2e-3,
        lb_weight: float = 0.0,
        seed: int | None = None,
        trainer: str = "numpy",
    ):
        super().__init__()
        if trainer not in _TRAINERS:
            raise ValueError(f"trainer must be one of {_TRAINERS}, got {trainer!r}.")
        h2 = max(1, hidden // 2)
        self.trunk = nn.Sequential(
            nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, h2), nn.ReLU()
        )
        # the head's only weighted aux term is load balancing; its z-loss stays a statistic
        self.head = routers.create(
            "topk", d_model=h2, num_experts=n_experts, k=k, lb_weight=lb_weight, z_weight=0.0
        )
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        for lin in (self.trunk[0], self.trunk[2]):
            nn.init.xavier_uniform_(lin.weight, generator=g)
            nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(self.head.weight, generator=g)
        self.trainer = trainer
        self.steps = 0
        #: sums over every step of the logged losses (``loss`` includes ``aux_loss``)
        self.loss_sums = {"loss": 0.0, "task_loss": 0.0, "aux_loss": 0.0}
        self._sync()
        if trainer == "numpy":
            self._numpy: NumpyAdam | None = NumpyAdam(
                self._w, lr=lr, lb_weight=self.head.lb_weight, k=self.head.k
            )
            self.optimizer = None
        else:
            self._numpy = None
            self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self._torch_stale = False

    def _torch_params(self) -> list[torch.Tensor]:
        lin1, lin2 = self.trunk[0], self.trunk[2]
        return [lin1.weight, lin1.bias, lin2.weight, lin2.bias, self.head.weight]

    def _sync(self) -> None:
        """Refresh the numpy mirror used by :meth:`logits_one` from the torch weights."""
        with torch.no_grad():
            self._w = [t.detach().double().numpy().copy() for t in self._torch_params()]

    def _load_torch(self) -> None:
        """Copy the numpy-trained weights into the torch module (for :meth:`forward`)."""
        with torch.no_grad():
            for t, w in zip(self._torch_params(), self._w, strict=True):
                t.copy_(torch.as_tensor(w, dtype=t.dtype))
        self._torch_stale = False

    def forward(self, v: torch.Tensor) -> MoEOutput:
        """Route a batch ``v[B, d]``: the logits ``[B, E]`` and the head's ``RouterOutput``."""
        if self._torch_stale:
            self._load_torch()
        routing = self.head(self.trunk(v))
        return MoEOutput(routing.logits, [routing])

    def training_step(
        self, v: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The loss of one mini-batch (the torch reference; no optimiser step).

        Args:
            v: ``[B, d]`` feature vectors.
            mask: ``[B, E]`` 1 where the expert was right (the targets).
            valid: ``[B, E]`` 1 where the expert's correctness was measured.

        Returns:
            ``loss`` (what is minimised), ``task_loss`` and ``aux_loss`` (weighted).
        """
        out = self(v)
        task = masked_bce(out.output, mask, valid)
        loss = task + out.aux_loss
        return {"loss": loss, "task_loss": task, "aux_loss": out.aux_loss}

    def logits_one(self, v: np.ndarray) -> np.ndarray:
        """Logits ``[E]`` of one vector ``v[d]`` (numpy fast path, no autograd)."""
        w1, b1, w2, b2, wr = self._w
        h = w1 @ v + b1
        np.maximum(h, 0.0, out=h)
        h = w2 @ h + b2
        np.maximum(h, 0.0, out=h)
        return wr @ h

    def fit_batch(self, v: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> dict[str, float]:
        """One Adam step on a mini-batch (see :meth:`training_step`); returns its losses."""
        if self._numpy is not None:
            losses = self._numpy.step(v, mask, valid)
            self._torch_stale = True
        else:
            # one thread: a step is a few [32, 64] matmuls, and idle worker threads that
            # spin-wait on a loaded machine cost more than the matmuls
            with torch_threads(1):
                losses = self._torch_step(v, mask, valid)
        self.steps += 1
        for name, value in losses.items():
            self.loss_sums[name] += value
        return losses

    def _torch_step(self, v: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> dict[str, float]:
        step = self.training_step(
            torch.as_tensor(v, dtype=torch.float32),
            torch.as_tensor(mask, dtype=torch.float32),
            torch.as_tensor(valid, dtype=torch.float32),
        )
        self.optimizer.zero_grad(set_to_none=True)
        step["loss"].backward()
        self.optimizer.step()
        self._sync()
        return {name: float(value.detach()) for name, value in step.items()}
