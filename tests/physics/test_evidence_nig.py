"""Evidential regression: NIG loss against the closed-form Student-t, its gradient, intervals."""

import numpy as np
import pytest
import torch
from scipy import stats

from moesuite.physics.evidence.nig import (
    NIG,
    evidential_loss,
    nig_from_raw,
    nig_nll,
    nig_regularizer,
    student_t_interval,
)


def random_nig(n, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(n, 2, 4, generator=g, dtype=dtype)
    return nig_from_raw(raw), torch.randn(n, 2, generator=g, dtype=dtype)


def test_nll_is_the_student_t_negative_log_density():
    nig, y = random_nig(50)
    df = 2 * nig.alpha
    scale = torch.sqrt(nig.beta * (1 + nig.nu) / (nig.nu * nig.alpha))
    ref = -stats.t.logpdf(y.numpy(), df.numpy(), nig.gamma.numpy(), scale.numpy())
    np.testing.assert_allclose(nig_nll(y, nig).numpy(), ref, rtol=1e-10, atol=1e-10)


def test_nll_integrates_to_one():
    nig = NIG(torch.tensor([0.3]), torch.tensor([1.5]), torch.tensor([2.5]), torch.tensor([0.7]))
    y = torch.linspace(-60, 60, 400001, dtype=torch.float64)
    dens = torch.exp(
        -nig_nll(y, NIG(*(v.double() for v in (nig.gamma, nig.nu, nig.alpha, nig.beta))))
    )
    assert float(torch.trapezoid(dens, y)) == pytest.approx(1.0, abs=1e-3)


def test_loss_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(1)
    raw = torch.randn(6, 2, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(6, 2, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda r: evidential_loss(y, nig_from_raw(r), coeff=0.1), (raw,)
    )


def test_gradient_pulls_gamma_towards_the_target():
    raw = torch.zeros(1, 1, 4, requires_grad=True)
    evidential_loss(torch.tensor([[2.0]]), nig_from_raw(raw)).backward()
    assert raw.grad[0, 0, 0] < 0


def test_regulariser_penalises_confident_errors():
    y = torch.tensor([1.0])
    small = NIG(torch.tensor([0.0]), torch.tensor([0.1]), torch.tensor([1.1]), torch.tensor([1.0]))
    big = NIG(torch.tensor([0.0]), torch.tensor([10.0]), torch.tensor([10.0]), torch.tensor([1.0]))
    assert nig_regularizer(y, big) > nig_regularizer(y, small)
    assert float(nig_regularizer(torch.tensor([0.0]), big)) == 0.0


def test_uncertainties_and_constraints():
    nig, _ = random_nig(20)
    assert (nig.nu > 0).all() and (nig.alpha > 1).all() and (nig.beta > 0).all()
    torch.testing.assert_close(nig.epistemic, nig.aleatoric / nig.nu)


def test_interval_covers_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    nig = NIG(
        torch.zeros(20000),
        torch.full((20000,), 2.0),
        torch.full((20000,), 3.0),
        torch.full((20000,), 0.5),
    )
    scale = np.sqrt(0.5 * 3 / (2 * 3))
    y = stats.t.rvs(6, 0, scale, size=20000, random_state=rng)
    lo, hi = student_t_interval(nig, 0.9)
    assert np.mean((lo <= y) & (y <= hi)) == pytest.approx(0.9, abs=0.01)
    with pytest.raises(ValueError, match="level"):
        student_t_interval(nig, 1.5)


def test_raw_shape_is_checked():
    with pytest.raises(ValueError, match="4 NIG channels"):
        nig_from_raw(torch.zeros(3, 2, 3))
