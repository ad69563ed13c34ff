"""MoFME restorer: MoE and FiLM blocks against per-token references, identity modulation, shapes."""

import numpy as np
import pytest
import torch

from moesuite.core.reference import reference_expert_mlp
from moesuite.core.testing import assert_aux_consumed
from moesuite.vision.mofme.blocks import MoEFFN, MoFMEFFN, make_router
from moesuite.vision.mofme.evaluate import psnr, restore_image
from moesuite.vision.mofme.experts import FiLMExperts
from moesuite.vision.mofme.model import MODELS, Restorer, create_model
from moesuite.vision.mofme.training import restore_step

TINY = {"dim": 16, "depth": 1, "heads": 2, "channels": 4, "experts": 4}


def test_moe_block_matches_a_per_token_dense_reference():
    torch.manual_seed(0)
    ffn = MoEFFN(8, 4, 2.0, make_router(8, 4, 2, uar=False)).eval()
    x = torch.randn(2, 5, 8)
    y, routing = ffn(x)
    ref = reference_expert_mlp(x.reshape(10, 8), routing.plan, ffn.moe.experts.weights())
    torch.testing.assert_close(y.reshape(10, 8).double(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("modulation", ["vector", "linear"])
def test_mofme_block_matches_a_per_token_reference(modulation):
    torch.manual_seed(0)
    ffn = MoFMEFFN(8, 4, modulation, 2.0, make_router(8, 4, 2, uar=False)).eval()
    with torch.no_grad():  # non-trivial modulations
        for p in ffn.moe.experts.film.parameters():
            p.normal_(0, 0.3)
    x = torch.randn(10, 8)
    y, routing = ffn(x)
    film, plan = ffn.moe.experts.film, routing.plan
    h = ffn.moe.experts.shared(x).double()
    mix = torch.zeros(10, 8, dtype=torch.float64)
    assignments = zip(
        plan.token_idx.tolist(), plan.expert_idx.tolist(), plan.weight.tolist(), strict=True
    )
    for t, e, w in assignments:
        if modulation == "vector":
            gamma, beta = 1 + film.gamma[e].double(), film.beta[e].double()
        else:
            gb = h[t] @ film.weight[e].double() + film.bias[e].double()
            gamma, beta = 1 + gb[:8], gb[8:]
        mix[t] += w * (gamma * h[t] + beta)
    ref = ffn.adaptor.double()(mix)
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("modulation", ["vector", "linear"])
def test_identity_modulation_reduces_to_the_shared_block(modulation):
    torch.manual_seed(1)
    ffn = MoFMEFFN(8, 4, modulation, 2.0, make_router(8, 4, 2, uar=False)).eval()
    with torch.no_grad():
        for p in ffn.moe.experts.film.parameters():
            p.zero_()
    x = torch.randn(10, 8)
    y, _ = ffn(x)
    shared = ffn.adaptor(ffn.moe.experts.shared(x))
    torch.testing.assert_close(y, shared, rtol=0, atol=1e-6)


def test_film_experts_are_cheap_in_parameters():
    d, n = 32, 16
    vec, lin = FiLMExperts(n, d, "vector"), FiLMExperts(n, d, "linear")
    assert sum(p.numel() for p in vec.parameters()) == 2 * n * d
    assert sum(p.numel() for p in lin.parameters()) == n * (2 * d * d + 2 * d)
    with pytest.raises(ValueError, match="modulation"):
        FiLMExperts(n, d, "affine")


@pytest.mark.parametrize("name", ["mofme", "moe-restorer", "dense-restorer"])
def test_every_model_consumes_its_aux_losses_and_keeps_the_size(name):
    torch.manual_seed(0)
    model = create_model(name, **(TINY if name != "dense-restorer" else {"dim": 16, "depth": 1}))
    batch = (torch.rand(2, 3, 20, 28), torch.rand(2, 3, 20, 28))
    n = assert_aux_consumed(
        model,
        lambda: restore_step(model, batch)["loss"],
        min_terms=0 if name == "dense-restorer" else 2,
    )
    assert (n == 0) == (name == "dense-restorer")
    out = model.eval()(torch.rand(1, 3, 19, 23))
    assert out.output.shape == (1, 3, 19, 23)
    assert len(out.routing) == (0 if name == "dense-restorer" else 1)


def test_registry_and_config_round_trip():
    assert {"mofme", "moe-restorer", "dense-restorer"} <= set(MODELS.list())
    with pytest.raises(ValueError, match="unknown mofme model"):
        MODELS.create("mofme-xl")
    m = create_model("mofme", modulation="linear", **TINY)
    assert m.uar and m.block == "mofme" and Restorer(**m.config()).config() == m.config()
    with pytest.raises(ValueError, match="top_k"):
        Restorer(block="moe", experts=2, top_k=3)


def test_odd_sizes_blank_and_clean_images_restore_without_nan():
    torch.manual_seed(0)
    model = create_model("mofme", **TINY).eval()
    rng = np.random.default_rng(0)
    odd = rng.random((333, 517, 3)).astype(np.float32)
    out = restore_image(model, odd, tile=48, batch_size=64)
    assert out.shape == (333, 517, 3) and np.isfinite(out).all()
    for img in (np.zeros((40, 30, 3), np.float32), np.full((5, 7, 3), 0.5, np.float32)):
        out = restore_image(model, img, tile=16)
        assert out.shape == img.shape and np.isfinite(out).all()
        assert np.isfinite(psnr(out, img))
    assert psnr(odd, odd) == 100.0
    with pytest.raises(ValueError, match="smaller than the model's 4px patch"):
        restore_image(model, odd, tile=3)
