"""ProMoE's networks: DiT pieces, the routing of each MoE variant, equal activated parameters,
aux losses reaching the loss for every registered model."""

import pytest
import torch

from moesuite.core import MoEOutput
from moesuite.core.routers import ConditionalRouter
from moesuite.core.testing import assert_aux_consumed
from moesuite.vision.nn.patches import patchify, unpatchify
from moesuite.vision.nn.positions import sincos_2d
from moesuite.vision.promoe.diffusion import RectifiedFlow
from moesuite.vision.promoe.registry import MODELS, backbone_for
from moesuite.vision.promoe.training import DiffusionStep

TINY = dict(image_size=8, patch_size=2, hidden_size=16, depth=2, num_heads=2, num_classes=10)


def _tiny(name, **over):
    torch.manual_seed(0)
    return MODELS.create(name, **{**TINY, **over})


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 8, 8, generator=g), torch.rand(n, generator=g) * 1000


def test_patches_and_positions():
    x = torch.randn(3, 2, 8, 12)
    tokens = patchify(x, 4)
    assert tokens.shape == (3, 6, 32)
    assert torch.equal(unpatchify(tokens, 4, 8, 12), x)
    with pytest.raises(ValueError, match="not divisible by the patch size 5"):
        patchify(x, 5)
    pe = sincos_2d(16, 3, 4)
    assert pe.shape == (12, 16) and torch.allclose(pe.norm(dim=1) ** 2, torch.full((12,), 8.0))
    assert len({tuple(r.tolist()) for r in pe}) == 12  # every position distinct


@pytest.mark.parametrize("name", MODELS.list())
def test_every_model_returns_moe_output_and_its_aux_losses_reach_the_loss(name):
    model = _tiny(name).train()
    x, t = _batch()
    y = torch.tensor([0, 1, 2, 10, 4, 5])  # one null label
    out = model(x, t, y)
    assert isinstance(out, MoEOutput) and out.output.shape == x.shape
    assert len(out.routing) == (0 if name == "dit" else 1)  # MoE in every other block
    step = DiffusionStep(RectifiedFlow())
    weighted = name in ("promoe", "promoe-no-cond", "promoe-softmax", "tc-dit")
    n = assert_aux_consumed(
        model, lambda: step(model, (x, y))["loss"], min_terms=1 if weighted else 0
    )
    assert (n > 0) == weighted


def test_adaln_zero_starts_at_zero_and_labels_are_checked():
    model = _tiny("promoe").eval()
    x, t = _batch()
    assert float(model(x, t, torch.arange(6)).output.abs().max()) == 0
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\]"):
        model(x, t, torch.tensor([0, 1, 2, 3, 4, 11]))
    with pytest.raises(ValueError, match=r"x must have shape \[N, 1, 8, 8\]"):
        model(torch.randn(2, 1, 6, 6), t[:2], torch.arange(2))
    with pytest.raises(ValueError, match="not divisible by the patch size 3"):
        _tiny("dit", patch_size=3)


def test_promoe_sends_null_samples_to_the_unconditional_expert_and_drops_labels():
    model = _tiny("promoe", num_experts=3).eval()
    x, t = _batch()
    y = torch.tensor([10, 1, 10, 3, 4, 5])
    r = model(x, t, y).routing[0]
    dense = r.plan.to_dense()
    L = model.num_tokens
    null_tokens = (y == 10).repeat_interleave(L)
    assert torch.equal(dense[null_tokens], torch.eye(4)[3].expand(int(null_tokens.sum()), 4))
    assert float(dense[~null_tokens, 3].abs().sum()) == 0
    assert torch.equal(r.plan.experts_per_token(), torch.ones(6 * L, dtype=torch.long))
    torch.manual_seed(0)
    dropped = model.drop_labels(torch.zeros(4000, dtype=torch.long))
    assert 0.08 < float((dropped == 10).float().mean()) < 0.12  # class dropout 0.1


def test_ablations_are_constructor_options():
    assert not isinstance(_tiny("promoe-no-cond").moe_layers()[0].router, ConditionalRouter)
    no_cl = _tiny("promoe-no-cl")
    x, t = _batch()
    assert float(no_cl(x, t, torch.arange(6)).aux_loss) == 0
    soft = _tiny("promoe-softmax").eval()
    gates = soft(x, t, torch.arange(6)).routing[0].plan.weight
    assert bool((gates > 0).all() and (gates < 1).all())
    ident = _tiny("promoe").eval()
    proto = ident.moe_layers()[0].prototypes
    assert proto.gate == "identity" and proto.contrastive == "centroid"
    assert proto.contrastive_temperature == 0.07 and proto.lb_weight == 0.0
    assert abs(float(proto.weight.std()) - 0.02) < 0.01


@pytest.mark.parametrize("patch", [4, 7])
def test_equal_activated_parameters_at_the_mnist_sizes(patch):
    counts = {
        name: MODELS.create(name, **backbone_for((28, 28), 1, 10, patch)).parameter_counts()
        for name in ("dit", "tc-dit", "ec-dit", "promoe")
    }
    dense = counts["dit"]["activated"]
    for name, c in counts.items():
        assert abs(c["activated"] - dense) / dense < (
            0.02 if name != "ec-dit" or patch == 7 else 0.06
        )
    assert counts["promoe"]["total"] == pytest.approx(counts["tc-dit"]["total"], rel=0.01)


@pytest.mark.parametrize("name", ["ec-dit", "tc-dit", "promoe"])
def test_a_sample_never_changes_another_samples_prediction(name):
    model = _tiny(name).eval()
    x, t = _batch()
    y = torch.arange(6)
    before = model(x, t, y).output[1:]
    x2 = x.clone()
    x2[0] = torch.randn(1, 8, 8) * 3
    torch.testing.assert_close(model(x2, t, y).output[1:], before)
