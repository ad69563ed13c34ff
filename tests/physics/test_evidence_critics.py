"""Dirichlet critics: reliability is a distribution, the loss has the right optimum, it learns."""

import pytest
import torch

from moesuite.physics.evidence.critics import (
    CriticOutput,
    DirichletCritic,
    critic_loss,
    dirichlet_kl_uniform,
    dirichlet_risk,
)


def test_risk_closed_form_and_minimum():
    t = torch.tensor([[0.0, 1.0, 0.0]])
    a = torch.tensor([[2.0, 5.0, 1.0]])
    S, p = 8.0, torch.tensor([2.0, 5.0, 1.0]) / 8
    ref = ((t[0] - p) ** 2 + p * (1 - p) / (S + 1)).sum()
    assert float(dirichlet_risk(t, a)) == pytest.approx(float(ref))
    # more evidence on the right expert lowers the risk
    assert dirichlet_risk(t, torch.tensor([[1.0, 50.0, 1.0]])) < dirichlet_risk(t, a)


def test_kl_to_uniform_is_zero_at_uniform_and_positive_elsewhere():
    assert float(dirichlet_kl_uniform(torch.ones(1, 3))) == pytest.approx(0.0, abs=1e-6)
    assert float(dirichlet_kl_uniform(torch.tensor([[4.0, 1.0, 1.0]]))) > 0


def test_reliability_sums_to_one_and_strength_counts_evidence():
    critic = DirichletCritic(d_opinion=4, num_experts=3)
    out = critic(torch.randn(7, 3, 4))
    torch.testing.assert_close(out.reliability.sum(1), torch.ones(7, 2))
    torch.testing.assert_close(out.strength, out.evidence.sum(1) + 3)
    assert (out.evidence >= 0).all()


def test_critic_learns_which_expert_is_reliable_and_corrects_bias():
    # expert 0 is accurate when the context feature is > 0, expert 2 otherwise; expert 1 is biased
    torch.manual_seed(0)
    n = 512
    y = torch.randn(n, 2)
    ctx = torch.randn(n, 1, 1).expand(n, 3, 1)
    good0 = (ctx[:, 0, 0] > 0)[:, None]
    noise = 0.05 * torch.randn(n, 3, 2)
    pred = y[:, None, :] + noise
    pred[:, 0] += torch.where(good0, 0.0, 1.0)
    pred[:, 2] += torch.where(good0, 1.0, 0.0)
    pred[:, 1] += 0.5
    opinions = torch.cat([pred, ctx], -1)
    critic = DirichletCritic(d_opinion=3, num_experts=3, d_hidden=32)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        loss = critic_loss(critic(opinions), pred, y)
        loss.backward()
        opt.step()
    out = critic(opinions)
    best = out.reliability.argmax(1)[:, 0]
    expected = torch.where(good0[:, 0], 0, 2)
    assert (best == expected).float().mean() > 0.9
    # the residual removes expert 1's constant bias
    corrected = pred[:, 1] + out.residual[:, 1]
    assert (corrected - y).abs().mean() < 0.15 < (pred[:, 1] - y).abs().mean()


def test_loss_is_finite_for_any_output():
    out = CriticOutput(
        torch.rand(4, 3, 2),
        torch.full((4, 3, 2), 1 / 3),
        torch.full((4, 2), 3.0),
        torch.zeros(4, 3, 2),
    )
    assert torch.isfinite(critic_loss(out, torch.randn(4, 3, 2), torch.randn(4, 2)))


def test_ranking_scores_separate_within_signal_ranking_from_pooled_correlation():
    import numpy as np

    from moesuite.physics.evidence.metrics import ranking_scores, within_spearman

    rng = np.random.default_rng(0)
    scale = rng.lognormal(0.0, 2.0, size=(500, 1))  # signal-to-signal error scale dominates
    err = scale * rng.uniform(0.5, 1.5, size=(500, 3))
    perfect = np.exp(-err / err.sum(1, keepdims=True) * 10)
    perfect /= perfect.sum(1, keepdims=True)  # ranks the experts right in every signal
    r = ranking_scores(perfect, err)
    assert r["within"] == 1.0 and r["top1"] == 1.0 and r["relative"] > 0.95
    assert abs(r["pooled"]) < 0.3  # the pooled figure hides it
    uniform_noise = rng.dirichlet(np.ones(3), size=500)
    r0 = ranking_scores(uniform_noise, err)
    assert abs(r0["within"]) < 0.15 and abs(r0["top1"] - 1 / 3) < 0.07
    assert within_spearman(-err, err) == -1.0
    assert np.isnan(within_spearman(np.ones((4, 3)), err[:4]))


def test_softmin_critic_target_rewards_ranking_every_expert():
    import torch

    from moesuite.physics.evidence.critics import CriticOutput, critic_loss

    y = torch.zeros(1, 1)
    pred = torch.tensor([[[0.1], [0.2], [0.4]]])  # errors 0.1 < 0.2 < 0.4

    def out(evidence):
        e = torch.tensor(evidence).reshape(1, 3, 1)
        a = e + 1
        return CriticOutput(e, a / a.sum(1, keepdim=True), a.sum(1), torch.zeros(1, 3, 1))

    ranked, swapped = out([6.0, 3.0, 0.5]), out([6.0, 0.5, 3.0])  # same top expert, 2nd/3rd swapped
    # the one-hot target only sees the closest expert: both orders cost the same ...
    assert float(critic_loss(ranked, pred, y, kl_weight=0.0)) == pytest.approx(
        float(critic_loss(swapped, pred, y, kl_weight=0.0))
    )
    # ... the graded target prefers the full ranking
    soft = lambda o: critic_loss(o, pred, y, kl_weight=0.0, target="softmin")  # noqa: E731
    assert soft(ranked) < soft(swapped)
    with pytest.raises(ValueError, match="target must be one of"):
        critic_loss(ranked, pred, y, target="argmax")


@pytest.mark.parametrize("target", ["softmin", "argmin"])
def test_critics_reading_the_signal_rank_the_right_expert_first_on_its_half(target):
    # the signal x says which half an input is in; expert 1 is right on the half x > 0 and
    # wrong elsewhere, experts 0 and 2 are mediocre everywhere (opinions alone do not tell)
    g = torch.Generator().manual_seed(0)
    n = 600
    x = torch.randn(n, 4, generator=g)
    half = x[:, 0] > 0
    y = torch.randn(n, 1, generator=g)
    err_scale = torch.full((n, 3), 0.3)
    err_scale[:, 1] = torch.where(half, 0.02, 0.6)
    pred = y[:, None, :] + err_scale[..., None] * torch.randn(n, 3, 1, generator=g).sign()
    opinions = torch.cat([pred, torch.zeros(n, 3, 1)], -1)  # no hint in the opinions
    torch.manual_seed(0)
    critic = DirichletCritic(d_opinion=2, num_experts=3, n_targets=1, d_hidden=32, d_context=4)
    opt = torch.optim.Adam(critic.parameters(), lr=1e-2)
    for _ in range(250):
        opt.zero_grad()
        critic_loss(critic(opinions, x), pred, y, target=target).backward()
        opt.step()
    with torch.no_grad():
        fresh = torch.randn(400, 4, generator=g)
        rel = critic(torch.zeros(400, 3, 2), fresh).reliability[:, :, 0]
    on_half = fresh[:, 0] > 0
    assert (rel[on_half].argmax(1) == 1).float().mean() >= 0.9
    assert (rel[~on_half].argmax(1) != 1).float().mean() >= 0.9
    with pytest.raises(ValueError, match="needs a context"):
        critic(opinions)
