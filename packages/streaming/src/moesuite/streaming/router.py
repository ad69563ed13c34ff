"""DriftMoE's neural router: a small MLP trained online on the experts' correctness mask.

``input -> hidden -> hidden/2`` (ReLU) feeds the core's :class:`~moesuite.core.routers.topk.TopKRouter`,
which gives one logit per expert, the top-k selection and the Switch load-balancing loss. The
router is trained with Adam on mini-batches of the most recent instances: binary cross-entropy
between its logits and the multi-hot mask of the experts that were right (entries of experts
whose correctness was not measured are masked out), plus ``lb_weight`` times the core's
load-balancing loss (which keeps the router from collapsing onto a few experts).

Per-instance routing is the hot path of a stream learner, and torch's per-call overhead dwarfs
a 64-wide MLP; :meth:`OnlineRouter.logits_one` therefore evaluates a numpy mirror of the
weights. The training step is in numpy too by default (``trainer="numpy"``: the MLP's backward
pass and Adam written out, :mod:`moesuite.streaming.numpy_adam`), about 10x cheaper than a torch
step on a ``[32, 64]`` batch; ``trainer="torch"`` (and any ``lb_weight > 0``, whose loss comes
from the core head) steps the torch module. :meth:`OnlineRouter.forward` is the readable torch
reference path (the tests check that both paths agree, forward and training).

Examples:
    >>> import numpy as np
    >>> r = OnlineRouter(n_inputs=3, n_experts=4, hidden=8, seed=0)
    >>> r.logits_one(np.zeros(3)).shape
    (4,)
    >>> V = np.random.default_rng(0).normal(size=(32, 3))
    >>> M = np.zeros((32, 4)); M[:, 2] = 1.0
    >>> for _ in range(60):
    ...     _ = r.fit_batch(V, M, np.ones_like(M))
    >>> int(np.argmax(r.logits_one(V[0])))
    2
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from moesuite.core import routers
from moesuite.core.training import torch_threads
from moesuite.streaming.numpy_adam import NumpyAdam

__all__ = ["OnlineRouter"]



class OnlineRouter(nn.Module):
    """MLP trunk + the core top-k router head, trained online from correctness masks.

    Args:
        n_inputs: width of the feature vector.
        n_experts: ``E``, one logit each.
        hidden: first hidden width (the second is ``hidden // 2``, at least 1).
        k: experts selected per instance by :meth:`forward` (the core router's ``k``).
        lr: Adam learning rate.
        lb_weight: weight of the core's Switch load-balancing loss (0 disables it).
        seed: seed of the Xavier-uniform initialisation.
        trainer: ``"numpy"`` (default) or ``"torch"``: which implementation takes the Adam
            steps (numpy needs ``lb_weight == 0``; otherwise torch is used).
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
        if trainer not in ("numpy", "torch"):
            raise ValueError(f"trainer must be 'numpy' or 'torch', got {trainer!r}.")
        h2 = max(1, hidden // 2)
        self.trunk = nn.Sequential(nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Linear(hidden, h2), nn.ReLU())
        self.head = routers.create("topk", d_model=h2, num_experts=n_experts, k=k)
        self.lb_weight = lb_weight
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        for lin in (self.trunk[0], self.trunk[2]):
            nn.init.xavier_uniform_(lin.weight, generator=g)
            nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(self.head.weight, generator=g)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self.steps = 0
        self._sync()
        self._numpy = NumpyAdam(self._w, lr=lr) if trainer == "numpy" and lb_weight == 0 else None
        self._torch_stale = False

    def _sync(self) -> None:
        """Refresh the numpy mirror used by :meth:`logits_one`."""
        with torch.no_grad():
            self._w = [t.detach().double().numpy().copy() for t in self._torch_params()]

    def _load_torch(self) -> None:
        """Copy the numpy-trained weights into the torch module (for :meth:`forward`)."""
        with torch.no_grad():
            for t, w in zip(self._torch_params(), self._w, strict=True):
                t.copy_(torch.as_tensor(w, dtype=t.dtype))
        self._torch_stale = False

    def _torch_params(self) -> list[torch.Tensor]:
        return [self.trunk[0].weight, self.trunk[0].bias, self.trunk[2].weight, self.trunk[2].bias, self.head.weight]

    def forward(self, v: torch.Tensor):
        """Route a batch ``v[B, n_inputs]``: the core :class:`~moesuite.core.routers.base.RouterOutput`."""
        if self._torch_stale:
            self._load_torch()
        return self.head(self.trunk(v))

    def logits_one(self, v: np.ndarray) -> np.ndarray:
        """Logits ``[E]`` of one vector ``v[n_inputs]`` (numpy fast path, no autograd)."""
        w1, b1, w2, b2, wr = self._w
        h = w1 @ v + b1
        np.maximum(h, 0.0, out=h)
        h = w2 @ h + b2
        np.maximum(h, 0.0, out=h)
        return wr @ h

    def fit_batch(self, v: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> float:
        """One Adam step on a mini-batch; returns the loss.

        Args:
            v: ``[B, n_inputs]`` feature vectors.
            mask: ``[B, E]`` 1 where the expert was right (the targets).
            valid: ``[B, E]`` 1 where the expert's correctness was measured.
        """
        if self._numpy is not None:
            loss = self._numpy.step(v, mask, valid)
            self.steps += 1
            self._torch_stale = True
            return loss
        # one thread: a router step is a few [32, 64] matmuls; on a loaded machine spinning
        # worker threads slow it ~20x
        with torch_threads(1):
            return self._step(v, mask, valid)

    def _step(self, v: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> float:
        x = torch.as_tensor(v, dtype=torch.float32)
        target = torch.as_tensor(mask, dtype=torch.float32)
        weight = torch.as_tensor(valid, dtype=torch.float32)
        out = self(x)
        bce = nn.functional.binary_cross_entropy_with_logits(out.logits, target, weight=weight, reduction="sum")
        loss = bce / weight.sum().clamp_min(1.0)
        if self.lb_weight > 0:
            loss = loss + self.lb_weight * out.aux["load_balance"]
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.steps += 1
        self._sync()
        return float(loss.detach())
