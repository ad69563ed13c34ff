"""moesuite's Triton kernels one by one against torch, the `triton` backend against the fp64 oracle.

On this CPU-only CI they run in Triton's interpreter (the root conftest sets TRITON_INTERPRET=1
before anything imports triton): exact fp32 but slow, so every case is tiny. bf16 `tl.dot` is
wrong in the interpreter, so only fp32 is tested.
"""

import importlib.util
import os

import pytest
import torch

if importlib.util.find_spec("triton") is None:
    pytest.skip(
        "triton is not installed (pip install 'moesuite-core[triton]')", allow_module_level=True
    )
if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip(
        "these tests run the Triton kernels on CPU tensors, which needs TRITON_INTERPRET=1 before "
        "triton is imported (the root conftest sets it)",
        allow_module_level=True,
    )

from moesuite.core import backends  # noqa: E402
from moesuite.core.experts import GroupedExperts  # noqa: E402
from moesuite.core.kernels.triton import (  # noqa: E402
    combine_rows,
    combine_rows_backward,
    gather_rows,
    grouped_mm,
    grouped_weight_grad,
    slot_table,
    triton_expert_mlp,
)
from moesuite.core.kernels.triton._runtime import check_launchable  # noqa: E402
from moesuite.core.layer import MoELayer  # noqa: E402
from moesuite.core.routers import create as create_router  # noqa: E402
from moesuite.core.routing import RoutingPlan  # noqa: E402
from moesuite.core.testing import compare_with_reference, random_plan  # noqa: E402

pytestmark = pytest.mark.triton

TOL = 1e-4


def _offsets(counts):
    off = torch.zeros(len(counts) + 1, dtype=torch.long)
    off[1:] = torch.cumsum(torch.tensor(counts), 0)
    return off


def _loop_mm(x, w, off, bias=None):
    out = x.new_zeros(x.shape[0], w.shape[-1])
    for e in range(w.shape[0]):
        s, t = int(off[e]), int(off[e + 1])
        out[s:t] = x[s:t] @ w[e] + (0 if bias is None else bias[e])
    return out


def _variable_k_plan(T, E, seed):
    """A plan where tokens have 0..E experts (like expert choice): exercises the -1 slots."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(T, E, generator=g) < 0.45
    token_idx, expert_idx = mask.nonzero(as_tuple=True)
    weight = torch.rand(token_idx.numel(), generator=g) + 0.1
    return RoutingPlan.from_assignments(token_idx, expert_idx, weight, E, num_tokens=T)


# ----------------------------------------------------------------------------- scatter
@pytest.mark.parametrize("T,D,R", [(1, 100, 1), (5, 600, 11), (9, 61, 30)])
def test_gather_rows_matches_index_select(T, D, R):
    g = torch.Generator().manual_seed(T + D)
    src = torch.randn(T, D, generator=g)
    index = torch.randint(0, T, (R,), generator=g)
    assert torch.equal(gather_rows(src, index), src.index_select(0, index))
    strided = torch.randn(D, T, generator=g).t()  # non-contiguous source
    assert torch.equal(gather_rows(strided, index), strided.index_select(0, index))


# ----------------------------------------------------------------------------- grouped GEMM
# counts per expert: ragged tails, empty experts (first, middle, last), an expert spanning tiles
GEMM_CASES = [
    ((3,), 100, 61),
    ((0, 5, 0), 61, 100),
    ((7, 0, 40, 1, 0, 2, 9, 0), 100, 600),
    ((1, 2, 0, 3, 0, 0, 0, 4), 600, 61),
]


@pytest.mark.parametrize("counts,K,N", GEMM_CASES)
def test_grouped_mm_matches_loop(counts, K, N):
    g = torch.Generator().manual_seed(K + N)
    E, off = len(counts), _offsets(counts)
    x = torch.randn(int(off[-1]), K, generator=g)
    w = torch.randn(E, K, N, generator=g) / K**0.5
    b = torch.randn(E, N, generator=g)
    torch.testing.assert_close(grouped_mm(x, w, off), _loop_mm(x, w, off), atol=TOL, rtol=0)
    torch.testing.assert_close(grouped_mm(x, w, off, b), _loop_mm(x, w, off, b), atol=TOL, rtol=0)
    # transposed weights: the input-gradient GEMM, x[A, N] @ w[e]^T
    dy = torch.randn(int(off[-1]), N, generator=g)
    expected = _loop_mm(dy, w.transpose(1, 2), off)
    torch.testing.assert_close(grouped_mm(dy, w, off, transpose_w=True), expected, atol=TOL, rtol=0)


@pytest.mark.parametrize("counts,K,N", GEMM_CASES)
def test_grouped_weight_grad_matches_loop(counts, K, N):
    g = torch.Generator().manual_seed(K * N)
    E, off = len(counts), _offsets(counts)
    x = torch.randn(int(off[-1]), K, generator=g)
    dy = torch.randn(int(off[-1]), N, generator=g)
    dw, db = grouped_weight_grad(x, dy, off, E, with_bias=True)
    for e in range(E):
        s, t = int(off[e]), int(off[e + 1])
        torch.testing.assert_close(dw[e], x[s:t].t() @ dy[s:t], atol=TOL, rtol=0)
        torch.testing.assert_close(db[e], dy[s:t].sum(0), atol=TOL, rtol=0)
        if s == t:  # empty experts get exact zeros, not garbage
            assert torch.equal(dw[e], torch.zeros(K, N)) and torch.equal(db[e], torch.zeros(N))
    assert grouped_weight_grad(x, dy, off, E)[1] is None


def test_half_precision_kernels_keep_the_dtype_and_accumulate_in_fp32():
    # fp16 only: bf16 tl.dot multiplies bit patterns in the interpreter (triton #11584)
    g = torch.Generator().manual_seed(4)
    off = _offsets([5, 0, 35])
    x, w = torch.randn(40, 100, generator=g), torch.randn(3, 100, 61, generator=g) / 10
    dy = torch.randn(40, 61, generator=g)
    y = grouped_mm(x.half(), w.half(), off)
    assert y.dtype == torch.float16
    torch.testing.assert_close(y.float(), _loop_mm(x, w, off), atol=1e-2, rtol=1e-2)
    dw, db = grouped_weight_grad(x.half(), dy.half(), off, 3, with_bias=True)
    assert dw.dtype == db.dtype == torch.float16
    torch.testing.assert_close(dw[2].float(), x[5:].t() @ dy[5:], atol=5e-2, rtol=1e-2)
    plan = random_plan(20, 3, 2, seed=4)
    table = slot_table(plan)
    out = combine_rows(dy.half(), table, plan.weight)  # fp32 gates with fp16 rows
    assert out.dtype == torch.float16
    torch.testing.assert_close(
        out.float(), combine_rows(dy, table, plan.weight), atol=1e-2, rtol=1e-2
    )


def test_grouped_gemm_without_rows():
    off = torch.zeros(4, dtype=torch.long)
    x, w = torch.randn(0, 20), torch.randn(3, 20, 30)
    assert grouped_mm(x, w, off).shape == (0, 30)
    dw, db = grouped_weight_grad(x, torch.randn(0, 30), off, 3, with_bias=True)
    assert torch.equal(dw, torch.zeros(3, 20, 30)) and torch.equal(db, torch.zeros(3, 30))


# ----------------------------------------------------------------------------- combine
@pytest.mark.parametrize(
    "make_plan",
    [
        lambda: random_plan(1, 1, 1),
        lambda: random_plan(13, 8, 3, empty_experts=(0, 5), seed=2),
        lambda: _variable_k_plan(11, 5, seed=3),
    ],
)
@pytest.mark.parametrize("D", [100, 61])
def test_combine_and_its_backward_match_torch(make_plan, D):
    plan = make_plan()
    g = torch.Generator().manual_seed(D)
    A, T = plan.num_assignments, plan.num_tokens
    y = torch.randn(A, D, generator=g)
    table = slot_table(plan)

    expected = torch.zeros(T, D, dtype=torch.float64)
    plain = torch.zeros(T, D, dtype=torch.float64)
    for a in range(A):
        t = int(plan.token_idx[a])
        expected[t] += float(plan.weight[a]) * y[a].double()
        plain[t] += y[a].double()
    out = combine_rows(y, table, plan.weight)
    torch.testing.assert_close(out.double(), expected, atol=TOL, rtol=0)
    torch.testing.assert_close(combine_rows(y, table).double(), plain, atol=TOL, rtol=0)
    for _ in range(2):  # fixed slot order: bitwise reproducible
        assert torch.equal(combine_rows(y, table, plan.weight), out)

    grad_out = torch.randn(T, D, generator=g)
    y_t = y.clone().requires_grad_(True)
    gates_t = plan.weight.clone().requires_grad_(True)
    ref = torch.zeros(T, D).index_add(0, plan.token_idx, y_t * gates_t[:, None])
    ref_y, ref_gates = torch.autograd.grad(ref, (y_t, gates_t), grad_out)
    grad_y, grad_gates = combine_rows_backward(grad_out, plan.token_idx, y, plan.weight)
    torch.testing.assert_close(grad_y, ref_y, atol=TOL, rtol=0)
    torch.testing.assert_close(grad_gates, ref_gates, atol=TOL, rtol=0)


def test_slot_table_addresses_every_assignment_once():
    plan = _variable_k_plan(9, 4, seed=5)
    table = slot_table(plan)
    used = table[table >= 0]
    assert torch.equal(used.sort().values, torch.arange(plan.num_assignments))
    for t in range(plan.num_tokens):
        rows = [int(r) for r in table[t] if r >= 0]
        assert all(int(plan.token_idx[r]) == t for r in rows)
        assert [int(plan.expert_idx[r]) for r in rows] == sorted(
            int(plan.expert_idx[r]) for r in rows
        )
        assert all(r < 0 for r in table[t, len(rows) :])  # used slots first


# ----------------------------------------------------------------------------- launcher checks
def test_launchers_reject_bad_input_with_clear_errors():
    off = _offsets([2, 1])
    x, w = torch.randn(3, 16), torch.randn(2, 16, 32)
    with pytest.raises(TypeError, match="float64"):
        grouped_mm(x.double(), w.double(), off)
    with pytest.raises(TypeError, match="w has dtype torch.float16"):
        grouped_mm(x, w.half(), off)
    with pytest.raises(ValueError, match=r"x must have shape \[A, 16\]"):
        grouped_mm(torch.randn(3, 15), w, off)
    with pytest.raises(ValueError, match="E \\+ 1 = 3 entries"):
        grouped_mm(x, w, _offsets([3]))
    with pytest.raises(ValueError, match=r"bias must have shape \[E, N\] = \[2, 32\]"):
        grouped_mm(x, w, off, torch.randn(2, 16))
    with pytest.raises(TypeError, match="expert_offsets must be an integer tensor"):
        grouped_mm(x, w, off.float())
    with pytest.raises(ValueError, match=r"gates must have shape \[A\] = \[3\]"):
        combine_rows(x, torch.tensor([[0, 1], [2, -1]]), torch.ones(2))
    with pytest.raises(ValueError, match="index must be a 1-D integer tensor"):
        gather_rows(x, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(RuntimeError, match="compiled for a GPU"):
        check_launchable(object(), "x", torch.zeros(1))
    weights = GroupedExperts(2, 16, 8, glu=True).weights()
    plan = random_plan(3, 2, 1)
    with pytest.raises(ValueError, match="plan routes 3 tokens but x has 4 rows"):
        triton_expert_mlp(torch.randn(4, 16), plan, weights)


def test_custom_ops_have_consistent_fake_kernels():
    off = _offsets([2, 0, 3])
    x, w, b = torch.randn(5, 16), torch.randn(3, 16, 20), torch.randn(3, 20)
    table = torch.tensor([[0, 3], [1, -1], [2, 4]])
    gates = torch.rand(5)
    utils = ("test_schema", "test_faketensor")
    torch.library.opcheck(
        torch.ops.moesuite.triton_gather_rows, (x, torch.tensor([1, 0, 4])), test_utils=utils
    )
    torch.library.opcheck(
        torch.ops.moesuite.triton_grouped_mm, (x, w, off, b, False), test_utils=utils
    )
    torch.library.opcheck(
        torch.ops.moesuite.triton_grouped_mm,
        (torch.randn(5, 20), w, off, None, True),
        test_utils=utils,
    )
    torch.library.opcheck(
        torch.ops.moesuite.triton_grouped_weight_grad,
        (x, torch.randn(5, 20), off, 3, True),
        test_utils=utils,
    )
    torch.library.opcheck(torch.ops.moesuite.triton_combine, (x, table, gates), test_utils=utils)
    torch.library.opcheck(
        torch.ops.moesuite.triton_combine_backward,
        (torch.randn(3, 16), torch.tensor([0, 1, 2, 0, 2]), x, gates),
        test_utils=utils,
    )


# ----------------------------------------------------------------------------- full expert MLP
# (T, d, h, E, k, empty experts, glu, bias)
MLP_CASES = [
    (1, 100, 20, 1, 1, (), False, False),
    (1, 600, 16, 8, 4, (), True, True),
    (7, 100, 61, 3, 2, (), True, False),
    (13, 100, 33, 8, 3, (0, 5), False, True),
    (6, 600, 24, 8, 4, (1, 2, 3), True, True),
    (9, 100, 20, 3, 1, (1,), False, False),
    (32, 61, 16, 3, 2, (), False, True),  # more rows than one tile per expert
]


@pytest.mark.parametrize("T,d,h,E,k,empty,glu,bias", MLP_CASES)
def test_triton_backend_matches_fp64_reference(T, d, h, E, k, empty, glu, bias):
    torch.manual_seed(T * 31 + d + E)
    experts = GroupedExperts(
        E, d, h, activation="silu" if glu else "gelu", glu=glu, bias=bias, backend="triton"
    )
    if bias:  # non-zero biases so their effect and gradients are checked
        with torch.no_grad():
            experts.b_in.normal_()
            experts.b_out.normal_()
    x = torch.randn(T, d)
    plan = random_plan(T, E, k, empty_experts=empty, seed=T + E)
    errs = compare_with_reference(experts, x, plan)
    assert set(errs) >= {"y", "x", "gates", "w_in", "w_out"}
    assert max(errs.values()) < TOL, errs


def test_variable_k_plan_matches_reference():
    torch.manual_seed(0)
    experts = GroupedExperts(5, 61, 24, activation="tanh", bias=True, backend="triton")
    plan = _variable_k_plan(10, 5, seed=7)
    assert int(plan.experts_per_token().min()) == 0 and plan.token_major_rows is None
    errs = compare_with_reference(experts, torch.randn(10, 61), plan)
    assert max(errs.values()) < TOL, errs


def test_no_assignments_gives_zeros_and_zero_gradients():
    experts = GroupedExperts(3, 16, 16, backend="triton")
    x = torch.randn(4, 16, requires_grad=True)
    plan = random_plan(4, 3, 1).select(torch.zeros(4, dtype=torch.bool))
    y = experts(x, plan)
    assert torch.equal(y, torch.zeros(4, 16))
    y.sum().backward()
    assert torch.equal(x.grad, torch.zeros(4, 16))
    assert torch.equal(experts.w_in.grad, torch.zeros_like(experts.w_in))


def test_unused_expert_gets_exact_zero_gradient_and_runs_are_bitwise_equal():
    experts = GroupedExperts(4, 32, 16, backend="triton")
    plan = random_plan(12, 4, 2, empty_experts=(2,), seed=1)
    x = torch.randn(12, 32, requires_grad=True)
    grads = []
    for _ in range(2):
        experts.zero_grad(set_to_none=True)
        x.grad = None
        y = experts(x, plan)
        y.square().sum().backward()
        grads.append((y.detach(), x.grad.clone(), experts.w_in.grad.clone()))
    assert torch.equal(experts.w_in.grad[2], torch.zeros(32, 16))
    assert experts.w_in.grad[0].abs().max() > 0
    for a, b in zip(grads[0], grads[1], strict=True):
        assert torch.equal(a, b)


def test_backend_registry_reports_triton_under_the_interpreter():
    status = {s.name: s for s in backends.available("cpu", torch.float32)}
    assert status["triton"].available, status["triton"].reason
    assert backends.resolve("triton", "cpu", torch.float32).name == "triton"
    assert (
        backends.resolve("auto", "cpu", torch.float32).name != "triton"
    )  # never chosen automatically
    bf16 = {s.name: s for s in backends.available("cpu", torch.bfloat16)}["triton"]
    assert not bf16.available and "float32" in bf16.reason


def test_moe_layer_with_triton_backend_trains_end_to_end():
    torch.manual_seed(0)
    d, E = 32, 4
    router = create_router("topk", d_model=d, num_experts=E, k=2)
    ref_layer = MoELayer(
        router,
        GroupedExperts(E, d, 16, activation="silu", glu=True, bias=True, backend="segment_mm"),
    )
    x = torch.randn(2, 5, d)

    grads = {}
    for backend in ("segment_mm", "triton"):
        ref_layer.zero_grad(set_to_none=True)
        ref_layer.experts.backend = backend
        y, routing = ref_layer(x)
        assert y.shape == x.shape
        (y.square().mean() + routing.aux_loss).backward()
        grads[backend] = (y.detach(), {n: p.grad.clone() for n, p in ref_layer.named_parameters()})
    y_ref, g_ref = grads["segment_mm"]
    y_tri, g_tri = grads["triton"]
    torch.testing.assert_close(y_tri, y_ref, atol=TOL, rtol=0)
    assert set(g_tri) == set(g_ref) and any("router" in n for n in g_tri)
    for name in g_ref:  # router weights included: gradients flow through the gates
        torch.testing.assert_close(g_tri[name], g_ref[name], atol=TOL, rtol=0, msg=name)
