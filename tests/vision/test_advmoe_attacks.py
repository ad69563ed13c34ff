"""AdvMoE attacks: PGD at least as strong as FGSM, projections, PGD-50 never weaker than PGD-10."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from moesuite.core.training import torch_threads
from moesuite.vision.advmoe.attacks import fgsm, logits_of, pgd, router_attack, trades_kl
from moesuite.vision.advmoe.evaluate import attack_metrics
from moesuite.vision.advmoe.model import AdvResNet, expert_choices

EPS = 0.3


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one torch thread (a second one spin-waits on a busy machine)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 8, 8, generator=g)
    x[:4] = (x[:4] > 0.5).float()  # pixels on the range's edges
    return x, torch.randint(0, 10, (16,), generator=g)


def _net(seed: int, experts: int = 2) -> AdvResNet:
    torch.manual_seed(seed)
    return AdvResNet(width=4, ratio=0.5, experts=experts).eval()


def _loss(model, x, y) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(logits_of(model(x)), y))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pgd_loss_is_never_below_fgsm_loss_on_the_same_batch(batch, seed):
    x, y = batch
    model = _net(seed)
    clean, l_fgsm = _loss(model, x, y), _loss(model, fgsm(model, x, y, EPS), y)
    l_pgd = _loss(model, pgd(model, x, y, EPS, steps=10, restarts=2, seed=seed), y)
    assert l_fgsm > clean
    assert l_pgd >= l_fgsm


@pytest.mark.parametrize("eps", [0.0, 0.05, EPS])
def test_every_attack_stays_in_the_ball_and_the_pixel_range(batch, eps):
    x, y = batch
    model = _net(0)
    for x_adv in (
        fgsm(model, x, y, eps),
        pgd(model, x, y, eps, steps=3, restarts=2),
        trades_kl(model, x, eps, steps=3, step_size=0.75 * eps + 0.01, router_kl=True),
        router_attack(model, x, eps, steps=3),
    ):
        assert x_adv.shape == x.shape
        assert float((x_adv - x).abs().max()) <= eps + 1e-6
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0


def test_pgd50_robust_accuracy_is_never_above_pgd10(batch):
    x, y = batch
    model = _net(0)
    acc10 = attack_metrics(model, x, y, 0.05, steps=10, restarts=2)["acc"]
    acc50 = attack_metrics(model, x, y, 0.05, steps=50, restarts=2)["acc"]
    assert acc50 <= acc10


def _router_ce(model, x, targets) -> float:
    with torch.no_grad():
        return float(F.cross_entropy(model(x).routing[0].logits, targets))


@pytest.mark.parametrize("seed", [0, 1])
def test_the_router_attack_pushes_routers_off_their_clean_choice(batch, seed):
    x, y = batch
    model = _net(seed)
    with torch.no_grad():
        clean = model(x).routing[0].logits.argmax(-1)
    noise = (x + EPS * torch.randn_like(x).sign()).clamp(0, 1)
    x_adv = router_attack(model, x, EPS, steps=10, seed=seed)
    assert _router_ce(model, x_adv, clean) > max(
        _router_ce(model, noise, clean), _router_ce(model, x, clean)
    )
    with torch.no_grad():
        flips = expert_choices(model(x_adv).routing, len(x)) != clean
    metrics = attack_metrics(model, x, y, EPS, steps=10, target="router", seed=seed)
    assert metrics["flip_rate"] == pytest.approx(float(flips.float().mean()))
    assert 0 <= metrics["acc"] <= 1
    dense = _net(0, experts=1)
    assert torch.equal(router_attack(dense, x, EPS), x)
    assert attack_metrics(dense, x, y, EPS, 5, target="router")["flip_rate"] is None
    assert attack_metrics(dense, x, y, EPS, 5)["flip_rate"] is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"eps": -0.1}, "eps must be >= 0"), ({"steps": 0}, "steps"), ({"restarts": 0}, "restarts")],
)
def test_bad_attack_arguments_are_clear_errors(batch, kwargs, match):
    x, y = batch
    args = {"eps": EPS, "steps": 2, "restarts": 1, **kwargs}
    with pytest.raises(ValueError, match=match):
        pgd(_net(0), x, y, **args)
