"""Forecaster contracts and the MoHETS mechanisms: shapes, causality, patching, rotary attention,
the exogenous path between channels, the MoHE layer, the roll-out, the baselines."""

import pytest
import torch

from moesuite.core.experts import ExpertList
from moesuite.core.layer import MoELayer
from moesuite.core.output import MoEOutput
from moesuite.core.recorder import RoutingRecorder
from moesuite.core.routers.base import Router
from moesuite.timeseries.models import (
    MODELS,
    DLinear,
    FANFeedForward,
    GroupedQueryAttention,
    MoHETS,
    NLinear,
    PatchEmbedding,
    RevIN,
    UnPatchDecoder,
    apply_rotary,
    build_mohe_layer,
    create_model,
)
from moesuite.timeseries.models.mohe import GatedSharedExpert

L, H, C, CZ, CK = 48, 24, 3, 3, 2
TINY = {"d_model": 16, "d_ff": 16, "n_heads": 2, "n_kv_heads": 1, "n_layers": 2}


def _inputs(B=4, horizon=H, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(B, L, C, generator=g),
        torch.randn(B, L, CZ, generator=g),
        torch.randn(B, horizon, CK, generator=g),
    )


def _tiny(name, **kw):
    opts = dict(TINY) if MODELS.get(name).obj is MoHETS else {}
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


def test_mohets_uses_known_covariates_only_and_through_them_alone_mixes_channels():
    """The exogenous embedding is the only path between channels; past-only covariates have no
    future to slide into the roll-out and are not used."""
    torch.manual_seed(0)
    x, zp, zf = _inputs(B=2, horizon=48)
    model = _perturb(_tiny("mohets").eval())
    moved = x.clone()
    moved[:, :, 2] += torch.linspace(0, 3, L)
    y, y2 = model.predict(x, zp, zf, 48), model.predict(moved, zp, zf, 48)
    assert not torch.allclose(y[..., 0], y2[..., 0])  # channel 2 reaches channel 0
    zp2 = zp.clone()
    zp2[..., 0] += 1.0  # the past-only covariate column
    assert torch.allclose(model.predict(x, zp2, zf, 48), y)
    zf2 = zf.clone()
    zf2[:, :24] += 1.0  # the calendar marks slid in after the first step
    assert torch.allclose(model.predict(x, zp, zf2, 24), model.predict(x, zp, zf, 24))
    assert not torch.allclose(model.predict(x, zp, zf2, 48), y)
    alone = _perturb(_tiny("mohets-nocov").eval())
    assert alone.exogenous is None
    y, y2 = alone.predict(x, zp, zf, 48), alone.predict(moved, zp, zf, 48)
    assert torch.allclose(y[..., :2], y2[..., :2]) and not torch.allclose(y[..., 2], y2[..., 2])
    with pytest.raises(ValueError, match="known covariates of the first 24"):
        model(x, zp, zf[:, :10], 48)


def test_patching_and_unpatching_round_trip():
    """The conv patch embedding cuts token i from steps [iP, (i+1)P) and the decoder's
    transposed conv writes token i back to the same steps: with identity kernels the pair is
    the identity on the series."""
    P = d = 4
    emb, dec = PatchEmbedding(P, d), UnPatchDecoder(P, d, n_channels=2)
    with torch.no_grad():
        emb.conv.weight.copy_(torch.eye(P).reshape(d, 1, P))  # feature j = step j of the patch
        kernel = torch.zeros(d, d, P)
        for j in range(P):
            kernel[j, j, j] = 1.0  # feature j of a token -> step j of its patch
        dec.net[0].weight.copy_(kernel)
    x = torch.randn(3, 2, 20)
    tokens = emb.conv(x.reshape(6, 1, 20))  # [6, d, N] before the norm: the raw patches
    assert torch.equal(tokens.transpose(1, 2), x.reshape(6, 5, P))
    series = dec.net[0](tokens).sum(1)  # [6, 20]
    assert torch.allclose(series.reshape(3, 2, 20), x)
    with pytest.raises(ValueError, match="multiple of patch_len"):
        emb(torch.randn(1, 1, 21))
    assert tuple(emb(x).shape) == (6, 5, d)
    assert tuple(dec(torch.randn(6, 5, d)).shape) == (3, 2, 20)


def test_rotary_attention_is_equivariant_to_a_shift_of_positions():
    torch.manual_seed(0)
    q, k = torch.randn(2, 6, 4, 8), torch.randn(2, 6, 4, 8)
    pos = torch.arange(6.0)
    scores = torch.einsum("bqhd,bkhd->bhqk", apply_rotary(q, pos), apply_rotary(k, pos))
    shifted = torch.einsum("bqhd,bkhd->bhqk", apply_rotary(q, pos + 37), apply_rotary(k, pos + 37))
    assert torch.allclose(scores, shifted, atol=1e-4)
    # rotation preserves norms and really depends on the relative position
    assert torch.allclose(apply_rotary(q, pos).norm(dim=-1), q.norm(dim=-1), atol=1e-5)
    moved = torch.einsum("bqhd,bkhd->bhqk", apply_rotary(q, pos + 1), apply_rotary(k, pos))
    assert not torch.allclose(scores, moved, atol=1e-3)
    attn = GroupedQueryAttention(32, n_heads=4, n_kv_heads=2).eval()
    x = torch.randn(2, 6, 32)
    assert torch.allclose(attn(x, x, pos, pos), attn(x, x, pos + 100, pos + 100), atol=1e-5)
    assert attn.k_proj.out_features == 16  # two key/value heads for four query heads
    with pytest.raises(ValueError, match="divisible"):
        GroupedQueryAttention(32, n_heads=4, n_kv_heads=3)


def test_rollout_for_one_step_equals_one_decoder_pass_and_longer_horizons_extend_it():
    torch.manual_seed(0)
    model = _perturb(_tiny("mohets").eval())
    x, zp, zf = _inputs(B=2, horizon=720)
    one = model.reconstruct(x, zp[..., -CK:]).output
    assert one.shape == (2, L, C)
    assert torch.equal(model.predict(x, zp, zf, 24), one[:, -24:])
    long = model.predict(x, zp, zf, 720)
    assert torch.allclose(model.predict(x, zp, zf, 96), long[:, :96])
    assert torch.allclose(model.predict(x, zp, zf, 100), long[:, :100])
    # the second pass sees the first pass's forecast appended and its calendar marks slid in
    window = torch.cat([x[:, 24:], one[:, -24:]], 1)
    marks = torch.cat([zp[:, 24:, -CK:], zf[:, :24]], 1)
    assert torch.allclose(model.reconstruct(window, marks).output[:, -24:], long[:, 24:48])


def test_mohets_sizes_are_the_authors_and_no_weight_depends_on_the_horizon():
    tiny, small = (
        create_model(n, n_channels=7, lookback=336, horizon=96, n_covariates=4, n_known=4)
        for n in ("mohets", "mohets-small")
    )
    assert (tiny.patch_len, tiny.n_patches, len(tiny.blocks)) == (8, 42, 4)
    assert (small.patch_len, small.n_patches, small.output_step) == (16, 21, 24)
    c = tiny.get_config()
    assert (c["d_model"], c["n_heads"], c["n_kv_heads"], c["d_ff"]) == (64, 4, 2, 128)
    c = small.get_config()
    assert (c["d_model"], c["n_heads"], c["n_kv_heads"], c["d_ff"]) == (128, 4, 2, 256)
    other = create_model("mohets", n_channels=7, lookback=336, horizon=720, n_covariates=4,
                         n_known=4)  # fmt: skip
    assert _params(tiny) == _params(other) and tiny.any_horizon
    rates = [b.drop_path.p for b in tiny.blocks]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.3) and rates == sorted(rates)
    with pytest.raises(ValueError, match="multiple of patch_len"):
        create_model("mohets", n_channels=7, lookback=100, horizon=24)


def test_mohe_layer_shared_gated_conv_expert_and_eight_fourier_experts_top2():
    torch.manual_seed(0)
    layer = build_mohe_layer(d_model=16, d_ff=32)
    assert isinstance(layer, MoELayer) and isinstance(layer.experts, ExpertList)
    assert layer.experts.num_experts == 8 and layer.router.k == 2
    assert all(isinstance(e, FANFeedForward) for e in layer.experts.experts)
    assert isinstance(layer.shared_experts, GatedSharedExpert)
    x = torch.randn(2, 6, 16)
    y, out = layer(x)
    gates = out.plan.to_dense()
    assert torch.allclose(gates.sum(1), torch.ones(12))  # top-2, renormalised
    assert ((gates > 0).sum(1) == 2).all()
    assert out.aux_weights == {"load_balance": 0.02, "z_loss": 0.0}
    assert float(out.aux_loss) == pytest.approx(0.02 * float(out.aux["load_balance"]))
    # the shared expert is scaled per token by a sigmoid gate and mixes neighbouring patches
    shared = layer.shared_experts
    g = torch.sigmoid(shared.gate(x))
    assert torch.allclose(shared(x), shared.expert(x) * g)
    x2 = x.clone()
    x2[0, 0] += 1.0
    assert not torch.allclose(shared(x)[0, 1], shared(x2)[0, 1])
    assert torch.allclose(shared(x)[0, 4], shared(x2)[0, 4])
    # a FAN layer's periodic quarter: cos and sin of the same projection
    fan = layer.experts.experts[0].up
    h = fan(x[0])
    p = fan.periodic(x[0])
    assert torch.allclose(h[:, :8], torch.cos(p)) and torch.allclose(h[:, 8:16], torch.sin(p))
    (y.sum() + out.aux_loss).backward()
    assert layer.router.weight.grad.abs().sum() > 0


def test_mohets_returns_every_router_output_in_call_order():
    torch.manual_seed(0)
    model = _tiny("mohets").train()
    with RoutingRecorder(model) as rec:
        out, _ = model.training_pair(
            {"x": _inputs(B=2)[0], "y": torch.randn(2, 24, C), "z_past": _inputs(B=2)[1]}
        )
    assert len(rec.records) == 2  # one MoHE layer per block
    assert [r.plan.num_tokens for r in out.routing] == [2 * C * model.n_patches] * 2
    assert out.routing[0] is rec.records[0].output
    assert torch.allclose(out.aux_loss, sum(r.aux_loss for r in out.routing))


def test_patchtst_is_the_authors_etth1_configuration():
    m = create_model("patchtst", n_channels=7, lookback=336, horizon=96)
    assert m.n_patches == 42 and len(m.layers) == 3 and m.revin.affine is False
    assert isinstance(m.layers[0].norm_attn, torch.nn.BatchNorm1d)
    assert m.head[1].in_features == 42 * 16 and m.layers[0].ff[0].out_features == 128
    big = create_model("patchtst", n_channels=7, lookback=336, horizon=720)
    assert _params(big) - _params(m) == 42 * 16 * (720 - 96) + (720 - 96)
    # residual attention: each layer's scores reach the next layer's softmax
    x = torch.randn(5, 42, 16)
    out, scores = m.layers[0].attn(x, None)
    out2, _ = m.layers[0].attn(x, scores)
    assert not torch.allclose(out, out2)


def test_nlinear_subtracts_and_restores_the_last_value():
    torch.manual_seed(0)
    m = NLinear(n_channels=2, lookback=8, horizon=4)
    x = torch.randn(3, 8, 2)
    assert torch.allclose(m(x + 5.0), m(x) + 5.0, atol=1e-5)


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
