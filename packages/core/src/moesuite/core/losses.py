"""Router losses as pure functions, computed in fp32.

Every function takes tensors and returns a scalar tensor; nothing is kept in module state.
Routers return these values in ``RouterOutput.aux``; the model hands its routers' outputs back
in a :class:`~moesuite.core.output.MoEOutput` and the training step adds ``aux_loss`` to its loss.

Index legend: ``T`` tokens, ``E`` experts, ``k`` experts per token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "load_balancing_loss",
    "router_z_loss",
    "cv_squared",
    "importance_loss",
    "routing_entropy",
    "routing_contrastive_loss",
    "centroid_contrastive_loss",
]


def load_balancing_loss(probs: torch.Tensor, counts: torch.Tensor, k: int) -> torch.Tensor:
    """Switch-Transformer load balancing, top-k normalised: ``E * sum_i f_i * P_i``.

    ``f_i = counts_i / (T * k)`` is the fraction of assignments that went to expert ``i`` and
    ``P_i`` the mean router probability of expert ``i``. A perfectly balanced router (uniform
    probabilities and counts) scores exactly 1.0 whatever ``k``; total collapse onto one
    expert scores ``E``.

    Args:
        probs: ``[T, E]`` router probabilities.
        counts: ``[E]`` assignments per expert (no gradient flows through it).
        k: experts per token used to normalise ``f`` (for dynamic-k routers, the mean k).

    Examples:
        >>> import torch
        >>> T, E = 8, 4
        >>> uniform = torch.full((T, E), 1 / E)
        >>> round(float(load_balancing_loss(uniform, torch.full((E,), 4), k=2)), 4)
        1.0
    """
    probs = probs.float()
    T, E = probs.shape
    if T == 0:
        return probs.new_zeros(())
    f = counts.detach().float() / (T * k)
    P = probs.mean(0)
    return E * torch.sum(f * P)


def router_z_loss(logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE router z-loss ``mean_t(logsumexp_e(z_te) ** 2)``: keeps router logits small.

    Examples:
        >>> import torch
        >>> round(float(router_z_loss(torch.zeros(3, 4))), 4)  # log(4)**2
        1.9218
    """
    if logits.shape[0] == 0:
        return logits.new_zeros((), dtype=torch.float32)
    return torch.logsumexp(logits.float(), dim=-1).pow(2).mean()


def cv_squared(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Squared coefficient of variation ``var(x) / mean(x)**2`` (0 for a balanced vector).

    Shazeer et al. (2017) use it on expert importance and load. A single element gives 0.
    """
    x = x.float()
    if x.numel() <= 1:
        return x.new_zeros(())
    return x.var(unbiased=False) / (x.mean().pow(2) + eps)


def importance_loss(gates: torch.Tensor) -> torch.Tensor:
    """``CV(Importance)^2`` with ``Importance_i = sum_t G_ti`` over a ``[T, E]`` gate matrix."""
    return cv_squared(gates.float().sum(0))


def routing_entropy(probs: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Mean per-token entropy ``-sum_e p log p`` of ``[T, E]`` router probabilities (nats).

    Low values mean confident (sparse) routing; ``log E`` is the uniform maximum. Top-p
    routers minimise it as their "dynamic loss" so they do not flatten toward all experts.
    """
    p = probs.float()
    if p.shape[0] == 0:
        return p.new_zeros(())
    return -(p * torch.log(p.clamp_min(eps))).sum(-1).mean()


def routing_contrastive_loss(
    similarity: torch.Tensor, assignment: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """InfoNCE over prototypes: pull each token toward its assigned prototype, push from others.

    Args:
        similarity: ``[T, E]`` cosine similarities between tokens and expert prototypes.
        assignment: ``[T]`` the expert each token was routed to (its positive prototype).
        temperature: softmax temperature of the contrast.

    Returns:
        Mean cross-entropy of the temperature-scaled similarities against the assignment;
        ``log E`` when similarities carry no information, towards 0 for tight clusters.
    """
    if similarity.shape[0] == 0:
        return similarity.new_zeros((), dtype=torch.float32)
    return F.cross_entropy(similarity.float() / temperature, assignment.long().detach())


def centroid_contrastive_loss(
    tokens: torch.Tensor,
    prototypes: torch.Tensor,
    assignment: torch.Tensor,
    temperature: float = 0.07,
) -> torch.Tensor:
    """ProMoE's routing contrastive loss: each prototype against the centroids of the experts.

    For every expert ``i`` that received at least one token, ``m_i`` is the mean of its tokens;
    with ``V`` such experts, ``L = -1/V sum_i log softmax_j(cos(p_i, m_j) / temperature)[i]``
    over ``i, j`` in those experts (Wei et al. 2026, Eq. 6). It pulls each prototype toward the
    centroid of its own tokens (intra-expert coherence) and away from the other experts'
    centroids (inter-expert diversity). Gradients reach both the prototypes and the tokens.
    Fewer than two experts with tokens give 0 (nothing to contrast).

    Args:
        tokens: ``[T, d]`` token features in the prototypes' space.
        prototypes: ``[E, d]`` expert prototypes.
        assignment: ``[T]`` the expert of each token, or ``[T, k]`` its experts (a token then
            counts toward the centroid of each of them); negative entries are ignored.
        temperature: softmax temperature (0.07 in the paper).

    Examples:
        >>> import torch
        >>> protos = torch.eye(3)
        >>> tokens = torch.eye(3).repeat(2, 1)              # two tokens on each prototype
        >>> assign = torch.tensor([0, 1, 2, 0, 1, 2])
        >>> round(float(centroid_contrastive_loss(tokens, protos, assign, 1.0)), 4)
        0.5514
        >>> round(float(centroid_contrastive_loss(tokens, protos, assign.roll(1), 1.0)), 4)
        1.5514
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    if tokens.dim() != 2 or prototypes.dim() != 2 or tokens.shape[1] != prototypes.shape[1]:
        raise ValueError(
            f"tokens [T, d] and prototypes [E, d] must share d, got {tuple(tokens.shape)} and "
            f"{tuple(prototypes.shape)}."
        )
    E = prototypes.shape[0]
    assign = assignment.detach().long()
    if assign.dim() == 1:
        assign = assign[:, None]
    if assign.shape[0] != tokens.shape[0]:
        raise ValueError(
            f"assignment must have one row per token ({tokens.shape[0]}), "
            f"got {tuple(assign.shape)}."
        )
    x = tokens.float()
    # membership [T, E]: token t counts toward expert e's centroid (once, whatever its slot)
    member = torch.zeros(x.shape[0], E + 1, dtype=x.dtype, device=x.device)
    member.scatter_(1, torch.where(assign < 0, E, assign), 1.0)
    member = member[:, :E]
    counts = member.sum(0)
    valid = counts > 0
    if int(valid.sum()) < 2:
        return x.new_zeros(())
    centroids = (member[:, valid].t() @ x) / counts[valid, None]  # [V, d]
    protos = F.normalize(prototypes.float()[valid], dim=-1)
    sim = protos @ F.normalize(centroids, dim=-1).t()  # [V, V]: prototype i vs centroid j
    target = torch.arange(sim.shape[0], device=sim.device)
    return F.cross_entropy(sim / temperature, target)
