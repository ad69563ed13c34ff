"""The objectives come from diffusers' schedulers; an exact network makes each sampler exact;
classifier-free guidance combines two passes."""

import math

import pytest
import torch
from torch import nn

from moesuite.core import MoEOutput
from moesuite.vision.promoe.diffusion import DDPM, RectifiedFlow, make_objective, sample


class Oracle(nn.Module):
    """A "network" that knows the data point ``x0`` and returns the exact regression target."""

    def __init__(self, x0: torch.Tensor, kind: str, alphas: torch.Tensor | None = None):
        super().__init__()
        self.register_buffer("x0", x0)
        self.kind, self.alphas = kind, alphas
        self.in_channels, self.image_size, self.null_label = x0.shape[1], x0.shape[2:], 10
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, x, t, y):
        if self.kind == "rf":  # x = (1 - s) x0 + s eps, velocity eps - x0 = (x - x0) / s
            s = (t / 1000).view(-1, 1, 1, 1)
            out = (x - self.x0) / s
        else:  # x = sqrt(a) x0 + sqrt(1 - a) eps
            a = self.alphas[t.long()].view(-1, 1, 1, 1)
            out = (x - a.sqrt() * self.x0) / (1 - a).sqrt()
        return MoEOutput(out, [])


def test_schedulers_come_from_diffusers():
    from diffusers import DDIMScheduler, DDPMScheduler, FlowMatchEulerDiscreteScheduler

    assert isinstance(RectifiedFlow().scheduler(10), FlowMatchEulerDiscreteScheduler)
    ddpm = DDPM()
    assert isinstance(ddpm.train_scheduler, DDPMScheduler)
    assert ddpm.train_scheduler.config.prediction_type == "epsilon"
    assert isinstance(ddpm.scheduler(10), DDIMScheduler)
    with pytest.raises(ValueError, match="--objective: unknown objective 'edm'"):
        make_objective("edm")


def test_training_corruption_and_targets():
    x0, eps = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    xt, t, target = RectifiedFlow().corrupt(x0, eps, torch.full((4,), 0.3))
    torch.testing.assert_close(xt, 0.7 * x0 + 0.3 * eps)
    torch.testing.assert_close(target, eps - x0)
    assert t.tolist() == [300.0] * 4
    ddpm = DDPM()
    xt, t, target = ddpm.corrupt(x0, eps, torch.full((4,), 0.5))
    a = ddpm.train_scheduler.alphas_cumprod[500]
    torch.testing.assert_close(xt, a.sqrt() * x0 + (1 - a).sqrt() * eps)
    assert torch.equal(target, eps) and t.tolist() == [500.0] * 4
    u = RectifiedFlow().sample_time(20000, torch.Generator().manual_seed(0))
    logit = torch.log(u / (1 - u))
    assert abs(float(logit.mean())) < 0.03 and abs(float(logit.std()) - 1) < 0.03


@pytest.mark.parametrize("kind", ["rf", "ddpm"])
def test_an_exact_network_makes_the_sampler_exact(kind):
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 1, 6, 6, generator=g) * 1.6 - 0.8
    objective = make_objective(kind)
    alphas = objective.train_scheduler.alphas_cumprod if kind == "ddpm" else None
    images = sample(Oracle(x0, kind, alphas), objective, torch.arange(3), cfg=1.0, steps=8)
    torch.testing.assert_close(images, (x0 + 1) / 2, atol=1e-4, rtol=0)


def test_guidance_runs_two_passes_and_extrapolates():
    calls = []

    class Fixed(nn.Module):
        in_channels, image_size, null_label = 1, (2, 2), 10

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))

        def forward(self, x, t, y):
            calls.append(y.clone())
            return MoEOutput(torch.where(y == 10, 1.0, 3.0).view(-1, 1, 1, 1).expand_as(x), [])

    from moesuite.vision.promoe.diffusion import guided

    x, t = torch.zeros(2, 1, 2, 2), torch.full((2,), 500.0)
    out = guided(Fixed(), x, t, torch.tensor([1, 2]), cfg=1.5)
    assert torch.allclose(out, torch.full_like(x, 1 + 1.5 * (3 - 1)))
    assert [c.tolist() for c in calls] == [[1, 2], [10, 10]]
    calls.clear()
    guided(Fixed(), x, t, torch.tensor([1, 2]), cfg=1.0)
    assert len(calls) == 1  # scale 1: the conditional pass alone
    with pytest.raises(ValueError, match="--cfg must be >= 0"):
        sample(Fixed(), RectifiedFlow(), torch.tensor([1]), cfg=-0.5)
    with pytest.raises(ValueError, match="--steps must be >= 1"):
        sample(Fixed(), RectifiedFlow(), torch.tensor([1]), steps=0)
    assert math.isfinite(float(out.sum()))
