"""Throughput measurement of the MoE layer against its physical limit and the eager loop.

Shared by ``moesuite bench`` (a quick run) and ``benchmarks/core/bench_moe_layer.py`` (the
full grid). Every figure is measured in the same process, one after another, so ratios are
fair on a noisy machine: warm-up, then the median of ``repeats`` timed runs.

Rows (JSON-ready dicts) have the keys ``kind`` (``experts``: expert compute on a fixed
routing; ``layer``: router + experts; ``dense``: the dense chain with the same active FLOPs;
``hf_loop``: the Hugging-Face-style eager per-expert loop), ``backend``, ``router``, ``skew``,
``T, d, h, E, k``, ``dtype``, ``fwd_ms``, ``fwdbwd_ms``, ``tflops`` (fwd+bwd) and
``threads``; ratios are computed by the caller.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from moesuite.core import backends, routers
from moesuite.core.experts import GroupedExperts
from moesuite.core.layer import MoELayer
from moesuite.core.routing import RoutingPlan

__all__ = ["BenchCase", "forced_plan", "time_it", "bench_experts", "bench_layer", "bench_dense", "bench_hf_loop"]


@dataclass(frozen=True)
class BenchCase:
    """One benchmark configuration.

    Attributes:
        T: tokens. d: model width. h: expert hidden width. E: experts. k: experts per token.
        skew: ``"uniform"`` (round-robin, every expert gets ``T*k/E``), ``"zipf<s>"`` (expert
            popularity ~ rank^-s, e.g. ``zipf1.0``) or ``"hot"`` (half the assignments on one
            expert).
        dtype: ``"float32"`` or ``"bfloat16"``.
    """

    T: int = 4096
    d: int = 512
    h: int = 1024
    E: int = 8
    k: int = 2
    skew: str = "uniform"
    dtype: str = "float32"

    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    def active_flops_fwd(self) -> float:
        """``2 * T * k * d * h * 2`` (two projections of an MLP expert)."""
        return 2.0 * self.T * self.k * self.d * self.h * 2


def forced_plan(case: BenchCase, seed: int = 0) -> RoutingPlan:
    """A routing with a controlled load distribution (no router), each token on k distinct experts."""
    g = torch.Generator().manual_seed(seed)
    T, E, k = case.T, case.E, case.k
    if case.skew == "uniform":
        # round-robin: token t takes experts t*k, t*k+1, ... (mod E): exactly T*k/E each
        idx = (torch.arange(T).view(T, 1) * k + torch.arange(k).view(1, k)) % E
    else:
        if case.skew.startswith("zipf"):
            s = float(case.skew[4:] or 1.0)
            p = 1.0 / torch.arange(1, E + 1, dtype=torch.float64) ** s
        elif case.skew == "hot":
            p = torch.full((E,), 1.0 / (2 * (E - 1)), dtype=torch.float64)
            p[0] = 0.5
        else:
            raise ValueError(f"skew must be 'uniform', 'zipf<s>' or 'hot', got {case.skew!r}.")
        idx = torch.multinomial(p.expand(T, E), k, replacement=False, generator=g)
    w = torch.rand(T, k, generator=g)
    w = (w / w.sum(-1, keepdim=True)).to(case.torch_dtype)
    return RoutingPlan.from_topk(idx, w, E)


def time_it(fn: Callable[[], object], warmup: int = 2, repeats: int = 5) -> float:
    """Median wall time of ``fn()`` in milliseconds after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def _row(kind: str, case: BenchCase, fwd_ms: float, fwdbwd_ms: float, **extra: object) -> dict:
    flops = 3 * case.active_flops_fwd()
    return {
        "kind": kind, **asdict(case), "fwd_ms": round(fwd_ms, 3), "fwdbwd_ms": round(fwdbwd_ms, 3),
        "tflops": round(flops / (fwdbwd_ms * 1e-3) / 1e12, 4), "threads": torch.get_num_threads(),
        "device": "cpu", "cpu_capability": torch.backends.cpu.get_cpu_capability(), **extra,
    }


def _fwd_bwd(forward: Callable[[], torch.Tensor], params: list[torch.Tensor], grad_out: torch.Tensor) -> Callable[[], None]:
    def run() -> None:
        for p in params:
            p.grad = None
        forward().backward(grad_out)

    return run


def bench_experts(case: BenchCase, backend: str, warmup: int = 2, repeats: int = 5, seed: int = 0) -> dict:
    """Expert compute only (a fixed :func:`forced_plan`) with one backend."""
    torch.manual_seed(seed)
    experts = GroupedExperts(case.E, case.d, case.h, backend=backend).to(case.torch_dtype)
    plan = forced_plan(case, seed)
    x = torch.randn(case.T, case.d, dtype=case.torch_dtype, requires_grad=True)
    grad = torch.randn(case.T, case.d, dtype=case.torch_dtype)
    with torch.no_grad():
        fwd = time_it(lambda: experts(x, plan), warmup, repeats)
    fb = time_it(_fwd_bwd(lambda: experts(x, plan), [x, *experts.parameters()], grad), warmup, repeats)
    resolved = backends.resolve(backend, "cpu", case.torch_dtype).name
    return _row("experts", case, fwd, fb, backend=backend, resolved=resolved, router="forced")


def bench_layer(case: BenchCase, router: str, backend: str = "auto", warmup: int = 2, repeats: int = 5, seed: int = 0) -> dict:
    """The whole :class:`MoELayer` (router + experts) with a freshly initialised router."""
    torch.manual_seed(seed)
    # settings that give every router about k experts per token
    kw: dict[str, object] = {"k": case.k}
    if router == "expert_choice":
        kw = {"capacity_factor": float(case.k)}
    elif router == "topp":
        kw = {"max_k": case.k, "p": 0.6}
    r = routers.create(router, d_model=case.d, num_experts=case.E, **kw)
    layer = MoELayer(r, GroupedExperts(case.E, case.d, case.h, backend=backend)).to(case.torch_dtype)
    layer.router.float()  # routers run in fp32 whatever the experts' dtype
    x = torch.randn(case.T, case.d, dtype=case.torch_dtype, requires_grad=True)
    grad = torch.randn(case.T, case.d, dtype=case.torch_dtype)
    with torch.no_grad():
        fwd = time_it(lambda: layer(x)[0], warmup, repeats)
    fb = time_it(_fwd_bwd(lambda: layer(x)[0], [x, *layer.parameters()], grad), warmup, repeats)
    with torch.no_grad():
        plan = layer(x)[1].plan
    return _row("layer", case, fwd, fb, backend=backend, router=router,
                assignments_per_token=round(plan.num_assignments / case.T, 3))


def bench_dense(case: BenchCase, warmup: int = 2, repeats: int = 5, seed: int = 0) -> dict:
    """The physical limit: ``T * k`` rows through one expert's two GEMMs (same active FLOPs)."""
    torch.manual_seed(seed)
    dt = case.torch_dtype
    w1 = (torch.randn(case.d, case.h, dtype=dt) * case.d**-0.5).requires_grad_()
    w2 = (torch.randn(case.h, case.d, dtype=dt) * case.h**-0.5).requires_grad_()
    x = torch.randn(case.T * case.k, case.d, dtype=dt, requires_grad=True)
    grad = torch.randn(case.T * case.k, case.d, dtype=dt)
    fwd_fn = lambda: F.gelu(x @ w1) @ w2  # noqa: E731
    with torch.no_grad():
        fwd = time_it(fwd_fn, warmup, repeats)
    fb = time_it(_fwd_bwd(fwd_fn, [x, w1, w2], grad), warmup, repeats)
    return _row("dense", case, fwd, fb, backend="dense", router="none")


def bench_hf_loop(case: BenchCase, warmup: int = 1, repeats: int = 3, seed: int = 0) -> dict:
    """Hugging Face's eager Mixtral-style loop: ``one_hot`` mask, ``where`` per expert, ``index_add_``."""
    torch.manual_seed(seed)
    dt = case.torch_dtype
    experts = GroupedExperts(case.E, case.d, case.h).to(dt)
    plan = forced_plan(case, seed)
    selected = plan.expert_idx[torch.sort(plan.token_idx, stable=True).indices].view(case.T, case.k)
    gates = plan.to_dense().gather(1, selected)
    x = torch.randn(case.T, case.d, dtype=dt, requires_grad=True)
    grad = torch.randn(case.T, case.d, dtype=dt)

    def forward() -> torch.Tensor:
        out = torch.zeros_like(x)
        mask = F.one_hot(selected, case.E).permute(2, 1, 0)  # [E, k, T]
        for e in range(case.E):
            slot, tok = torch.where(mask[e])
            if tok.numel() == 0:
                continue
            h = F.gelu(x[tok] @ experts.w_in[e]) @ experts.w_out[e]
            out = out.index_add(0, tok, h * gates[tok, slot, None])
        return out

    with torch.no_grad():
        fwd = time_it(forward, warmup, repeats)
    fb = time_it(_fwd_bwd(forward, [x, *experts.parameters()], grad), warmup, repeats)
    return _row("hf_loop", case, fwd, fb, backend="hf_loop", router="forced")
