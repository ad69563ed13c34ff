"""Throughput measurement of the MoE layer against its physical limit and the eager loop.

Shared by ``moesuite bench`` (a quick run) and ``benchmarks/core/bench_moe_layer.py`` (the
full grid). Every candidate of one configuration (the dense limit, each backend, the eager
loop, each router's layer) is built first and then timed *interleaved*: each round runs every
candidate once, in turn, so a burst of load from elsewhere on the machine hits all of them
alike and the ratios stay fair. After ``warmup`` rounds, ``repeats`` timed rounds; a row
reports the minimum (the cost of the code itself, as ``timeit`` recommends; noise only adds
time) and the median.

Rows (JSON-ready dicts) have the keys ``kind`` (``experts``: expert compute on a fixed
routing; ``layer``: router + experts; ``dense``: the dense chain with the same active FLOPs;
``hf_loop``: the Hugging-Face-style eager per-expert loop), ``backend``, ``router``, ``skew``,
``T, d, h, E, k``, ``dtype``, ``fwd_ms``, ``fwdbwd_ms`` (minimum over the timed rounds),
``fwd_ms_median``, ``fwdbwd_ms_median``, ``tflops`` (fwd+bwd, from the minimum) and ``threads``;
ratios are computed by the caller.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from moesuite.core import backends, routers
from moesuite.core.experts import GroupedExperts
from moesuite.core.layer import MoELayer
from moesuite.core.routing import RoutingPlan

__all__ = [
    "BenchCase",
    "Candidate",
    "forced_plan",
    "measure",
    "dense_candidate",
    "experts_candidate",
    "layer_candidate",
    "hf_loop_candidate",
]


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
    """A routing with a controlled load (no router), each token on k distinct experts."""
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


@dataclass
class Candidate:
    """One thing to time: a no-grad forward and a forward+backward closure, plus row fields."""

    kind: str
    case: BenchCase
    fwd: Callable[[], object]
    fwdbwd: Callable[[], object]
    extra: dict = field(default_factory=dict)


def measure(candidates: Sequence[Candidate], warmup: int = 2, repeats: int = 5) -> list[dict]:
    """Time ``candidates`` interleaved (round-robin) and return one row each.

    Examples:
        >>> case = BenchCase(T=64, d=16, h=32, E=4, k=2)
        >>> rows = measure(
        ...     [dense_candidate(case), experts_candidate(case, "loop")], warmup=1, repeats=2
        ... )
        >>> [(r["kind"], r["backend"]) for r in rows]
        [('dense', 'dense'), ('experts', 'loop')]
        >>> all(r["fwdbwd_ms"] <= r["fwdbwd_ms_median"] for r in rows)
        True
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(
            f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}."
        )
    times: dict[tuple[int, str], list[float]] = {}
    for rnd in range(warmup + repeats):
        for i, c in enumerate(candidates):
            for mode in ("fwd", "fwdbwd"):
                fn = c.fwd if mode == "fwd" else c.fwdbwd
                start = time.perf_counter()
                if mode == "fwd":
                    with torch.no_grad():
                        fn()
                else:
                    fn()
                if rnd >= warmup:
                    times.setdefault((i, mode), []).append((time.perf_counter() - start) * 1e3)
    rows = []
    for i, c in enumerate(candidates):
        fwd, fb = times[(i, "fwd")], times[(i, "fwdbwd")]
        row = _row(c.kind, c.case, min(fwd), min(fb), **c.extra)
        row["fwd_ms_median"] = round(statistics.median(fwd), 3)
        row["fwdbwd_ms_median"] = round(statistics.median(fb), 3)
        rows.append(row)
    return rows


def _row(kind: str, case: BenchCase, fwd_ms: float, fwdbwd_ms: float, **extra: object) -> dict:
    flops = 3 * case.active_flops_fwd()
    return {
        "kind": kind,
        **asdict(case),
        "fwd_ms": round(fwd_ms, 3),
        "fwdbwd_ms": round(fwdbwd_ms, 3),
        "tflops": round(flops / (fwdbwd_ms * 1e-3) / 1e12, 4),
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        **extra,
    }


def _fwd_bwd(
    forward: Callable[[], torch.Tensor], params: list[torch.Tensor], grad_out: torch.Tensor
) -> Callable[[], None]:
    def run() -> None:
        for p in params:
            p.grad = None
        forward().backward(grad_out)

    return run


def experts_candidate(case: BenchCase, backend: str, seed: int = 0) -> Candidate:
    """Expert compute only (a fixed :func:`forced_plan`) with one backend."""
    torch.manual_seed(seed)
    experts = GroupedExperts(case.E, case.d, case.h, backend=backend).to(case.torch_dtype)
    plan = forced_plan(case, seed)
    x = torch.randn(case.T, case.d, dtype=case.torch_dtype, requires_grad=True)
    grad = torch.randn(case.T, case.d, dtype=case.torch_dtype)
    resolved = backends.resolve(backend, "cpu", case.torch_dtype).name
    return Candidate(
        "experts",
        case,
        lambda: experts(x, plan),
        _fwd_bwd(lambda: experts(x, plan), [x, *experts.parameters()], grad),
        {"backend": backend, "resolved": resolved, "router": "forced"},
    )


def layer_candidate(
    case: BenchCase, router: str, backend: str = "auto", seed: int = 0
) -> Candidate:
    """The whole :class:`MoELayer` (router + experts) with a freshly initialised router."""
    torch.manual_seed(seed)
    # settings that give every router about k experts per token
    kw: dict[str, object] = {"k": case.k}
    if router == "expert_choice":
        kw = {"capacity_factor": float(case.k)}
    elif router == "topp":
        kw = {"max_k": case.k, "p": 0.6}
    r = routers.create(router, d_model=case.d, num_experts=case.E, **kw)
    layer = MoELayer(r, GroupedExperts(case.E, case.d, case.h, backend=backend)).to(
        case.torch_dtype
    )
    layer.router.float()  # routers run in fp32 whatever the experts' dtype
    x = torch.randn(case.T, case.d, dtype=case.torch_dtype, requires_grad=True)
    grad = torch.randn(case.T, case.d, dtype=case.torch_dtype)
    with torch.no_grad():
        plan = layer(x)[1].plan
    return Candidate(
        "layer",
        case,
        lambda: layer(x)[0],
        _fwd_bwd(lambda: layer(x)[0], [x, *layer.parameters()], grad),
        {
            "backend": backend,
            "router": router,
            "assignments_per_token": round(plan.num_assignments / case.T, 3),
        },
    )


def dense_candidate(case: BenchCase, seed: int = 0) -> Candidate:
    """The physical limit: ``T * k`` rows through one expert's two GEMMs (same active FLOPs)."""
    torch.manual_seed(seed)
    dt = case.torch_dtype
    w1 = (torch.randn(case.d, case.h, dtype=dt) * case.d**-0.5).requires_grad_()
    w2 = (torch.randn(case.h, case.d, dtype=dt) * case.h**-0.5).requires_grad_()
    x = torch.randn(case.T * case.k, case.d, dtype=dt, requires_grad=True)
    grad = torch.randn(case.T * case.k, case.d, dtype=dt)
    fwd_fn = lambda: F.gelu(x @ w1) @ w2  # noqa: E731
    return Candidate(
        "dense",
        case,
        fwd_fn,
        _fwd_bwd(fwd_fn, [x, w1, w2], grad),
        {"backend": "dense", "router": "none"},
    )


def hf_loop_candidate(case: BenchCase, seed: int = 0) -> Candidate:
    """Hugging Face's eager Mixtral loop: ``one_hot`` mask, ``where`` per expert, ``index_add``."""
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

    return Candidate(
        "hf_loop",
        case,
        forward,
        _fwd_bwd(forward, [x, *experts.parameters()], grad),
        {"backend": "hf_loop", "router": "forced"},
    )
