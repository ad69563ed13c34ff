"""Expert parallelism: 2 gloo processes on loopback against the single-process layer.

One spawn runs every case (each rank with its own tokens) and saves outputs and gradients;
the parent recomputes each case in one process on the concatenation of both ranks' tokens and
compares outputs, token gradients, gate/router gradients (summed over ranks: the router is
replicated) and expert-weight gradients (each rank's slice against the full layer's) at fp32
atol 1e-5.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from moesuite.core import GroupedExperts, MoELayer, RoutingPlan, routers
from moesuite.core.distributed import (
    ExpertParallelExperts,
    all_to_all,
    expert_block,
    shard_experts,
)

WORLD = 2
E, D, H = 4, 12, 16
ROOT = Path(__file__).resolve().parents[2]
SPAWN_TIMEOUT_S = 90

# per case: tokens per rank and how the plan is made
#   router cases: a real router (replicated) inside MoELayer
#   plan cases: gates = softmax(x @ W_g^T) at fixed experts drawn from `allowed[rank]`
CASES = {
    "topk": dict(tokens=(7, 5), router=dict(name="topk", k=2)),
    "topp_variable_k": dict(tokens=(9, 6), router=dict(name="topp", p=0.6)),
    "rank1_receives_nothing": dict(tokens=(6, 5), allowed=((0, 1), (0, 1)), k=2),
    "rank1_sends_nothing": dict(tokens=(8, 0), allowed=((0, 1, 2, 3), ()), k=2),
    "local_only": dict(tokens=(5, 4), allowed=((0, 1), (2, 3)), k=1),
}


# ---------------------------------------------------------------- the same inputs everywhere
def _inputs(case: str):
    """Tokens, output cotangents and (plan cases) expert choices per rank: identical on all."""
    spec = CASES[case]
    g = torch.Generator().manual_seed(sorted(CASES).index(case))
    xs, cots, idxs = [], [], []
    for rank, t in enumerate(spec["tokens"]):
        xs.append(torch.randn(t, D, generator=g))
        cots.append(torch.randn(t, D, generator=g))
        if "allowed" in spec:
            allowed = torch.tensor(spec["allowed"][rank], dtype=torch.long)
            if t and allowed.numel():
                pick = torch.rand(t, allowed.numel(), generator=g).argsort(-1)[:, : spec["k"]]
                idxs.append(allowed[pick])
            else:
                idxs.append(torch.zeros(t, spec["k"], dtype=torch.long))
    return xs, cots, idxs


def _modules(case: str):
    """Full experts and the gate (a router or a gate matrix), seeded identically everywhere."""
    torch.manual_seed(1234)
    experts = GroupedExperts(E, D, H, activation="gelu")
    spec = CASES[case]
    if "router" in spec:
        cfg = dict(spec["router"])
        gate = routers.create(cfg.pop("name"), d_model=D, num_experts=E, **cfg)
    else:
        gate = torch.nn.Linear(D, E, bias=False)
    return experts, gate


def _plan(gate: torch.nn.Module, x: torch.Tensor, idx: torch.Tensor) -> RoutingPlan:
    w = torch.softmax(gate(x), -1).gather(1, idx)
    return RoutingPlan.from_topk(idx, w, E)


# ---------------------------------------------------------------- child processes
def _worker(rank: int, world: int, port: int, out_dir: str, mode: str) -> None:
    warnings.simplefilter("error")  # as the root pytest config: a warning fails the run
    warnings.filterwarnings("ignore", message=".*CUDA initialization.*")
    warnings.filterwarnings("ignore", message=".*Can't initialize NVML.*")
    torch.set_num_threads(1)  # this child process only: two ranks share two cores
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=60))
    try:
        if mode == "mismatched_requires_grad":
            experts, _ = _modules("topk")
            layer = ExpertParallelExperts.from_full(experts)
            x = torch.randn(3, D, requires_grad=rank == 0)
            layer(
                x, RoutingPlan.from_topk(torch.zeros(3, 1, dtype=torch.long), torch.ones(3, 1), E)
            )
            return
        for case in CASES:
            torch.save(_run_rank(case, rank), Path(out_dir) / f"{case}-{rank}.pt")
    finally:
        dist.destroy_process_group()


def _run_rank(case: str, rank: int) -> dict[str, torch.Tensor]:
    xs, cots, idxs = _inputs(case)
    experts, gate = _modules(case)
    ep = ExpertParallelExperts.from_full(experts)
    x = xs[rank].clone().requires_grad_()
    if "router" in CASES[case]:
        y, _ = MoELayer(gate, ep)(x)
    else:
        y = ep(x, _plan(gate, x, idxs[rank]))
    (y * cots[rank]).sum().backward()
    local = ep.local_experts
    return {
        "y": y.detach(),
        "x_grad": x.grad,
        "gate_grad": gate.weight.grad,
        "w_in_grad": local.w_in.grad,
        "w_out_grad": local.w_out.grad,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(out_dir: Path, mode: str) -> None:
    """Run ``_worker`` on 2 ranks; re-raise a child's exception, never wait past the timeout."""
    with pytest.MonkeyPatch.context() as mp_ctx:
        mp_ctx.syspath_prepend(str(ROOT))  # children import this module by its dotted name
        ctx = mp.start_processes(
            _worker,
            args=(WORLD, _free_port(), str(out_dir), mode),
            nprocs=WORLD,
            join=False,
            start_method="spawn",
        )
    deadline = time.monotonic() + SPAWN_TIMEOUT_S
    try:
        while not ctx.join(timeout=1):
            if time.monotonic() > deadline:
                pytest.fail(f"expert-parallel workers did not finish in {SPAWN_TIMEOUT_S} s")
    finally:
        for p in ctx.processes:  # only the workers started above
            if p.is_alive():
                p.terminate()
                p.join(5)


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("expert_parallel")
    _spawn(out, "cases")
    return {
        case: [torch.load(out / f"{case}-{r}.pt", weights_only=True) for r in range(WORLD)]
        for case in CASES
    }


# ---------------------------------------------------------------- single-process reference
def _reference(case: str) -> dict[str, torch.Tensor]:
    xs, cots, idxs = _inputs(case)
    experts, gate = _modules(case)
    x = torch.cat(xs).requires_grad_()
    if "router" in CASES[case]:
        y, _ = MoELayer(gate, experts)(x)
    else:
        y = experts(x, _plan(gate, x, torch.cat(idxs)))
    (y * torch.cat(cots)).sum().backward()
    return {
        "y": y.detach(),
        "x_grad": x.grad,
        "gate_grad": gate.weight.grad,
        "w_in_grad": experts.w_in.grad,
        "w_out_grad": experts.w_out.grad,
    }


def _grad(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if t is None else t


@pytest.mark.distributed
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_match_the_single_process_layer(case, rank_results):
    ref = _reference(case)
    got = rank_results[case]
    rows = torch.tensor([0, *CASES[case]["tokens"]]).cumsum(0).tolist()
    for r in range(WORLD):
        mine = slice(rows[r], rows[r + 1])
        torch.testing.assert_close(got[r]["y"], ref["y"][mine], atol=1e-5, rtol=0)
        torch.testing.assert_close(got[r]["x_grad"], ref["x_grad"][mine], atol=1e-5, rtol=0)
        block = expert_block(E, r, WORLD)
        for name in ("w_in_grad", "w_out_grad"):
            full = ref[name][block.start : block.stop]
            torch.testing.assert_close(_grad(got[r][name], full), full, atol=1e-5, rtol=0)
    gate_sum = sum(_grad(got[r]["gate_grad"], ref["gate_grad"]) for r in range(WORLD))
    torch.testing.assert_close(gate_sum, ref["gate_grad"], atol=1e-5, rtol=0)


def test_cases_cover_empty_sends_and_receives():
    received = {case: [0] * WORLD for case in CASES if "allowed" in CASES[case]}
    for case in received:
        for idx in _inputs(case)[2]:
            for e in idx.flatten().tolist():
                received[case][e // (E // WORLD)] += 1
    assert received["rank1_receives_nothing"][1] == 0 and received["rank1_receives_nothing"][0] > 0
    assert CASES["rank1_sends_nothing"]["tokens"][1] == 0 and received["rank1_sends_nothing"][1] > 0
    _, _, idxs = _inputs("local_only")
    assert all(((idx // (E // WORLD)) == r).all() for r, idx in enumerate(idxs))
    router = _modules("topp_variable_k")[1]
    k = router(torch.cat(_inputs("topp_variable_k")[0])).plan.experts_per_token()
    assert k.min() >= 1 and k.unique().numel() > 1  # the plan really has variable k


@pytest.mark.distributed
@pytest.mark.timeout(120)
def test_a_failing_rank_fails_the_test_instead_of_hanging(tmp_path):
    # rank 0's tokens need gradients, rank 1's do not: the backward would hang, so both raise
    with pytest.raises(Exception, match="ranks disagree on autograd"):
        _spawn(tmp_path, "mismatched_requires_grad")


def test_one_process_is_the_full_layer():
    experts, _ = _modules("topk")
    ep = ExpertParallelExperts.from_full(experts)
    x = torch.randn(6, D)
    plan = RoutingPlan.from_topk(torch.tensor([[0, 3]] * 6), torch.full((6, 2), 0.5), E)
    torch.testing.assert_close(ep(x, plan), experts(x, plan), atol=1e-6, rtol=0)
    assert ep.num_local_experts == E and ep.world_size == 1


def test_experts_must_divide_by_the_world_size():
    with pytest.raises(ValueError, match="multiple of the world size 3"):
        expert_block(4, rank=0, world_size=3)
    with pytest.raises(ValueError, match="rank must be in"):
        expert_block(4, rank=2, world_size=2)
    full = GroupedExperts(E, D, H, bias=True)
    shard = shard_experts(full, rank=1, world_size=2)
    assert torch.equal(shard.b_out, full.b_out[2:]) and torch.equal(shard.w_out, full.w_out[2:])
    with pytest.raises(ValueError, match="holds 4 experts"):
        ExpertParallelExperts(shard_experts(full, 0, 1), num_experts=8)


def test_all_to_all_checks_its_splits():
    x = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="one per rank"):
        all_to_all(x, [3, 0], [3])
    with pytest.raises(ValueError, match="add up to 2 rows but x has 3"):
        all_to_all(x, [2], [2])
