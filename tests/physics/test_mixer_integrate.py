"""The differentiable RK4 integrator: fourth-order convergence, per-trajectory steps, gradients."""

import math

import pytest
import torch

from moesuite.physics.mixer.integrate import rk4


def _linear_problem():
    # damped rotation: y' = A y with exact solution expm(A t) y0
    A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64)
    y0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    return A, y0


def test_rk4_converges_at_fourth_order_on_a_linear_ode():
    A, y0 = _linear_problem()
    exact = (torch.matrix_exp(A * 2.0) @ y0.T).T
    errors = []
    for substeps in (4, 8, 16, 32):
        y = rk4(lambda t, y: y @ A.T, y0, dt=1.0, n_times=3, substeps=substeps)
        errors.append(float((y[:, -1] - exact).abs().max()))
    orders = [math.log2(a / b) for a, b in zip(errors[:-1], errors[1:], strict=True)]
    assert all(3.8 < p < 4.3 for p in orders), orders
    assert errors[-1] < 1e-6


def test_rk4_returns_the_initial_state_and_all_times():
    A, y0 = _linear_problem()
    y = rk4(lambda t, y: y @ A.T, y0.expand(3, 2), dt=0.1, n_times=11, substeps=2)
    assert y.shape == (3, 11, 2)
    assert torch.equal(y[:, 0], y0.expand(3, 2))


def test_per_trajectory_steps_and_time_argument():
    # y' = t: y(t) = t^2 / 2, exact for RK4; each trajectory has its own dt
    dt = torch.tensor([0.1, 0.5], dtype=torch.float64)
    y = rk4(lambda t, y: t.expand_as(y), torch.zeros(2, 1, dtype=torch.float64), dt=dt, n_times=5)
    expected = (torch.arange(5, dtype=torch.float64)[None] * dt[:, None]) ** 2 / 2
    assert torch.allclose(y[..., 0], expected, atol=1e-12)


def test_gradients_flow_through_the_solver():
    a = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y0 = torch.tensor([[1.0]], dtype=torch.float64, requires_grad=True)
    y = rk4(lambda t, y: -a * y, y0, dt=0.05, n_times=21, substeps=2)
    y[0, -1, 0].backward()
    # y(1) = y0 exp(-a): dy/da = -exp(-a), dy/dy0 = exp(-a)
    assert abs(float(a.grad) + math.exp(-0.7)) < 1e-6
    assert abs(float(y0.grad) - math.exp(-0.7)) < 1e-6
    assert torch.autograd.gradcheck(
        lambda a_: rk4(lambda t, y: -a_ * y, y0.detach(), 0.1, 4),
        (a.detach().clone().requires_grad_(True),),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_times": 0}, "n_times must be a positive int"),
        ({"n_times": 3, "substeps": 0}, "substeps must be a positive int"),
        ({"n_times": 3, "dt": torch.ones(5)}, "does not broadcast"),
    ],
)
def test_bad_arguments(kwargs, message):
    kwargs.setdefault("dt", 0.1)
    with pytest.raises(ValueError, match=message):
        rk4(lambda t, y: y, torch.zeros(2, 1), **kwargs)
