"""The router's training step in numpy: masked BCE + load balancing, backward pass and Adam.

The router (:class:`~moesuite.streaming.models.router.OnlineRouter`) is ``v -> relu(W1 v + b1)
-> relu(W2 h1 + b2) -> z = Wr h2`` (one logit per expert; the core top-k head has no bias). A
torch step on a ``[32, 64]`` batch spends most of its time in dispatch and autograd overhead;
the same step in numpy is a dozen small matmuls. The loss and the update are those of the
torch reference, :meth:`~moesuite.streaming.models.router.OnlineRouter.training_step`, in
float64::

    task = sum(valid * bce_with_logits(z, mask)) / max(sum(valid), 1)
    aux  = lb_weight * E * sum_e f_e * mean_b softmax(z)_be    # the core's load balancing,
                                                               # f_e: top-k share of expert e
    loss = task + aux

and ``torch.optim.Adam`` (betas 0.9 / 0.999, eps 1e-8, no weight decay).

Examples:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> w = [rng.normal(size=(8, 3)), np.zeros(8), rng.normal(size=(4, 8)), np.zeros(4),
    ...      rng.normal(size=(2, 4))]
    >>> opt = NumpyAdam(w, lr=1e-2, lb_weight=0.01, k=1)
    >>> V, M = rng.normal(size=(16, 3)), np.tile([1.0, 0.0], (16, 1))
    >>> first = opt.step(V, M, np.ones_like(M))
    >>> for _ in range(200):
    ...     last = opt.step(V, M, np.ones_like(M))
    >>> last["loss"] < first["loss"], last["loss"] == last["task_loss"] + last["aux_loss"]
    (True, True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["NumpyAdam"]


def _bce_with_logits(z: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Element-wise ``-[t log sigmoid(z) + (1 - t) log(1 - sigmoid(z))]``, stable for any ``z``."""
    return np.maximum(z, 0.0) - z * target + np.log1p(np.exp(-np.abs(z)))


def _load_balance(z: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """The core's top-k Switch loss ``E * sum_e f_e P_e`` of logits ``z[B, E]`` and ``d/dz``.

    ``P_e`` is the mean softmax probability of expert ``e`` and ``f_e`` the share of the
    ``B * k`` top-k assignments that went to it (no gradient flows through ``f``).
    """
    B, E = z.shape
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    top = np.argpartition(-p, k - 1, axis=1)[:, :k]
    f = np.bincount(top.ravel(), minlength=E) / (B * k)
    loss = E * float(f @ p.mean(0))
    # d/dz_bj of E/B * sum_e f_e p_be = E/B * p_bj * (f_j - sum_e f_e p_be)
    grad = (E / B) * p * (f - (p @ f)[:, None])
    return loss, grad


class NumpyAdam:
    """Adam on the router's five weight arrays ``[W1, b1, W2, b2, Wr]``, updated in place.

    Args:
        weights: the arrays (shapes ``[h, d]``, ``[h]``, ``[h2, h]``, ``[h2]``, ``[E, h2]``);
            they are modified in place, so a caller holding them sees every step.
        lr: learning rate.
        lb_weight: weight of the load-balancing loss (the router head's, so that both
            implementations minimise the same loss).
        k: experts per instance of the head's top-k selection (for the load-balancing loss).
        betas: Adam's moment decays (torch's defaults).
        eps: Adam's denominator term (torch's default).
    """

    def __init__(
        self,
        weights: list[np.ndarray],
        lr: float,
        lb_weight: float = 0.0,
        k: int = 1,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        self.weights = weights
        self.lr = lr
        self.lb_weight = lb_weight
        self.k = k
        self.betas = betas
        self.eps = eps
        self._m = [np.zeros_like(w) for w in weights]
        self._v = [np.zeros_like(w) for w in weights]
        self.t = 0

    def gradients(
        self, v: np.ndarray, mask: np.ndarray, valid: np.ndarray
    ) -> tuple[dict[str, float], list[np.ndarray]]:
        """Losses and gradients for ``v[B, d]``, targets ``mask[B, E]``, weights ``valid[B, E]``."""
        w1, b1, w2, b2, wr = self.weights
        a1 = v @ w1.T + b1
        h1 = np.maximum(a1, 0.0)
        a2 = h1 @ w2.T + b2
        h2 = np.maximum(a2, 0.0)
        z = h2 @ wr.T
        norm = max(float(valid.sum()), 1.0)
        task = float((valid * _bce_with_logits(z, mask)).sum()) / norm
        dz = valid * (1.0 / (1.0 + np.exp(-z)) - mask) / norm
        aux = 0.0
        if self.lb_weight:
            lb, d_lb = _load_balance(z, self.k)
            aux = self.lb_weight * lb
            dz = dz + self.lb_weight * d_lb
        g_wr = dz.T @ h2
        da2 = (dz @ wr) * (a2 > 0)
        g_w2, g_b2 = da2.T @ h1, da2.sum(0)
        da1 = (da2 @ w2) * (a1 > 0)
        g_w1, g_b1 = da1.T @ v, da1.sum(0)
        losses = {"loss": task + aux, "task_loss": task, "aux_loss": aux}
        return losses, [g_w1, g_b1, g_w2, g_b2, g_wr]

    def step(self, v: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> dict[str, float]:
        """One Adam step on a mini-batch; returns the losses before the step."""
        losses, grads = self.gradients(v, mask, valid)
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for w, g, m, s in zip(self.weights, grads, self._m, self._v, strict=True):
            m *= b1
            m += (1.0 - b1) * g
            s *= b2
            s += (1.0 - b2) * g * g
            w -= self.lr * (m / c1) / (np.sqrt(s / c2) + self.eps)
        return losses
