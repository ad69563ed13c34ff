"""The differentiable torch port agrees with numpy and its gradients match finite differences."""

import numpy as np
import pytest
import torch

from moesuite.physics.data.flidar import (
    PARAM_NAMES,
    SimulationConfig,
    expected_counts,
    expected_counts_torch,
    expected_shape,
    expected_shape_torch,
    sample_params,
)

SMALL = SimulationConfig(
    n_bins=24, bin_width_ns=0.2, oversample=2, t_offset_ns=0.4, ranges={"depth_mm": (2.0, 6.0)}
)


def test_matches_numpy_reference():
    p = sample_params(16, seed=0)
    np.testing.assert_allclose(
        expected_shape_torch(torch.tensor(p)).numpy(), expected_shape(p), atol=1e-10
    )
    np.testing.assert_allclose(
        expected_counts_torch(torch.tensor(p)).numpy(), expected_counts(p), rtol=1e-8, atol=1e-8
    )


def test_float32_is_close():
    p = sample_params(8, seed=1)
    s32 = expected_shape_torch(torch.tensor(p, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose(s32, expected_shape(p), atol=2e-5)


@pytest.mark.parametrize(
    "names", [("depth_mm", "tau_ns"), ("mua_ex", "musp_ex", "irf_fwhm_ns", "n")]
)
def test_gradcheck(names):
    base = torch.tensor(sample_params(2, SMALL, seed=3))
    cols = [PARAM_NAMES.index(n) for n in names]

    def f(sub):
        p = base.clone()
        p[:, cols] = sub
        return expected_shape_torch(p, SMALL)

    sub = base[:, cols].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(f, (sub,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradient_points_towards_the_true_depth():
    p = torch.tensor(sample_params(1, seed=4))
    target = expected_shape_torch(p)
    guess = p.clone()
    guess[0, 0] = p[0, 0] + 2.0
    guess.requires_grad_(True)
    loss = ((expected_shape_torch(guess) - target) ** 2).sum()
    loss.backward()
    assert guess.grad[0, 0] > 0  # decreasing the over-estimated depth lowers the mismatch


def test_bad_shape():
    with pytest.raises(ValueError, match=r"expected shape \[N, 10\]"):
        expected_shape_torch(torch.zeros(3, 4))
