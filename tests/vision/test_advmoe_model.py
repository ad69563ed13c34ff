"""AdvMoE networks: MoE convolutions, routers through the core contract, FLOPs, input checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from moesuite.core.routing import RoutingPlan
from moesuite.core.testing import assert_aux_consumed
from moesuite.core.training import torch_threads
from moesuite.vision.advmoe.attacks import trades_kl
from moesuite.vision.advmoe.evaluate import flops_per_image
from moesuite.vision.advmoe.model import AdvResNet, MoEConv2d, expert_choices
from moesuite.vision.advmoe.training import router_loss, trades_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one torch thread (a second one spin-waits on a busy machine)."""
    with torch_threads(1):
        yield


def _plan(choice: list[int], experts: int) -> RoutingPlan:
    idx = torch.tensor(choice)[:, None]
    return RoutingPlan.from_topk(idx, torch.ones(len(choice), 1), experts)


@pytest.mark.parametrize("stride", [1, 2])
def test_moe_conv_with_a_plan_picking_group_e_is_that_groups_dense_conv(stride):
    torch.manual_seed(0)
    conv = MoEConv2d(3, 4, num_experts=3, stride=stride)
    x = torch.randn(5, 3, 9, 9)
    for e in range(3):
        got = conv(x, _plan([e] * 5, 3))
        dense = torch.nn.Conv2d(3, 4, 3, stride=stride, padding=1, bias=False)
        dense.weight.data.copy_(conv.weight.data[e])  # a dense conv holding only group e
        torch.testing.assert_close(got, dense(x))
    mixed = _plan([2, 0, 1, 0, 2], 3)  # each image its own group == the compute-all reference
    torch.testing.assert_close(conv(x, mixed), conv.reference(x, mixed))
    for i, e in enumerate([2, 0, 1, 0, 2]):
        ref = F.conv2d(x[i : i + 1], conv.weight[e], stride=stride, padding=1)
        torch.testing.assert_close(conv(x, mixed)[i : i + 1], ref)


def test_moe_conv_computes_only_the_chosen_group():
    conv = MoEConv2d(4, 8, num_experts=4)
    x = torch.randn(6, 4, 10, 10)
    one = MoEConv2d(4, 8, num_experts=1)
    plan = _plan([0, 1, 2, 3, 0, 1], 4)

    def flops(fn) -> int:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    assert flops(lambda: conv(x, plan)) == flops(lambda: one(x, _plan([0] * 6, 1))) > 0


@pytest.mark.parametrize("routing", ["shared", "per_layer"])
def test_routers_give_hard_gates_through_the_core_contract(routing):
    torch.manual_seed(0)
    net = AdvResNet(width=8, ratio=0.5, experts=2, routing=routing)
    out = net(torch.rand(4, 1, 12, 12))
    assert out.output.shape == (4, 10)
    assert len(out.routing) == (1 if routing == "shared" else 16)  # 8 blocks x 2 convs
    for r in out.routing:
        assert isinstance(r.plan, RoutingPlan) and r.plan.num_tokens == 4
        assert torch.equal(r.plan.weight, torch.ones(4))
    assert expert_choices(out.routing, 4).shape == (len(out.routing), 4)
    # the task loss reaches the routers through the straight-through gate
    F.cross_entropy(out.output, torch.tensor([0, 1, 2, 3])).backward()
    grads = [p.grad for p in net.router_parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)
    assert not {id(p) for p in net.router_parameters()} & {id(p) for p in net.backbone_parameters()}


def test_dense_network_has_no_router_and_the_moe_halves_the_flops():
    x = torch.rand(8, 1, 28, 28)
    dense = AdvResNet(width=8, ratio=1.0)
    assert dense(x).routing == [] and dense.router_parameters() == []
    moe = AdvResNet(width=8, ratio=0.5, experts=2)
    half = AdvResNet(width=8, ratio=0.5)
    f_dense, f_moe, f_half = (flops_per_image(m, x) for m in (dense, moe, half))
    assert f_moe <= 0.5 * f_dense  # chosen expert + router
    assert f_half < f_moe < 1.5 * f_half  # the router is the difference
    # E groups of r * planes filters: twice the block-conv parameters of the dense half net
    conv_params = sum(p.numel() for n, p in moe.named_parameters() if ".conv" in n)
    half_params = sum(p.numel() for n, p in half.named_parameters() if ".conv" in n)
    assert conv_params > 1.8 * half_params


def test_bad_images_are_one_clear_error():
    net = AdvResNet(width=4, ratio=0.5, experts=2)
    with pytest.raises(ValueError, match="smaller than the stem takes"):
        net(torch.rand(2, 1, 6, 6))
    with pytest.raises(ValueError, match="1-channel"):
        net(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="routing"):
        AdvResNet(routing="global")


@pytest.mark.parametrize("routing", ["shared", "per_layer"])
def test_every_step_loss_consumes_the_router_aux_losses(routing):
    torch.manual_seed(0)
    net = AdvResNet(width=4, ratio=0.5, experts=2, routing=routing)
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6)
    x_adv = trades_kl(net, x, 0.1, 1, 0.05, router_kl=True)
    n = 1 if routing == "shared" else 16
    assert assert_aux_consumed(net, lambda: trades_loss(net, x, y, x_adv, 6.0)[0], n) >= n
    assert assert_aux_consumed(net, lambda: router_loss(net, x, y, x_adv, 6.0, 6.0)[0], n) >= n
