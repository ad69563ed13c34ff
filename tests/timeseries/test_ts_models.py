"""Forecaster contracts: shapes for every registered model, causality, decoder size, RevIN, MoHE."""

import pytest
import torch

from moesuite.core.experts import ExpertList, GroupedExperts
from moesuite.core.layer import MoELayer
from moesuite.core.recorder import RoutingRecorder
from moesuite.core.routers.base import Router
from moesuite.timeseries.models import (
    BasisHead,
    ConvPatchDecoder,
    DLinear,
    FourierExpert,
    MoHETS,
    RevIN,
    build_mohe_layer,
    create_model,
    fourier_basis,
    list_models,
    model_spec,
)

L, H, C, CZ, CK = 64, 24, 3, 3, 2


def _inputs(B=4, horizon=H, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, L, C, generator=g), torch.randn(B, L, CZ, generator=g),
            torch.randn(B, horizon, CK, generator=g))


def _tiny(name, **kw):
    opts = {"d_model": 16, "d_ff": 16, "n_heads": 2} if model_spec(name).cls is MoHETS else {}
    opts.update(kw)
    return create_model(name, n_channels=C, lookback=L, horizon=H, n_covariates=CZ, n_known=CK, **opts)


@pytest.mark.parametrize("name", list_models())
def test_every_model_forecasts_the_right_shape_and_rebuilds_from_its_config(name):
    torch.manual_seed(0)
    model = _tiny(name).eval()
    y = model(*_inputs())
    assert y.shape == (4, H, C) and torch.isfinite(y).all()
    clone = type(model)(**model.get_config()).eval()
    clone.load_state_dict(model.state_dict())
    assert torch.allclose(clone(*_inputs()), y)
    with pytest.raises(ValueError, match="lookback"):
        model(torch.randn(2, L + 1, C))


def test_unknown_model_and_option_are_rejected():
    with pytest.raises(ValueError, match="unknown model 'prophet'"):
        create_model("prophet", n_channels=1, lookback=10, horizon=5)
    with pytest.raises(ValueError, match="has no option 'd_model'"):
        create_model("dlinear", n_channels=1, lookback=10, horizon=5, d_model=8)


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
    model = _tiny(name).eval()
    _perturb(model)
    x, zp, zf = _inputs(B=3)
    x.requires_grad_(True)
    y = model(x, zp, zf)
    y[1].sum().backward()
    grad = x.grad.abs().sum((1, 2))
    assert grad[1] > 0 and grad[0] == 0 and grad[2] == 0


def test_future_covariates_matter_only_when_known():
    torch.manual_seed(0)
    x, zp, zf = _inputs()
    known = _perturb(_tiny("mohets").eval())
    assert not torch.allclose(known(x, zp, zf), known(x, zp, zf + 1.0))
    past_only = _perturb(create_model("mohets", n_channels=C, lookback=L, horizon=H, n_covariates=CZ, n_known=0,
                                      d_model=16, d_ff=16, n_heads=2).eval())
    assert torch.allclose(past_only(x, zp, zf), past_only(x, zp, zf + 1.0))
    assert not torch.allclose(past_only(x, zp, zf), past_only(x, zp + 1.0, zf))
    no_cov = _perturb(_tiny("mohets-nocov").eval())
    assert torch.allclose(no_cov(x, zp, zf), no_cov(x, zp + 1.0, zf + 1.0))


def _head_params(model):
    return sum(p.numel() for p in model.head.parameters())


@pytest.mark.parametrize(("decoder", "skip"), [("fourier", False), ("fourier", True), ("latent", False),
                                              ("latent", True), ("implicit", False), ("rollout", False),
                                              ("query", False)])
def test_conv_decoder_parameters_do_not_depend_on_the_horizon(decoder, skip):
    sizes = {h: create_model("mohets", n_channels=7, lookback=336, horizon=h, d_model=16, decoder=decoder,
                             lookback_skip=skip, skip_experts=1, head_scale=1.0)
             for h in (96, 192, 336, 720)}
    assert len({_head_params(m) for m in sizes.values()}) == 1
    assert len({sum(p.numel() for p in m.parameters()) for m in sizes.values()}) == 1
    patchtst = {h: create_model("patchtst", n_channels=7, lookback=336, horizon=h, d_model=16) for h in (96, 720)}
    assert _head_params(patchtst[720]) > _head_params(patchtst[96])  # flatten head: N * d * H
    total = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert total(sizes[720]) <= total(patchtst[720])
    # one conv-decoder model forecasts any horizon
    y = sizes[96].eval()(torch.randn(2, 336, 7), horizon=500)
    assert y.shape == (2, 500, 7)


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
    model = _tiny("mohets-nocov").eval()
    x = torch.randn(2, L, C)
    y1, y2 = model(x), model(10.0 * x + 5.0)
    assert torch.allclose(y2, 10.0 * y1 + 5.0, rtol=1e-3, atol=1e-2)


def test_mohe_layer_is_built_from_core_parts_with_heterogeneous_experts():
    layer = build_mohe_layer(d_model=16, d_ff=32, num_experts=4, top_k=2)
    assert isinstance(layer, MoELayer) and isinstance(layer.experts, ExpertList)
    scales = [e.scale for e in layer.experts.experts]
    assert all(isinstance(e, FourierExpert) for e in layer.experts.experts)
    assert scales == sorted(scales) and scales[-1] / scales[0] > 10  # low to high frequency bands
    stds = [e.freq.weight.std().item() for e in layer.experts.experts]
    assert stds == sorted(stds)
    assert isinstance(build_mohe_layer(16, 32, expert="mlp").experts, GroupedExperts)
    # the shared depthwise-conv expert mixes neighbouring patches: a change at patch 0 reaches patch 1
    x = torch.randn(1, 6, 16)
    x2 = x.clone()
    x2[0, 0] += 1.0
    shared = layer.shared_experts
    assert not torch.allclose(shared(x)[0, 1], shared(x2)[0, 1]) and torch.allclose(shared(x)[0, 4], shared(x2)[0, 4])
    # routing and aux losses are the core's, and gradients reach the router
    y, out = layer(x)
    (y.sum() + out.aux_loss).backward()
    assert layer.router.weight.grad is not None and layer.router.weight.grad.abs().sum() > 0
    assert set(out.aux) == {"load_balance", "z_loss"}


def test_routing_is_recorded_per_patch_token():
    torch.manual_seed(0)
    model = _tiny("mohets").eval()
    with RoutingRecorder(model) as rec:
        model(*_inputs(B=2))
    assert len(rec.records) == 2  # one MoE layer per encoder block
    assert rec.records[0].output.plan.num_tokens == 2 * C * model.n_patches


def test_dlinear_decomposition_is_exact():
    m = DLinear(n_channels=2, lookback=48, horizon=12)
    x = torch.randn(3, 48, 2)
    seasonal, trend = m.decompose(x)
    assert torch.allclose(seasonal + trend, x, atol=1e-6)
    const = torch.full((1, 48, 2), 3.0)
    assert torch.allclose(m.decompose(const)[1], const)


def test_naive_baselines():
    x = torch.arange(48.0).reshape(1, 48, 1)
    assert create_model("naive", n_channels=1, lookback=48, horizon=5)(x).flatten().tolist() == [47.0] * 5
    season = create_model("seasonal-naive", n_channels=1, lookback=48, horizon=30)(x).flatten()
    assert season[:24].tolist() == list(range(24, 48)) and season[24:].tolist() == list(range(24, 30))


@pytest.mark.parametrize("mode", ["fourier", "implicit", "rollout"])
def test_decoder_prefix_is_consistent_across_horizons(mode):
    dec = ConvPatchDecoder(d_model=8, patch_len=4, n_tokens=5, mode=mode).eval()
    t = torch.randn(2, 5, 8)
    assert torch.allclose(dec(t, 40)[:, :12], dec(t, 12), atol=1e-6)


def test_fourier_basis_head_is_linear_in_its_input_and_learns_a_periodic_forecast():
    torch.manual_seed(0)
    head = BasisHead(32, n_frequencies=16, period=48.0)
    assert torch.count_nonzero(head(torch.randn(2, 32), 60)) == 0  # zero init: starts at the lookback mean
    with torch.no_grad():
        head.coef.weight.normal_()
    a, b = torch.randn(3, 32), torch.randn(3, 32)
    assert torch.allclose(head(a + 2 * b, 50) - head.coef.bias @ fourier_basis(50, 16, 48.0).T,
                          head(a, 50) + 2 * head(b, 50) - 2 * head.coef.bias @ fourier_basis(50, 16, 48.0).T, atol=1e-4)
    # beyond the base period the forecast repeats
    y = head(a, 120)
    assert torch.allclose(y[:, :48], y[:, 48:96], atol=1e-3)
    # fit sine waves of random phase with period 12 from their last 32 values, 48 steps ahead
    head = BasisHead(32, n_frequencies=16, period=48.0)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    t = torch.arange(80.0)
    def batch():
        phase = torch.rand(64, 1) * 6.283
        s = torch.sin(2 * torch.pi * t / 12 + phase)
        return s[:, :32], s[:, 32:]
    losses = []
    for _ in range(300):
        x, y = batch()
        loss = ((head(x, 48) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.4 and sum(losses[-20:]) / 20 < 0.01


def test_lookback_skip_adds_a_linear_forecast_of_the_lookback():
    torch.manual_seed(0)
    x, zp, zf = _inputs()
    plain = _tiny("mohets", lookback_skip=False, head_scale=1.0).eval()
    skip = _tiny("mohets", lookback_skip=True, skip_experts=1, head_scale=1.0).eval()
    skip.load_state_dict(plain.state_dict(), strict=False)
    assert torch.allclose(plain(x, zp, zf), skip(x, zp, zf))  # zero-initialised skip
    with torch.no_grad():
        skip.skip.coef.weight.normal_()
    assert not torch.allclose(plain(x, zp, zf), skip(x, zp, zf))
    assert skip(x, horizon=3 * H).shape == (4, 3 * H, C)


def test_default_mohets_forecasts_with_gated_lookback_experts_of_fixed_size():
    sizes = {h: create_model("mohets", n_channels=7, lookback=336, horizon=h, n_covariates=4, n_known=4, d_model=16)
             for h in (96, 720)}
    m = sizes[96]
    assert m.head is None and m.skip.n_experts == 4 and m.any_horizon
    total = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    patchtst = create_model("patchtst", n_channels=7, lookback=336, horizon=720, d_model=16)
    assert total(sizes[96]) == total(sizes[720]) <= total(patchtst)
    assert m.eval()(torch.randn(2, 336, 7), horizon=500).shape == (2, 500, 7)
    with pytest.raises(ValueError, match="head_scale=0"):
        _tiny("mohets", skip_experts=1)
    with pytest.raises(ValueError, match="head_scale=0"):
        _tiny("mohets", lookback_skip=False)


def test_skip_experts_are_mixed_by_a_gate_on_the_encoder_tokens():
    torch.manual_seed(0)
    x, zp, zf = _inputs()
    model = _tiny("mohets", lookback_skip=True, skip_experts=3).eval()
    assert model.skip.coef.out_features == 3 * 2 * model.skip.n_frequencies
    with torch.no_grad():
        model.skip.coef.weight.normal_()
    y = model(x, zp, zf)
    with torch.no_grad():
        model.skip_gate.weight.mul_(50.0)  # a sharper gate from the core router
    assert not torch.allclose(y, model(x, zp, zf))
    head = BasisHead(8, n_frequencies=2, period=10.0, n_experts=2)
    with torch.no_grad():
        head.coef.weight.normal_()
    a = torch.randn(5, 8)
    one_hot = torch.tensor([[1.0, 0.0]] * 5)
    half = torch.full((5, 2), 0.5)
    assert torch.allclose(head(a, 7, half), 0.5 * (head(a, 7, one_hot) + head(a, 7, one_hot.flip(1))), atol=1e-5)
    with pytest.raises(ValueError, match="gate"):
        head(a, 7)


def test_lookback_experts_are_gated_by_a_core_router_with_any_top_k():
    torch.manual_seed(0)
    model = _tiny("mohets", skip_experts=4, skip_top_k=1).eval()
    assert isinstance(model.skip_gate, Router) and isinstance(_tiny("mohets").skip_gate, Router)
    x, zp, zf = _inputs()
    h = torch.randn(6, model.skip_gate.d_model)
    assert (model.skip_gate(h).plan.to_dense() > 0).sum(1).tolist() == [1] * 6
    assert model(x, zp, zf).shape == (x.shape[0], model.horizon, x.shape[2])
    for name in ("topp", "sinkhorn", "prototype"):  # any causal core router, with or without a fixed k
        assert _tiny("mohets", skip_router=name).eval()(x, zp, zf).shape == (x.shape[0], model.horizon, x.shape[2])
    for kw in ({"skip_router": "expert_choice"}, {"router": "expert_choice"}):
        with pytest.raises(ValueError, match="not causal"):
            _tiny("mohets", **kw)
