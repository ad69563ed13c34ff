"""Every CPU backend against the fp64 per-token reference: outputs and all gradients."""

import pytest
import torch

from moesuite.core import backends
from moesuite.core.experts import GroupedExperts
from moesuite.core.testing import compare_with_reference, random_plan

TOL = 1e-4

# (T, d, h, E, k, empty experts)
SHAPES = [
    (1, 100, 60, 1, 1, ()),
    (1, 600, 37, 8, 4, ()),
    (7, 100, 61, 3, 2, ()),
    (13, 100, 33, 8, 3, (0, 5)),
    (16, 600, 40, 8, 4, (1, 2, 3)),
    (9, 100, 20, 3, 1, (1,)),
]
CPU_BACKENDS = ["loop", "grouped_mm", "segment_mm"]


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("T,d,h,E,k,empty", SHAPES)
@pytest.mark.parametrize("glu,bias", [(False, False), (True, True)])
def test_backend_matches_fp64_reference(backend, T, d, h, E, k, empty, glu, bias):
    torch.manual_seed(T * 31 + d + E)
    experts = GroupedExperts(
        E, d, h, activation="silu" if glu else "gelu", glu=glu, bias=bias, backend=backend
    )
    if bias:  # non-zero biases so their gradients and effects are checked
        with torch.no_grad():
            experts.b_in.normal_()
            experts.b_out.normal_()
    x = torch.randn(T, d)
    plan = random_plan(T, E, k, empty_experts=empty, seed=T + E)
    errs = compare_with_reference(experts, x, plan)
    assert max(errs.values()) < TOL, errs


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_unused_expert_gets_zero_gradient(backend):
    experts = GroupedExperts(4, 8, 12, backend=backend)
    plan = random_plan(6, 4, 2, empty_experts=(2,), seed=1)
    experts(torch.randn(6, 8), plan).sum().backward()
    assert experts.w_in.grad[2].abs().max() == 0
    assert experts.w_in.grad[0].abs().max() > 0


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_no_assignments(backend):
    experts = GroupedExperts(3, 8, 12, backend=backend)
    x = torch.randn(4, 8, requires_grad=True)
    plan = random_plan(4, 3, 1).select(torch.zeros(4, dtype=torch.bool))
    y = experts(x, plan)
    assert torch.equal(y, torch.zeros(4, 8))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(4, 8))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_combine_is_bitwise_deterministic(backend):
    experts = GroupedExperts(8, 32, 16, backend=backend)
    plan = random_plan(64, 8, 4, seed=3)
    x = torch.randn(64, 32)
    first = experts(x, plan)
    for _ in range(3):
        assert torch.equal(experts(x, plan), first)


def test_backends_agree_with_each_other_in_bf16():
    torch.manual_seed(0)
    experts = GroupedExperts(4, 64, 32)
    plan = random_plan(32, 4, 2, dtype=torch.bfloat16)
    x = torch.randn(32, 64)
    ref = experts(x, plan.with_weight(plan.weight.float()))
    low = experts.to(torch.bfloat16)
    for name in CPU_BACKENDS:
        low.backend = name
        y = low(x.bfloat16(), plan)
        assert y.dtype == torch.bfloat16
        assert (y.float() - ref).abs().max() < 5e-2


def test_float64_runs_on_auto_and_is_refused_by_grouped_mm():
    """torch's grouped GEMM has no float64; auto picks a backend that has."""
    experts = GroupedExperts(3, 8, 8).double()
    plan = random_plan(5, 3, 2, dtype=torch.float64)
    assert experts(torch.randn(5, 8, dtype=torch.float64), plan).dtype == torch.float64
    experts.backend = "grouped_mm"
    with pytest.raises(RuntimeError, match="grouped_mm.*float64"):
        experts(torch.randn(5, 8, dtype=torch.float64), plan)


def test_available_reports_reasons():
    status = {s.name: s for s in backends.available("cpu", torch.float32)}
    assert status["loop"].available and status["grouped_mm"].available
    f64 = {s.name: s for s in backends.available("cpu", torch.float64)}
    assert not f64["grouped_mm"].available and "float64" in f64["grouped_mm"].reason
    assert backends.resolve("auto", "cpu", torch.float32).name == "segment_mm"
    assert backends.resolve("auto", "cpu", torch.float64).name == "segment_mm"


def test_bad_inputs_raise_clear_errors():
    experts = GroupedExperts(3, 8, 8)
    plan = random_plan(5, 3, 2)
    with pytest.raises(ValueError, match=r"x must have shape \[T, d_model=8\]"):
        experts(torch.randn(5, 7), plan)
    with pytest.raises(ValueError, match="plan routes 5 tokens but x has 4 rows"):
        experts(torch.randn(4, 8), plan)
    with pytest.raises(TypeError, match="dtype"):
        experts(torch.randn(5, 8, dtype=torch.float64), plan)
    with pytest.raises(ValueError, match="unknown backend 'cuda_magic'"):
        GroupedExperts(3, 8, 8, backend="cuda_magic")
    with pytest.raises(ValueError, match="unknown activation"):
        GroupedExperts(3, 8, 8, activation="swish2")
    with pytest.raises(ValueError, match="num_experts=4, these experts number 3"):
        experts(torch.randn(5, 8), random_plan(5, 4, 2))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("activation", ["gelu", "gelu_tanh", "relu", "silu", "tanh", "identity"])
@pytest.mark.parametrize("glu", [False, True])
def test_every_activation_matches_reference(backend, activation, glu):
    torch.manual_seed(0)
    experts = GroupedExperts(3, 20, 16, activation=activation, glu=glu, backend=backend)
    errs = compare_with_reference(experts, torch.randn(9, 20), random_plan(9, 3, 2, seed=4))
    assert max(errs.values()) < TOL, errs
