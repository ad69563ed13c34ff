"""The router MLP's training step in numpy: masked BCE, backward pass and Adam, written out.

The router (:class:`~moesuite.streaming.router.OnlineRouter`) is ``v -> relu(W1 v + b1) ->
relu(W2 h1 + b2) -> Wr h2`` (one logit per expert, the core top-k head has no bias). A torch
step on a ``[32, 64]`` batch spends most of its time in dispatch and autograd overhead; the
same step in numpy is a dozen small matmuls. The loss and the update are exactly torch's
``binary_cross_entropy_with_logits(weight=valid, reduction="sum") / max(sum(valid), 1)`` and
``torch.optim.Adam`` (betas 0.9 / 0.999, eps 1e-8, no weight decay), in float64.

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w = [rng.normal(size=(8, 3)), np.zeros(8), rng.normal(size=(4, 8)), np.zeros(4), rng.normal(size=(2, 4))]
    >>> opt = NumpyAdam(w, lr=1e-2)
    >>> V, M = rng.normal(size=(16, 3)), np.tile([1.0, 0.0], (16, 1))
    >>> first = opt.step(V, M, np.ones_like(M))
    >>> for _ in range(200):
    ...     last = opt.step(V, M, np.ones_like(M))
    >>> last < first
    True
"""

from __future__ import annotations

import numpy as np

__all__ = ["NumpyAdam"]


def _bce_with_logits(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Element-wise ``-[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))]``, stable for any ``z``."""
    return np.maximum(z, 0.0) - z * target + np.log1p(np.exp(-np.abs(z)))


class NumpyAdam:
    """Adam on the router's five weight arrays ``[W1, b1, W2, b2, Wr]``, updated in place.

    Args:
        weights: the arrays (shapes ``[h, d]``, ``[h]``, ``[h2, h]``, ``[h2]``, ``[E, h2]``);
            they are modified in place, so a caller holding them sees every step.
        lr: learning rate.
        betas, eps: Adam's moment decays and denominator term (torch's defaults).
    """

    def __init__(self, weights: list[np.ndarray], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.weights = weights
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self._m = [np.zeros_like(w) for w in weights]
        self._v = [np.zeros_like(w) for w in weights]
        self.t = 0

    def gradients(self, v: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Loss and its gradients for a batch ``v[B, d]``, targets ``mask[B, E]``, weights ``valid[B, E]``."""
        w1, b1, w2, b2, wr = self.weights
        a1 = v @ w1.T + b1
        h1 = np.maximum(a1, 0.0)
        a2 = h1 @ w2.T + b2
        h2 = np.maximum(a2, 0.0)
        z = h2 @ wr.T
        norm = max(float(valid.sum()), 1.0)
        loss = float((valid * _bce_with_logits(z, mask)).sum()) / norm
        dz = valid * (1.0 / (1.0 + np.exp(-z)) - mask) / norm
        g_wr = dz.T @ h2
        da2 = (dz @ wr) * (a2 > 0)
        g_w2, g_b2 = da2.T @ h1, da2.sum(0)
        da1 = (da2 @ w2) * (a1 > 0)
        g_w1, g_b1 = da1.T @ v, da1.sum(0)
        return loss, [g_w1, g_b1, g_w2, g_b2, g_wr]

    def step(self, v: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> float:
        """One Adam step on a mini-batch; returns the loss before the step."""
        loss, grads = self.gradients(v, mask, valid)
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        for w, g, m, s in zip(self.weights, grads, self._m, self._v, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            s *= b2
            s += (1.0 - b2) * g * g
            w -= self.lr * (m / c1) / (np.sqrt(s / c2) + self.eps)
        return loss
