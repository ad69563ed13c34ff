"""MoELayer: shared experts, capacity with drop and pass-through, ExpertList, recorder, stats."""

import pytest
import torch
from torch import nn

from moesuite.core import CapacityPolicy, ExpertList, GroupedExperts, MoELayer, routers
from moesuite.core.balance import apply_capacity
from moesuite.core.recorder import RoutingRecorder
from moesuite.core.routing import RoutingPlan
from moesuite.core.stats import plot_expert_load, routing_summary


def _layer(**kw):
    torch.manual_seed(0)
    return MoELayer(
        routers.create("topk", d_model=8, num_experts=4, k=2), GroupedExperts(4, 8, 16), **kw
    )


def test_output_keeps_the_input_shape_and_adds_shared_experts():
    shared = nn.Conv1d(8, 8, 3, padding=1)

    class Shared(nn.Module):  # convolves along the sequence axis of [B, N, d]
        def forward(self, x):
            return shared(x.transpose(1, 2)).transpose(1, 2)

    layer = _layer()
    with_shared = MoELayer(layer.router, layer.experts, shared_experts=Shared())
    x = torch.randn(2, 5, 8)
    y0, _ = layer(x)
    y1, out = with_shared(x)
    assert y1.shape == x.shape and out.plan.num_tokens == 10
    assert torch.allclose(y1 - y0, Shared()(x), atol=1e-6)


def test_capacity_drops_and_reports_rate():
    plan = RoutingPlan.from_topk(torch.zeros(6, 1, dtype=torch.long), torch.ones(6, 1), 3)
    kept = apply_capacity(plan, CapacityPolicy(capacity_factor=1.0))  # capacity ceil(6/3)=2
    assert kept.token_idx.tolist() == [0, 1] and kept.num_dropped == 4
    w = torch.tensor([[0.1], [0.9], [0.5], [0.2], [0.95], [0.3]])
    plan = RoutingPlan.from_topk(torch.zeros(6, 1, dtype=torch.long), w, 3)
    kept = apply_capacity(plan, CapacityPolicy(capacity_factor=1.0, batch_prioritized=True))
    assert sorted(kept.token_idx.tolist()) == [1, 4]


@pytest.mark.parametrize("dropped", ["zero", "identity"])
def test_dropped_tokens_pass_through(dropped):
    layer = _layer(capacity=CapacityPolicy(capacity_factor=0.25, dropped=dropped))
    x = torch.randn(32, 8)
    y, out = layer(x)
    assert out.plan.drop_rate > 0.5
    lost = out.plan.experts_per_token() == 0
    assert lost.any()
    expected = x[lost] if dropped == "identity" else torch.zeros_like(x[lost])
    assert torch.equal(y[lost], expected)
    assert routing_summary(out)["drop_rate"] == pytest.approx(out.plan.drop_rate)


def test_dropless_is_the_default():
    y, out = _layer()(torch.randn(64, 8))
    assert out.plan.num_dropped == 0 and out.plan.num_assignments == 128


def test_expert_list_equals_grouped_experts_with_the_same_weights():
    grouped = GroupedExperts(3, 8, 16, bias=True)

    class MLP(nn.Module):
        def __init__(self, e):
            super().__init__()
            self.e = e

        def forward(self, x):
            h = nn.functional.gelu(x @ grouped.w_in[self.e] + grouped.b_in[self.e])
            return h @ grouped.w_out[self.e] + grouped.b_out[self.e]

    hetero = ExpertList([MLP(e) for e in range(3)])
    router = routers.create("topk", d_model=8, num_experts=3, k=2)
    x = torch.randn(12, 8)
    plan = router(x).plan
    assert torch.allclose(hetero(x, plan), grouped(x, plan), atol=1e-6)


def test_expert_list_checks_expert_output_shape():
    experts = ExpertList([nn.Linear(8, 8), nn.Linear(8, 3)])
    plan = RoutingPlan.from_topk(torch.tensor([[1]]), torch.ones(1, 1), 2)
    with pytest.raises(ValueError, match="expert 1 .* must map"):
        experts(torch.randn(1, 8), plan)


def test_mismatched_router_and_experts():
    with pytest.raises(ValueError, match="router has num_experts=4 but experts has 3"):
        MoELayer(routers.create("topk", d_model=8, num_experts=4), GroupedExperts(3, 8, 8))
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., d_model=8\]"):
        _layer()(torch.randn(2, 7))


def test_recorder_collects_every_layer_and_only_observes(tmp_path):
    torch.manual_seed(0)
    net = nn.ModuleDict({"a": _layer(), "b": _layer()})
    x = torch.randn(10, 8)
    with RoutingRecorder(net) as rec:
        y_rec = net["b"](net["a"](x)[0])[0]
    assert [r.name for r in rec.records] == ["a", "b"]
    y_rec.sum().backward()
    g_rec = net["a"].router.weight.grad.clone()
    net.zero_grad()
    y = net["b"](net["a"](x)[0])[0]
    y.sum().backward()
    assert torch.equal(y_rec, y) and torch.equal(g_rec, net["a"].router.weight.grad)
    png = plot_expert_load(
        {r.name: r.output.plan.counts for r in rec.records}, tmp_path / "load.png"
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_recorder_callback_sees_every_call_and_keeps_nothing():
    torch.manual_seed(0)
    net = nn.ModuleDict({"a": _layer(), "b": _layer()})
    x = torch.randn(10, 8)
    seen = []
    with RoutingRecorder(net, on_record=lambda n, layer, out: seen.append((n, out))) as rec:
        for _ in range(3):  # e.g. the passes of a roll-out
            net["b"](net["a"](x)[0])
    assert [n for n, _ in seen] == ["a", "b"] * 3 and rec.records == []
    counts = [out.plan.counts for n, out in seen if n == "a"]
    assert all(int(c.sum()) == 10 * 2 for c in counts)  # top-2 of 10 tokens per call
    net["a"](x)  # hooks removed on exit
    assert len(seen) == 6
