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
Euclidean K-means (their code uses a mean absolute distance), empty clusters re-seeded at the
farthest context (their code skips the update; ``GateUpdateConfig(authors_abort=True)`` does
too), global greedy (lowest loss over all pairs
first; their code takes the clusters in index order), K-means re-run from fresh seedings at
every update besides the warm start (``recluster``; theirs warm-starts only), and a tiny ridge
term for a well-posed least-squares problem.

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
    "least_squares_gate",
    "kmeans_least_squares_update",
]


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
        plan = RoutingPlan.from_topk(
            idx, torch.ones(idx.shape, dtype=x.dtype, device=x.device), self.num_experts
        )
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
        noise: std of Gaussian noise added to the contexts in the least-squares problem (the
            authors use 1e-4).
        ridge: Tikhonov term of the least-squares fit (keeps it well-posed).
        recluster: also try ``kmeans_restarts`` fresh seedings at every update (the
            lowest-inertia clustering, warm start included, wins), so that a merge of two
            families can be undone once their contexts separate; ``False`` is the authors'
            warm-start-only K-means.
        authors_abort: the authors' abort rule: K-means runs once from the previous centroids
            (or a random start near 0 at first), and an empty cluster, or no convergence within
            ``kmeans_iters``, skips the update (the gate keeps its weights). Without it the
            update is skipped only when the contexts hold fewer distinct points than there are
            experts (e.g. all still zero), where no clustering means anything.
    """

    kmeans_restarts: int = 20
    kmeans_iters: int = 50
    kmeans_tol: float = 1e-6
    noise: float = 1e-4
    ridge: float = 1e-6
    recluster: bool = True
    authors_abort: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.kmeans_restarts, int) or self.kmeans_restarts < 0:
            raise ValueError(f"kmeans_restarts must be an int >= 0, got {self.kmeans_restarts!r}.")
        if not isinstance(self.kmeans_iters, int) or self.kmeans_iters < 1:
            raise ValueError(f"kmeans_iters must be a positive int, got {self.kmeans_iters!r}.")
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
        aborted: the update was skipped (abort rule); the gate kept its previous weights.
    """

    clusters: torch.Tensor
    centroids: torch.Tensor
    cluster_losses: torch.Tensor
    cluster_expert: torch.Tensor
    target: torch.Tensor
    routed: torch.Tensor
    aborted: bool = False

    @property
    def agreement(self) -> float:
        """Fraction of environments the refitted gate routes to their cluster's expert."""
        return float((self.routed == self.target).double().mean())


def kmeans(
    x: torch.Tensor,
    k: int,
    *,
    init: torch.Tensor | None = None,
    restarts: int = 1,
    iters: int = 50,
    tol: float = 1e-6,
    generator: torch.Generator | None = None,
    abort: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | None:
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
        generator: randomness of the seeding.
        abort: the authors' rule instead: one run from ``init`` (or, without it, from
            centroids drawn uniformly in ``[-1e-3, 1e-3]``), returning ``None`` as soon as a
            cluster is empty or when it has not converged after ``iters`` iterations.

    Returns:
        ``(labels[N], centroids[k, C])``, or ``None`` when ``abort`` gave up.

    Examples:
        >>> import torch
        >>> pts = torch.tensor([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
        >>> labels, _ = kmeans(pts, 2, generator=torch.Generator().manual_seed(0))
        >>> labels.tolist() in ([0, 0, 1, 1], [1, 1, 0, 0])
        True
    """
    x = x.detach().double()
    N = x.shape[0]
    if not isinstance(k, int) or k < 1 or k > N:
        raise ValueError(
            f"k must be an int in [1, N={N}] (one cluster per expert needs N >= E), got {k!r}."
        )
    if abort:
        if init is None:
            init = (torch.rand(k, x.shape[1], generator=generator, dtype=x.dtype) * 2 - 1) * 1e-3
        return _lloyd_or_abort(x, init.detach().double().clone(), iters, tol)
    starts = []
    if init is not None:
        if init.shape != (k, x.shape[1]):
            raise ValueError(f"init must be [k={k}, C={x.shape[1]}], got {tuple(init.shape)}.")
        starts.append(init.detach().double().clone())
    for _ in range(max(restarts, 0 if init is not None else 1)):
        starts.append(_kmeans_pp(x, k, generator))
    best = None
    for c in starts:
        labels, c = _lloyd(x, c, iters, tol)
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
        d2 = torch.cdist(x, c).min(1).values ** 2
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / N)
        nxt = int(torch.multinomial(probs, 1, generator=generator))
        c = torch.cat([c, x[nxt : nxt + 1]])
    return c


def _lloyd(
    x: torch.Tensor, c: torch.Tensor, iters: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor]:
    k = c.shape[0]
    for _ in range(iters):
        labels = torch.cdist(x, c).argmin(1)
        new = c.clone()
        counts = torch.bincount(labels, minlength=k)
        for j in range(k):
            if counts[j] > 0:
                new[j] = x[labels == j].mean(0)
        empty = (counts == 0).nonzero().flatten().tolist()
        if empty:  # re-seed each empty cluster at the point farthest from its centroid
            score = torch.cdist(x, new).gather(1, labels[:, None]).squeeze(1).clone()
            for j in empty:
                i = int(score.argmax())
                new[j] = x[i]
                score[i] = -1.0
        moved = (new - c).abs().max()
        c = new
        if not empty and moved <= tol:
            break
    return torch.cdist(x, c).argmin(1), c


def _lloyd_or_abort(
    x: torch.Tensor, c: torch.Tensor, iters: int, tol: float
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Lloyd iterations that give up on an empty cluster or without convergence (authors')."""
    for _ in range(iters):
        labels = torch.cdist(x, c).argmin(1)
        counts = torch.bincount(labels, minlength=c.shape[0])
        if bool((counts == 0).any()):
            return None
        new = torch.stack([x[labels == j].mean(0) for j in range(c.shape[0])])
        moved = (new - c).abs().max()
        c = new
        if moved <= tol:
            return torch.cdist(x, c).argmin(1), c
    return None


def greedy_assignment(cluster_losses: torch.Tensor) -> torch.Tensor:
    """Assign each cluster a distinct expert from a ``[K, E]`` loss table (``K <= E``).

    Repeatedly takes the lowest remaining (cluster, expert) loss, over all pairs.

    Examples:
        >>> import torch
        >>> greedy_assignment(torch.tensor([[1.0, 0.5], [0.1, 2.0]])).tolist()
        [1, 0]
    """
    K, E = cluster_losses.shape
    if K > E:
        raise ValueError(f"cannot give {K} clusters distinct experts out of {E}.")
    table = torch.nan_to_num(cluster_losses.detach().double(), nan=float("inf"))
    out = torch.full((K,), -1, dtype=torch.long)
    used = torch.zeros(E, dtype=torch.bool)
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


def least_squares_gate(
    contexts: torch.Tensor,
    target: torch.Tensor,
    num_experts: int,
    *,
    noise: float = 0.0,
    ridge: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares fit ``[xi, 1] @ [W^T; b] ~= one_hot(target)``; float64 ``(W[E, C], b[E])``.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[1.0], [2.0], [-1.0], [-2.0]])
        >>> W, b = least_squares_gate(x, torch.tensor([0, 0, 1, 1]), 2)
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
    init = gate.centroids.double() if bool(gate.has_centroids) else None
    clustering = None
    if len(torch.unique(x, dim=0)) >= E:  # fewer distinct contexts than experts: skip
        clustering = kmeans(
            x,
            E,
            init=init,
            restarts=cfg.kmeans_restarts if init is None or cfg.recluster else 0,
            iters=cfg.kmeans_iters,
            tol=cfg.kmeans_tol,
            generator=generator,
            abort=cfg.authors_abort,
        )
    if clustering is None:  # aborted: the gate keeps its weights (the authors also drop
        gate.has_centroids.fill_(False)  # their centroids and restart K-means next time)
        routed = gate.compute_logits(contexts).argmax(-1)
        empty = torch.empty(0)
        return GateUpdateResult(empty, empty, empty, empty, routed, routed, aborted=True)
    labels, centroids = clustering
    losses = expert_losses.detach().double()
    inf = torch.full((E,), float("inf"), dtype=losses.dtype)
    table = torch.stack(
        [losses[labels == j].median(0).values if (labels == j).any() else inf for j in range(E)]
    )
    cluster_expert = greedy_assignment(table)
    target = cluster_expert[labels]
    W, b = least_squares_gate(
        contexts, target, E, noise=cfg.noise, ridge=cfg.ridge, generator=generator
    )
    gate.set_weights(W.to(gate.weight.dtype), b.to(gate.bias.dtype))
    gate.centroids.copy_(centroids.to(gate.centroids.dtype))
    gate.has_centroids.fill_(True)
    routed = gate.compute_logits(contexts).argmax(-1)
    return GateUpdateResult(labels, centroids, table, cluster_expert, target, routed)
