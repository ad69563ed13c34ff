"""Evidence-based Dirichlet critics: per-expert reliability scores and corrective residuals.

For each target the critic reads the (detached) opinions of all experts and outputs

* non-negative evidence ``e[B, E]`` -> a Dirichlet over experts with ``a = e + 1``; reliability
  ``a / sum(a)`` (sums to 1 over experts) and total evidence ``S = sum(a)`` (confidence);
* a corrective residual ``r[B, E]`` added to each expert's prediction.

Training (Sensoy et al. 2018, evidential classification): the "label" is the expert closest to
the truth; the loss is the Dirichlet expected squared error (Bayes risk) plus a KL term pulling
the evidence of wrong experts to zero, and the residuals are fitted by squared error.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CRITIC_TARGETS",
    "CriticOutput",
    "DirichletCritic",
    "dirichlet_risk",
    "dirichlet_kl_uniform",
    "critic_loss",
]


@dataclass(frozen=True)
class CriticOutput:
    """The critics' output.

    ``evidence``, ``reliability``, ``residual``: ``[B, E, n_targets]``; ``strength``:
    ``[B, n_targets]``.
    """

    evidence: torch.Tensor
    reliability: torch.Tensor
    strength: torch.Tensor
    residual: torch.Tensor


class DirichletCritic(nn.Module):
    """MLP over all experts' opinions -> Dirichlet evidence and residuals per expert and target.

    Args:
        d_opinion: width of one expert's opinion vector.
        num_experts: ``E``.
        n_targets: targets (2: depth, tau).
        d_hidden: hidden width.
        d_context: width of an optional context the critic also reads (EvidenceMoE gives it
            the signal's features, so that it can tell in which regime which expert is right).

    Examples:
        >>> critic = DirichletCritic(d_opinion=5, num_experts=3)
        >>> out = critic(torch.randn(4, 3, 5))
        >>> sums_to_one = bool(torch.allclose(out.reliability.sum(1), torch.ones(4, 2)))
        >>> tuple(out.reliability.shape), sums_to_one
        ((4, 3, 2), True)
    """

    def __init__(
        self,
        d_opinion: int,
        num_experts: int,
        n_targets: int = 2,
        d_hidden: int = 64,
        d_context: int = 0,
    ):
        super().__init__()
        self.d_opinion, self.num_experts, self.n_targets, self.d_hidden = (
            d_opinion,
            num_experts,
            n_targets,
            d_hidden,
        )
        self.d_context = d_context
        self.net = nn.Sequential(
            nn.Linear(d_opinion * num_experts + d_context, d_hidden),
            nn.GELU(),
            nn.Linear(d_hidden, d_hidden),
            nn.GELU(),
            nn.Linear(d_hidden, 2 * num_experts * n_targets),
        )

    def forward(self, opinions: torch.Tensor, context: torch.Tensor | None = None) -> CriticOutput:
        """``opinions[B, E, d_opinion]`` (and ``context[B, d_context]``) ``-> CriticOutput``."""
        B = opinions.shape[0]
        inp = opinions.reshape(B, -1)
        if self.d_context:
            if context is None or context.shape != (B, self.d_context):
                raise ValueError(f"this critic needs a context of shape [B, {self.d_context}].")
            inp = torch.cat([inp, context], dim=1)
        out = self.net(inp).reshape(B, self.num_experts, self.n_targets, 2)
        evidence = F.softplus(out[..., 0])
        alpha = evidence + 1.0
        strength = alpha.sum(1)
        return CriticOutput(evidence, alpha / strength[:, None, :], strength, 0.1 * out[..., 1])


def dirichlet_risk(target: torch.Tensor, alpha: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Expected squared error of a one-hot ``target`` under ``Dir(alpha)`` along ``dim``.

    Examples:
        >>> a = torch.tensor([[9.0, 1.0]])
        >>> round(float(dirichlet_risk(torch.tensor([[1.0, 0.0]]), a)), 4)
        0.0364
    """
    S = alpha.sum(dim, keepdim=True)
    p = alpha / S
    return ((target - p) ** 2 + p * (1 - p) / (S + 1)).sum(dim)


def dirichlet_kl_uniform(alpha: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """``KL(Dir(alpha) || Dir(1))`` along ``dim``."""
    K = alpha.shape[dim]
    S = alpha.sum(dim)
    return (
        torch.lgamma(S)
        - torch.lgamma(torch.tensor(float(K), dtype=alpha.dtype))
        - torch.lgamma(alpha).sum(dim)
        + ((alpha - 1) * (torch.digamma(alpha) - torch.digamma(S.unsqueeze(dim)))).sum(dim)
    )


CRITIC_TARGETS = ("argmin", "softmin", "rank")


def critic_loss(
    critic: CriticOutput,
    expert_pred: torch.Tensor,
    y: torch.Tensor,
    kl_weight: float = 0.05,
    target: str = "argmin",
    temperature: float = 0.5,
) -> torch.Tensor:
    """Dirichlet risk + KL on wrong experts' evidence + residual MSE (scalar).

    Args:
        critic: the critic's output.
        expert_pred: ``[B, E, T]`` detached expert predictions.
        y: ``[B, T]`` truth.
        kl_weight: weight of the KL term.
        target: ``"argmin"``: one-hot on the expert closest to the truth (Sensoy et al.);
            ``"softmin"``: ``softmax(-err / (temperature * mean_e err))`` over experts, a graded
            target that ranks every expert by its relative error in this signal (the risk term
            is the Dirichlet expected squared error to that distribution; the KL term still
            removes the closest expert's evidence).
            ``"rank"``: the softmin target plus a pairwise ranking term: for every pair of
            experts, a logistic loss on ``log a_i - log a_j`` whose label says which of the two
            is closer to the truth in this signal (what the within-signal Spearman measures).
        temperature: of the softmin, relative to the signal's mean expert error.
    """
    if target not in CRITIC_TARGETS:
        raise ValueError(f"target must be one of {CRITIC_TARGETS}, got {target!r}.")
    err = (expert_pred - y[:, None, :]).abs()
    onehot = F.one_hot(err.argmin(1), expert_pred.shape[1]).transpose(1, 2).to(y.dtype)  # [B, E, T]
    goal = onehot
    if target in ("softmin", "rank"):
        rel = err / (temperature * err.mean(1, keepdim=True) + 1e-12)
        goal = torch.softmax(-rel, dim=1)
    alpha = critic.evidence + 1
    alpha_wrong = onehot + (1 - onehot) * alpha  # remove the evidence of the right expert
    risk = dirichlet_risk(goal, alpha).mean()
    kl = dirichlet_kl_uniform(alpha_wrong).mean()
    resid = ((expert_pred + critic.residual - y[:, None, :]) ** 2).mean()
    loss = risk + kl_weight * kl + resid
    if target == "rank":
        la = alpha.log()
        i, j = torch.triu_indices(alpha.shape[1], alpha.shape[1], 1)
        closer = (err[:, i] < err[:, j]).to(la.dtype)  # [B, pairs, T]
        loss = loss + F.binary_cross_entropy_with_logits(la[:, i] - la[:, j], closer)
    return loss
