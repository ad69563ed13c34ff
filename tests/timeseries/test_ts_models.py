"""Forecaster contracts: shapes for every registered model, causality, head size, RevIN, MoHE."""

import pytest
import torch

from moesuite.core.experts import ExpertList
from moesuite.core.layer import MoELayer
from moesuite.core.output import MoEOutput
from moesuite.core.recorder import RoutingRecorder
from moesuite.core.routers.base import Router
from moesuite.timeseries.models import (
    MODELS,
    BasisHead,
    DLinear,
    FourierExpert,
    MoHETS,
    RevIN,
    build_mohe_layer,
    create_model,
    fourier_basis,
)

L, H, C, CZ, CK = 64, 24, 3, 3, 2


def _inputs(B=4, horizon=H, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, L, C, generator=g),
        torch.randn(B, L, CZ, generator=g),
        torch.randn(B, horizon, CK, generator=g),
    )


def _tiny(name, **kw):
    opts = {"d_model": 16, "d_ff": 16, "n_heads": 2} if MODELS.get(name).obj is MoHETS else {}
    opts.update(kw)
    return create_model(
        name, n_channels=C, lookback=L, horizon=H, n_covariates=CZ, n_known=CK, **opts
    )


def _params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", MODELS.list())
def test_every_model_forecasts_the_right_shape_and_rebuilds_from_its_config(name):
    torch.manual_seed(0)
    model = _tiny(name).eval()
    has_routers = any(isinstance(m, Router) for m in model.modules())
    assert isinstance(model(*_inputs()), MoEOutput) or not has_routers
    y = model.predict(*_inputs())
    assert y.shape == (4, H, C) and torch.isfinite(y).all()
    clone = type(model)(**model.get_config()).eval()
    clone.load_state_dict(model.state_dict())
    assert torch.allclose(clone.predict(*_inputs()), y)
    with pytest.raises(ValueError, match="lookback"):
        model(torch.randn(2, L + 1, C))


def test_unknown_model_and_option_are_rejected():
    with pytest.raises(ValueError, match="unknown model 'prophet'; expected one of"):
        create_model("prophet", n_channels=1, lookback=10, horizon=5)
    with pytest.raises(ValueError, match="has no option 'd_model'"):
        create_model("dlinear", n_channels=1, lookback=10, horizon=5, d_model=8)
    # None options keep the model's defaults (CLI defaults never override them)
    assert create_model("dlinear", n_channels=1, lookback=10, horizon=5, d_model=None)


def _perturb(model):
    """Move every weight off its initialisation: zero-initialised forecast heads (with RevIN's
    detached statistics) would make the output independent of every input at first."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("name", ["mohets", "patchtst", "dlinear", "mohets-nocov"])
def test_each_window_depends_only_on_its_own_inputs(name):
    """Samples in a batch do not see each other (e.g. no batch-level routing) and gradients of
    a sample's forecast reach only that sample's lookback."""
    torch.manual_seed(0)
    model = _perturb(_tiny(name).eval())
    x, zp, zf = _inputs(B=3)
    x.requires_grad_(True)
    model.predict(x, zp, zf)[1].sum().backward()
    grad = x.grad.abs().sum((1, 2))
    assert grad[1] > 0 and grad[0] == 0 and grad[2] == 0


def test_future_covariates_matter_only_when_known():
    torch.manual_seed(0)
    x, zp, zf = _inputs()
    known = _perturb(_tiny("mohets").eval())
    assert not torch.allclose(known.predict(x, zp, zf), known.predict(x, zp, zf + 1.0))
    past_only = _perturb(
        create_model("mohets", n_channels=C, lookback=L, horizon=H, n_covariates=CZ, n_known=0,
                     d_model=16, d_ff=16, n_heads=2).eval()
    )  # fmt: skip
    assert torch.allclose(past_only.predict(x, zp, zf), past_only.predict(x, zp, zf + 1.0))
    assert not torch.allclose(past_only.predict(x, zp, zf), past_only.predict(x, zp + 1.0, zf))
    no_cov = _perturb(_tiny("mohets-nocov").eval())
    assert torch.allclose(no_cov.predict(x, zp, zf), no_cov.predict(x, zp + 1.0, zf + 1.0))


def test_mohets_weights_do_not_depend_on_the_horizon_and_it_forecasts_any_horizon():
    sizes = {
        h: create_model("mohets", n_channels=7, lookback=336, horizon=h, n_covariates=4,
                        n_known=4, d_model=16)
        for h in (96, 720)
    }  # fmt: skip
    m = sizes[96]
    assert m.head is None and m.lookback_head.n_experts == 4 and m.any_horizon
    patchtst = {h: create_model("patchtst", n_channels=7, lookback=336, horizon=h, d_model=16)
                for h in (96, 720)}  # fmt: skip
    assert _params(sizes[96]) == _params(sizes[720]) <= _params(patchtst[720])
    assert _params(patchtst[720]) > _params(patchtst[96])  # flatten head: N * d * H
    assert m.eval().predict(torch.randn(2, 336, 7), horizon=500).shape == (2, 500, 7)
    with pytest.raises(ValueError, match="lookback_experts >= 2"):
        _tiny("mohets", lookback_experts=1)


def test_revin_round_trip_with_learned_affine():
    torch.manual_seed(0)
    rev = RevIN(4, affine=True)
    with torch.no_grad():
        rev.weight.copy_(torch.tensor([0.5, 2.0, 1.0, -1.5]))
        rev.bias.copy_(torch.tensor([0.1, -0.3, 0.0, 2.0]))
    x = torch.randn(3, 50, 4) * torch.tensor([1.0, 10.0, 0.1, 5.0]) + 100.0
    z = rev.normalize(x)
    assert torch.allclose(((z - rev.bias) / rev.weight).mean(1), torch.zeros(3, 4), atol=1e-4)
    assert torch.allclose(rev.denormalize(z), x, rtol=1e-4, atol=1e-3)


def test_mohets_output_follows_the_input_scale_through_revin():
    torch.manual_seed(0)
    model = _perturb(_tiny("mohets-nocov").eval())
    x = torch.randn(2, L, C)
    y1, y2 = model.predict(x), model.predict(10.0 * x + 5.0)
    assert torch.allclose(y2, 10.0 * y1 + 5.0, rtol=1e-3, atol=1e-2)


def test_mohe_layer_is_built_from_core_parts_with_heterogeneous_experts():
    layer = build_mohe_layer(d_model=16, d_ff=32, num_experts=4, top_k=2)
    assert isinstance(layer, MoELayer) and isinstance(layer.experts, ExpertList)
    scales = [e.scale for e in layer.experts.experts]
    assert all(isinstance(e, FourierExpert) for e in layer.experts.experts)
    assert scales == sorted(scales) and scales[-1] / scales[0] > 10  # low to high bands
    stds = [e.freq.weight.std().item() for e in layer.experts.experts]
    assert stds == sorted(stds)
    # the shared depthwise-conv expert mixes neighbouring patches only
    x = torch.randn(1, 6, 16)
    x2 = x.clone()
    x2[0, 0] += 1.0
    shared = layer.shared_experts
    assert not torch.allclose(shared(x)[0, 1], shared(x2)[0, 1])
    assert torch.allclose(shared(x)[0, 4], shared(x2)[0, 4])
    # routing and aux losses are the core's, and gradients reach the router
    y, out = layer(x)
    (y.sum() + out.aux_loss).backward()
    assert layer.router.weight.grad is not None and layer.router.weight.grad.abs().sum() > 0
    assert set(out.aux) == {"load_balance", "z_loss"}


def test_mohets_returns_every_router_output_in_call_order():
    torch.manual_seed(0)
    model = _tiny("mohets").train()
    with RoutingRecorder(model) as rec:
        out = model(*_inputs(B=2))
    assert len(rec.records) == 2  # one MoE layer per encoder block, recorded per patch token
    assert rec.records[0].output.plan.num_tokens == 2 * C * model.n_patches
    assert [r.plan.num_tokens for r in out.routing] == [2 * C * model.n_patches] * 2 + [2 * C]
    assert out.routing[0] is rec.records[0].output and out.routing[1] is rec.records[1].output
    # the MoHE routers' weighted losses are in aux_loss; the gate's weights are 0 by default
    expected = sum(r.aux_loss for r in out.routing[:2])
    assert float(out.aux_loss) > 0 and torch.allclose(out.aux_loss, expected)
    assert out.routing[2].aux_weights == {"load_balance": 0.0, "z_loss": 0.0}
    weighted = _tiny("mohets", gate_z_weight=1e-2)(*_inputs(B=2)).routing[2]
    assert float(weighted.aux_loss) > 0


def test_dlinear_decomposition_is_exact():
    m = DLinear(n_channels=2, lookback=48, horizon=12)
    x = torch.randn(3, 48, 2)
    seasonal, trend = m.decompose(x)
    assert torch.allclose(seasonal + trend, x, atol=1e-6)
    const = torch.full((1, 48, 2), 3.0)
    assert torch.allclose(m.decompose(const)[1], const)


def test_naive_baselines():
    x = torch.arange(48.0).reshape(1, 48, 1)
    naive = create_model("naive", n_channels=1, lookback=48, horizon=5)
    assert naive(x).flatten().tolist() == [47.0] * 5
    season = create_model("seasonal-naive", n_channels=1, lookback=48, horizon=30)(x).flatten()
    assert season[:24].tolist() == list(range(24, 48))
    assert season[24:].tolist() == list(range(24, 30))


def test_fourier_basis_head_is_linear_in_its_input_and_learns_a_periodic_forecast():
    torch.manual_seed(0)
    head = BasisHead(32, n_frequencies=16, period=48.0)
    assert torch.count_nonzero(head(torch.randn(2, 32), 60)) == 0  # starts at the lookback mean
    with torch.no_grad():
        head.coef.weight.normal_()
    a, b = torch.randn(3, 32), torch.randn(3, 32)
    bias = head.coef.bias @ fourier_basis(50, 16, 48.0).T
    assert torch.allclose(head(a + 2 * b, 50) - bias, head(a, 50) + 2 * head(b, 50) - 2 * bias,
                          atol=1e-4)  # fmt: skip
    y = head(a, 120)  # beyond the base period the forecast repeats
    assert torch.allclose(y[:, :48], y[:, 48:96], atol=1e-3)
    # fit sine waves of random phase with period 12 from their last 32 values, 48 steps ahead
    head = BasisHead(32, n_frequencies=16, period=48.0)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    t = torch.arange(80.0)
    losses = []
    for _ in range(300):
        s = torch.sin(2 * torch.pi * t / 12 + torch.rand(64, 1) * 6.283)
        loss = ((head(s[:, :32], 48) - s[:, 32:]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.4 and sum(losses[-20:]) / 20 < 0.01


def test_lookback_experts_are_mixed_by_a_gate_on_the_encoder_tokens():
    torch.manual_seed(0)
    x, zp, zf = _inputs()
    model = _tiny("mohets", lookback_experts=3).eval()
    assert model.lookback_head.coef.out_features == 3 * 2 * model.lookback_head.n_frequencies
    with torch.no_grad():
        model.lookback_head.coef.weight.normal_()
    y = model.predict(x, zp, zf)
    with torch.no_grad():
        model.gate.weight.mul_(50.0)  # a sharper gate from the core router
    assert not torch.allclose(y, model.predict(x, zp, zf))
    head = BasisHead(8, n_frequencies=2, period=10.0, n_experts=2)
    with torch.no_grad():
        head.coef.weight.normal_()
    a = torch.randn(5, 8)
    one_hot = torch.tensor([[1.0, 0.0]] * 5)
    half = torch.full((5, 2), 0.5)
    mixed = 0.5 * (head(a, 7, one_hot) + head(a, 7, one_hot.flip(1)))
    assert torch.allclose(head(a, 7, half), mixed, atol=1e-5)
    with pytest.raises(ValueError, match="gate"):
        head(a, 7)


def test_the_gate_is_a_core_router_with_any_top_k_and_causal_routers_only():
    torch.manual_seed(0)
    model = _tiny("mohets", gate_top_k=1).eval()
    assert isinstance(model.gate, Router) and isinstance(_tiny("mohets").gate, Router)
    x, zp, zf = _inputs()
    h = torch.randn(6, model.gate.d_model)
    assert (model.gate(h).plan.to_dense() > 0).sum(1).tolist() == [1] * 6
    assert model.predict(x, zp, zf).shape == (x.shape[0], model.horizon, x.shape[2])
    for name in ("topp", "sinkhorn", "prototype"):  # with or without a fixed k
        y = _tiny("mohets", gate_router=name).eval().predict(x, zp, zf)
        assert y.shape == (x.shape[0], model.horizon, x.shape[2])
    for kw in ({"gate_router": "expert_choice"}, {"router": "expert_choice"}):
        with pytest.raises(ValueError, match="not causal"):
            _tiny("mohets", **kw)
