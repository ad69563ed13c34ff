"""MixER's gate: top-1 routing of contexts, updated by K-means and least squares (no gradient).

The gate is linear, ``logits = xi W^T + b``, and routes each environment to
``argmax(logits)``. It never receives a gradient. Every few inner training steps,
:func:`kmeans_least_squares_update` refits it:

1. K-means (``K = E``) on the current contexts: the lowest-inertia clustering among a warm
   start from the previous centroids and a few k-means++ seedings;
2. each expert's *median* trajectory loss on each cluster (``[K, E]``);
3. clusters assigned to distinct experts greedily, lowest median loss first;
4. ``[W | b]`` replaced by the least-squares fit from ``[xi, 1]`` to the one-hot expert
   assignment of each environment's cluster.

Readings of the authors' public code that the abstract leaves open, each documented here:
Euclidean K-means (their code uses a mean absolute distance; option ``metric="l1"``),
empty clusters re-seeded at the farthest context (their code skips the update), global greedy
(lowest loss over all pairs first; ``assignment="sequential"`` takes clusters in index order
as their code does), and a tiny ridge term for a well-posed least-squares problem.

Index legend: ``N`` environments, ``C`` context size, ``E`` experts (= ``K`` clusters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from moesuite.core.routers.base import Router, RouterOutput
from moesuite.core.routing import RoutingPlan

__all__ = [
    "LeastSquaresGate",
    "GateUpdateConfig",
    "GateUpdateResult",
    "kmeans",
    "greedy_assignment",
    "hungarian_assignment",
    "least_squares_gate",
    "kmeans_least_squares_update",
]


ASSIGNMENTS = ("global", "sequential", "hungarian")


class LeastSquaresGate(Router):
    """Top-1 linear gate over contexts whose weights are set by least squares, never by gradient.

    ``weight [E, C]`` (from :class:`~moesuite.core.routers.Router`, ``requires_grad=False``)
    and the buffer ``bias [E]``; ``centroids [E, C]`` keeps the last K-means centres for
    warm starts. The plan's gates are 1 (the routed expert's vector field is used as is).

    Examples:
        >>> import torch
        >>> gate = LeastSquaresGate(context_dim=2, num_experts=2)
        >>> _ = gate.set_weights(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]), torch.zeros(2))
        >>> gate(torch.tensor([[2.0, 0.0], [-3.0, 1.0]])).plan.expert_idx.tolist()
        [0, 1]
    """

    def __init__(self, context_dim: int, num_experts: int):
        super().__init__(d_model=context_dim, num_experts=num_experts, k=1)
        self.weight.requires_grad_(False)
        self.register_buffer("bias", torch.zeros(num_experts))
        self.register_buffer("centroids", torch.zeros(num_experts, context_dim))
        self.register_buffer("has_centroids", torch.zeros((), dtype=torch.bool))

    def compute_logits(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach().float() @ self.weight.float().t() + self.bias.float()

    def route(self, x: torch.Tensor, state: Any) -> RouterOutput:
        logits = self.compute_logits(x)
        self.check_logits(logits)
        idx = logits.argmax(-1, keepdim=True)
        plan = RoutingPlan.from_topk(idx, torch.ones(idx.shape, dtype=x.dtype, device=x.device), self.num_experts)
        return RouterOutput(plan, logits, logits.softmax(-1), {}, state, {})

    @torch.no_grad()
    def set_weights(self, weight: torch.Tensor, bias: torch.Tensor) -> LeastSquaresGate:
        """Replace ``W [E, C]`` and ``b [E]`` (in place; no gradient involved)."""
        self.weight.copy_(weight)
        self.bias.copy_(bias)
        return self


@dataclass(frozen=True, kw_only=True)
class GateUpdateConfig:
    """Settings of the K-means + least-squares gate update.

    Attributes:
        kmeans_restarts: k-means++ seedings tried at the first update (no previous centroids
            yet) and, with ``recluster``, at every update; the lowest-inertia clustering wins.
        kmeans_iters: maximum Lloyd iterations.
        kmeans_tol: stop when no centroid moves more than this.
        metric: ``"l2"`` (Euclidean) or ``"l1"`` (mean absolute difference, as in the authors'
            code) for the assignment step.
        assignment: ``"global"`` (lowest median loss over all cluster-expert pairs first),
            ``"sequential"`` (clusters in index order, each taking its best free expert) or
            ``"hungarian"`` (the one-to-one assignment of least total median loss,
            ``scipy.optimize.linear_sum_assignment``).
        standardize: run K-means on contexts scaled to zero mean and unit variance per
            dimension (the least-squares gate still sees the raw contexts); keeps one
            high-variance context direction from dominating the clustering.
        reassign: after the cluster -> expert assignment, move every environment to the expert
            with the lowest loss on it (its own loss row) when that loss is below
            ``1 - reassign_margin`` times its cluster expert's, and re-centre the clusters on the
            experts' new members (the next update's warm start); ``False``: the paper's target
            (the cluster's expert).
        reassign_margin: relative improvement needed to move an environment (identical experts,
            e.g. right after the warm-up, move nobody).
        relocate: with ``reassign``, also move each reassigned environment's context *in
            place* by ``centroid(new cluster) - centroid(old cluster)`` (its offset within the
            cluster, which encodes its parameters, is kept), so that the next K-means puts it
            in its new expert's cluster instead of undoing the move.
        noise: std of Gaussian noise added to the contexts in the least-squares problem (the
            authors use 1e-4).
        ridge: Tikhonov term of the least-squares fit (keeps it well-posed).
        recluster: also try ``kmeans_restarts`` fresh seedings at every update (the
            lowest-inertia clustering, warm start included, wins); lets a merge of two families
            be undone once their contexts separate (ARI 0.89 -> 0.92 on ten families in one
            measured run); ``False`` is the authors' warm-start-only K-means.
    """

    kmeans_restarts: int = 20
    kmeans_iters: int = 50
    kmeans_tol: float = 1e-6
    metric: str = "l2"
    assignment: str = "global"
    noise: float = 1e-4
    ridge: float = 1e-6
    recluster: bool = True
    standardize: bool = False
    reassign: bool = False
    reassign_margin: float = 0.2
    relocate: bool = False

    def __post_init__(self) -> None:
        if self.metric not in ("l2", "l1"):
            raise ValueError(f"metric must be 'l2' or 'l1', got {self.metric!r}.")
        if self.assignment not in ASSIGNMENTS:
            raise ValueError(f"assignment must be one of {ASSIGNMENTS}, got {self.assignment!r}.")
        if not isinstance(self.kmeans_restarts, int) or self.kmeans_restarts < 0:
            raise ValueError(f"kmeans_restarts must be an int >= 0, got {self.kmeans_restarts!r}.")
        if not isinstance(self.kmeans_iters, int) or self.kmeans_iters < 1:
            raise ValueError(f"kmeans_iters must be a positive int, got {self.kmeans_iters!r}.")
        if not 0 <= self.reassign_margin < 1:
            raise ValueError(f"reassign_margin must be in [0, 1), got {self.reassign_margin!r}.")
        if self.noise < 0 or self.ridge < 0 or self.kmeans_tol < 0:
            raise ValueError("noise, ridge and kmeans_tol must be >= 0.")


@dataclass(frozen=True)
class GateUpdateResult:
    """What one gate update decided.

    Attributes:
        clusters: ``[N]`` K-means cluster of each environment.
        centroids: ``[K, C]``.
        cluster_losses: ``[K, E]`` median loss of each expert on each cluster.
        cluster_expert: ``[K]`` expert assigned to each cluster.
        target: ``[N]`` expert each environment should go to (its cluster's expert).
        routed: ``[N]`` expert the refitted gate actually routes to.
    """

    clusters: torch.Tensor
    centroids: torch.Tensor
    cluster_losses: torch.Tensor
    cluster_expert: torch.Tensor
    target: torch.Tensor
    routed: torch.Tensor

    @property
    def agreement(self) -> float:
        """Fraction of environments the refitted gate routes to their cluster's expert."""
        return float((self.routed == self.target).double().mean())


def _distances(x: torch.Tensor, c: torch.Tensor, metric: str) -> torch.Tensor:
    if metric == "l1":
        return (x[:, None, :] - c[None, :, :]).abs().mean(-1)
    return torch.cdist(x, c)


def kmeans(
    x: torch.Tensor,
    k: int,
    *,
    init: torch.Tensor | None = None,
    restarts: int = 1,
    iters: int = 50,
    tol: float = 1e-6,
    metric: str = "l2",
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's K-means, never leaving a cluster empty; the best of several starts.

    Candidates are the warm start ``init`` (if given) and ``restarts`` k-means++ seedings;
    the solution with the lowest inertia (sum of squared distances to the centroids) wins.

    Args:
        x: ``[N, C]`` points (``N >= k``).
        k: clusters.
        init: ``[k, C]`` starting centroids (warm start).
        restarts: k-means++ seedings tried besides ``init`` (at least one when ``init`` is
            ``None``).
        iters: maximum Lloyd iterations per start.
        tol: stop when every centroid moves less than this.
        metric: ``"l2"`` or ``"l1"`` (assignment distance; centroids are means either way).
        generator: randomness of the seeding.

    Returns:
        ``(labels[N], centroids[k, C])``.

    Examples:
        >>> import torch
        >>> pts = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
        >>> labels, _ = kmeans(pts, 2, generator=torch.Generator().manual_seed(0))
        >>> bool(labels[0] == labels[1]) and bool(labels[2] == labels[3]) and bool(labels[0] != labels[2])
        True
    """
    x = x.detach().double()
    N = x.shape[0]
    if not isinstance(k, int) or k < 1 or k > N:
        raise ValueError(f"k must be an int in [1, N={N}] (one cluster per expert needs N >= E), got {k!r}.")
    starts = []
    if init is not None:
        if init.shape != (k, x.shape[1]):
            raise ValueError(f"init must be [k={k}, C={x.shape[1]}], got {tuple(init.shape)}.")
        starts.append(init.detach().double().clone())
    for _ in range(max(restarts, 0 if init is not None else 1)):
        starts.append(_kmeans_pp(x, k, generator))
    best = None
    for c in starts:
        labels, c = _lloyd(x, c, iters, tol, metric)
        inertia = float(((x - c[labels]) ** 2).sum())
        if best is None or inertia < best[0] - 1e-12:
            best = (inertia, labels, c)
    assert best is not None
    return best[1], best[2]


def _kmeans_pp(x: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    N = x.shape[0]
    first = int(torch.randint(N, (1,), generator=generator))
    c = x[first : first + 1]
    for _ in range(1, k):
        d2 = _distances(x, c, "l2").min(1).values ** 2
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / N)
        nxt = int(torch.multinomial(probs, 1, generator=generator))
        c = torch.cat([c, x[nxt : nxt + 1]])
    return c


def _lloyd(x: torch.Tensor, c: torch.Tensor, iters: int, tol: float, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    k = c.shape[0]
    for _ in range(iters):
        labels = _distances(x, c, metric).argmin(1)
        new = c.clone()
        counts = torch.bincount(labels, minlength=k)
        for j in range(k):
            if counts[j] > 0:
                new[j] = x[labels == j].mean(0)
        empty = (counts == 0).nonzero().flatten().tolist()
        if empty:  # re-seed each empty cluster at the point farthest from its centroid
            score = _distances(x, new, "l2").gather(1, labels[:, None]).squeeze(1).clone()
            for j in empty:
                i = int(score.argmax())
                new[j] = x[i]
                score[i] = -1.0
        moved = (new - c).abs().max()
        c = new
        if not empty and moved <= tol:
            break
    return _distances(x, c, metric).argmin(1), c


def greedy_assignment(cluster_losses: torch.Tensor, order: str = "global") -> torch.Tensor:
    """Assign each cluster a distinct expert from a ``[K, E]`` loss table (``K <= E``).

    ``"global"``: repeatedly take the lowest remaining (cluster, expert) loss. ``"sequential"``:
    clusters in index order, each taking its lowest-loss expert not yet used.

    Examples:
        >>> import torch
        >>> greedy_assignment(torch.tensor([[1.0, 0.5], [0.1, 2.0]])).tolist()
        [1, 0]
        >>> greedy_assignment(torch.tensor([[0.2, 0.5], [0.1, 2.0]]), "sequential").tolist()
        [0, 1]
    """
    K, E = cluster_losses.shape
    if K > E:
        raise ValueError(f"cannot give {K} clusters distinct experts out of {E}.")
    losses = torch.nan_to_num(cluster_losses.detach().double(), nan=float("inf"))
    out = torch.full((K,), -1, dtype=torch.long)
    used = torch.zeros(E, dtype=torch.bool)
    if order == "sequential":
        for j in range(K):
            row = losses[j].masked_fill(used, float("inf"))
            e = int(row.argmin()) if torch.isfinite(row).any() else int((~used).nonzero()[0])
            out[j], used[e] = e, True
        return out
    if order != "global":
        raise ValueError(f"order must be 'global' or 'sequential', got {order!r}.")
    table = losses.clone()
    for _ in range(K):
        flat = int(table.argmin()) if torch.isfinite(table).any() else None
        if flat is None:  # every remaining pair is inf: fill in index order
            j = int((out < 0).nonzero()[0])
            e = int((~used).nonzero()[0])
        else:
            j, e = divmod(flat, E)
        out[j], used[e] = e, True
        table[j, :] = float("inf")
        table[:, e] = float("inf")
    return out


def hungarian_assignment(cluster_losses: torch.Tensor) -> torch.Tensor:
    """The one-to-one cluster -> expert assignment of least total loss (``K <= E``).

    Infinite losses (empty clusters) are replaced by a value above every finite one, so they
    are assigned last.

    Examples:
        >>> import torch
        >>> # greedy takes (1, 0) at 0.1 first and leaves cluster 0 the 0.9; the optimum costs 0.5
        >>> hungarian_assignment(torch.tensor([[0.2, 0.9], [0.1, 0.3]])).tolist()
        [0, 1]
    """
    from scipy.optimize import linear_sum_assignment

    K, E = cluster_losses.shape
    if K > E:
        raise ValueError(f"cannot give {K} clusters distinct experts out of {E}.")
    losses = torch.nan_to_num(cluster_losses.detach().double(), nan=float("inf"))
    finite = losses[torch.isfinite(losses)]
    big = 1.0 + (float(finite.abs().max()) * (K + 1) if finite.numel() else 1.0)
    table = torch.where(torch.isfinite(losses), losses, torch.full_like(losses, big)).numpy()
    rows, cols = linear_sum_assignment(table)
    out = torch.full((K,), -1, dtype=torch.long)
    out[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return out


def assign_clusters(cluster_losses: torch.Tensor, method: str = "global") -> torch.Tensor:
    """Cluster -> distinct expert by ``method`` (one of :data:`ASSIGNMENTS`)."""
    if method == "hungarian":
        return hungarian_assignment(cluster_losses)
    return greedy_assignment(cluster_losses, method)


def least_squares_gate(
    contexts: torch.Tensor, target: torch.Tensor, num_experts: int, *, noise: float = 0.0, ridge: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares fit ``[xi, 1] @ [W^T; b] ~= one_hot(target)``; returns float64 ``(W[E, C], b[E])``.

    Examples:
        >>> import torch
        >>> W, b = least_squares_gate(torch.tensor([[1.0], [2.0], [-1.0], [-2.0]]), torch.tensor([0, 0, 1, 1]), 2)
        >>> (torch.tensor([[1.5], [-1.5]], dtype=W.dtype) @ W.t() + b).argmax(1).tolist()
        [0, 1]
    """
    x = contexts.detach().double()
    if noise > 0:
        x = x + noise * torch.randn(x.shape, generator=generator, dtype=x.dtype)
    X = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], 1)
    Y = torch.nn.functional.one_hot(target.long(), num_experts).double()
    if ridge > 0:
        X = torch.cat([X, ridge**0.5 * torch.eye(X.shape[1], dtype=X.dtype)])
        Y = torch.cat([Y, torch.zeros(X.shape[1], num_experts, dtype=Y.dtype)])
    sol = torch.linalg.lstsq(X, Y, driver="gelsd").solution  # [C + 1, E]
    return sol[:-1].t().contiguous(), sol[-1].contiguous()


@torch.no_grad()
def kmeans_least_squares_update(
    gate: LeastSquaresGate,
    contexts: torch.Tensor,
    expert_losses: torch.Tensor,
    config: GateUpdateConfig | None = None,
    generator: torch.Generator | None = None,
) -> GateUpdateResult:
    """Refit ``gate`` in place from the contexts and each expert's loss on each environment.

    Args:
        gate: the gate to update (its ``centroids`` buffer warm-starts K-means).
        contexts: ``[N, C]`` current contexts of the training environments.
        expert_losses: ``[N, E]`` loss of every expert on every environment.
        config: update settings.
        generator: randomness (k-means++ seeding, least-squares noise).

    Returns:
        A :class:`GateUpdateResult` (clusters, assignment, agreement of the refitted gate).
    """
    cfg = config or GateUpdateConfig()
    N, E = expert_losses.shape
    if contexts.shape != (N, gate.d_model) or E != gate.num_experts:
        raise ValueError(
            f"contexts must be [N, {gate.d_model}] and expert_losses [N, {gate.num_experts}], got "
            f"{tuple(contexts.shape)} and {tuple(expert_losses.shape)}."
        )
    x = contexts.detach().double()
    mu, sd = (x.mean(0), x.std(0).clamp_min(1e-12)) if cfg.standardize else (torch.zeros(()), torch.ones(()))
    init = (gate.centroids.double() - mu) / sd if bool(gate.has_centroids) else None
    labels, centroids = kmeans((x - mu) / sd, E, init=init,
                               restarts=cfg.kmeans_restarts if init is None or cfg.recluster else 0,
                               iters=cfg.kmeans_iters, tol=cfg.kmeans_tol, metric=cfg.metric, generator=generator)
    centroids = centroids * sd + mu
    losses = expert_losses.detach().double()
    inf = torch.full((E,), float("inf"), dtype=losses.dtype)
    table = torch.stack([losses[labels == j].median(0).values if (labels == j).any() else inf for j in range(E)])
    cluster_expert = assign_clusters(table, cfg.assignment)
    target = cluster_expert[labels]
    if cfg.reassign:
        target = _reassign(losses, target, cfg.reassign_margin)
        expert_cluster = torch.empty(E, dtype=torch.long)
        expert_cluster[cluster_expert] = torch.arange(E)
        new_labels = expert_cluster[target]
        if cfg.relocate:  # keep each moved context's offset within its cluster
            contexts.data += (centroids[new_labels] - centroids[labels]).to(contexts.dtype)
            x = contexts.detach().double()
        centroids = torch.stack([x[new_labels == j].mean(0) if (new_labels == j).any() else centroids[j]
                                 for j in range(E)])
    W, b = least_squares_gate(contexts, target, E, noise=cfg.noise, ridge=cfg.ridge, generator=generator)
    gate.set_weights(W.to(gate.weight.dtype), b.to(gate.bias.dtype))
    gate.centroids.copy_(centroids.to(gate.centroids.dtype))
    gate.has_centroids.fill_(True)
    routed = gate.compute_logits(contexts).argmax(-1)
    return GateUpdateResult(labels, centroids, table, cluster_expert, target, routed)


def _reassign(losses: torch.Tensor, target: torch.Tensor, margin: float) -> torch.Tensor:
    """Loss-based reassignment: each environment to its lowest-loss expert if ``margin`` better.

    The lowest loss must be below ``1 - margin`` times the loss of the expert it was given.
    """
    finite = torch.nan_to_num(losses, nan=float("inf"))
    best_loss, best = finite.min(1)
    current = finite.gather(1, target[:, None]).squeeze(1)
    move = torch.isfinite(best_loss) & (best_loss < (1.0 - margin) * current)
    return torch.where(move, best, target)
