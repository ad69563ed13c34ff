"""The two training objectives, on diffusers' schedulers, and classifier-free guided sampling.

- :class:`RectifiedFlow`: ``x_t = (1 - s) x_0 + s eps`` with ``s = sigmoid(n)``, ``n ~ N(0, 1)``
  (logit-normal, SD3), the network predicts the velocity ``eps - x_0`` at timestep ``1000 s``;
  sampling with diffusers' ``FlowMatchEulerDiscreteScheduler`` (Euler, shift 1) over the sigmas
  ``linspace(1, 0, steps + 1)[:steps]``, as the ProMoE code does.
- :class:`DDPM`: diffusers' ``DDPMScheduler`` (1000 steps, linear betas) adds the noise at a
  uniform integer timestep and the network predicts ``eps``; sampling with diffusers'
  ``DDIMScheduler`` built from the same configuration (deterministic, eta 0, "trailing"
  timestep spacing so the first step starts from t = 999).

Classifier-free guidance (:func:`sample`): two passes, ``uncond + s * (cond - uncond)``, the
unconditional one with the null label; at scale 1 only the conditional pass is run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["Objective", "RectifiedFlow", "DDPM", "make_objective", "sample", "OBJECTIVES"]

#: the objectives ``--objective`` accepts
OBJECTIVES = ("rf", "ddpm")

NUM_TRAIN_TIMESTEPS = 1000


class Objective:
    """A diffusion objective: how to corrupt images for training and how to sample."""

    name: str = ""

    def sample_time(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n]`` training times in ``(0, 1)`` (the objective maps them to its timesteps)."""
        raise NotImplementedError

    def corrupt(
        self, x0: torch.Tensor, noise: torch.Tensor, time: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(x_t, network timestep [N] in [0, 1000], regression target)``."""
        raise NotImplementedError

    def scheduler(self, steps: int):
        """A fresh diffusers scheduler set to ``steps`` sampling steps."""
        raise NotImplementedError


class RectifiedFlow(Objective):
    """Rectified flow with logit-normal times and a velocity target ``eps - x_0``.

    Examples:
        >>> import torch
        >>> rf = RectifiedFlow()
        >>> x0, eps = torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)
        >>> xt, t, target = rf.corrupt(x0, eps, torch.tensor([0.25, 0.5]))
        >>> float(xt[0].mean()), t.tolist(), float(target.mean())
        (0.25, [250.0, 500.0], 1.0)
        >>> rf.scheduler(4).timesteps.tolist()
        [1000.0, 750.0, 500.0, 250.0]
    """

    name = "rf"

    def __init__(self, logit_mean: float = 0.0, logit_std: float = 1.0):
        self.logit_mean = logit_mean
        self.logit_std = logit_std

    def sample_time(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, generator=generator) * self.logit_std + self.logit_mean
        return torch.sigmoid(z)

    def corrupt(self, x0, noise, time):
        s = time.to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
        return (1 - s) * x0 + s * noise, time.float() * NUM_TRAIN_TIMESTEPS, noise - x0

    def scheduler(self, steps: int):
        from diffusers import FlowMatchEulerDiscreteScheduler

        sched = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=1.0)
        sched.set_timesteps(sigmas=np.linspace(1.0, 0.0, steps + 1)[:steps])
        return sched


class DDPM(Objective):
    """DDPM with epsilon prediction (training noise from ``DDPMScheduler``), DDIM sampling.

    Examples:
        >>> import torch
        >>> ddpm = DDPM()
        >>> x0, eps = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
        >>> xt, t, target = ddpm.corrupt(x0, eps, torch.tensor([0.9999]))
        >>> t.tolist(), bool(xt.mean() > 0.99), float(target.mean())
        ([999.0], True, 1.0)
        >>> ddpm.scheduler(4).timesteps.tolist()
        [999, 749, 499, 249]
    """

    name = "ddpm"

    def __init__(self, beta_schedule: str = "linear"):
        from diffusers import DDPMScheduler

        self.beta_schedule = beta_schedule
        self.train_scheduler = DDPMScheduler(
            num_train_timesteps=NUM_TRAIN_TIMESTEPS,
            beta_schedule=beta_schedule,
            prediction_type="epsilon",
        )

    def sample_time(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.rand(n, generator=generator)

    def timesteps(self, time: torch.Tensor) -> torch.Tensor:
        """Integer timesteps ``floor(1000 * time)`` clamped to ``[0, 999]``."""
        return (time * NUM_TRAIN_TIMESTEPS).long().clamp(0, NUM_TRAIN_TIMESTEPS - 1)

    def corrupt(self, x0, noise, time):
        t = self.timesteps(time).to(x0.device)
        return self.train_scheduler.add_noise(x0, noise, t), t.float(), noise

    def scheduler(self, steps: int):
        from diffusers import DDIMScheduler

        sched = DDIMScheduler.from_config(self.train_scheduler.config, timestep_spacing="trailing")
        sched.set_timesteps(steps)
        return sched


def make_objective(name: str) -> Objective:
    """``"rf"`` or ``"ddpm"``; a ``ValueError`` naming the choices otherwise."""
    if name == "rf":
        return RectifiedFlow()
    if name == "ddpm":
        return DDPM()
    raise ValueError(f"--objective: unknown objective {name!r}; expected one of {OBJECTIVES}.")


def guided(
    model: nn.Module, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor, cfg: float
) -> torch.Tensor:
    """The network's guided prediction: ``uncond + cfg * (cond - uncond)`` (cond only at 1)."""
    cond = model(x, t, labels).output
    if cfg == 1.0:
        return cond
    null = torch.full_like(labels, model.null_label)
    uncond = model(x, t, null).output
    return uncond + cfg * (cond - uncond)


@torch.no_grad()
def sample(
    model: nn.Module,
    objective: Objective,
    labels: torch.Tensor,
    cfg: float = 1.5,
    steps: int = 50,
    generator: torch.Generator | None = None,
    batch_size: int = 250,
    progress: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """Generate one image per label; returns ``[N, C, H, W]`` in ``[0, 1]``.

    Args:
        model: a :class:`~moesuite.vision.promoe.model.DiT` (put in eval mode here).
        objective: :class:`RectifiedFlow` or :class:`DDPM`.
        labels: ``[N]`` class labels.
        cfg: guidance scale (``>= 0``; 1 is plain conditional sampling).
        steps: sampling steps (``>= 1``).
        generator: source of the initial noise.
        batch_size: images generated together.
        progress: called with the number of images finished after each batch.
    """
    if not cfg >= 0:
        raise ValueError(f"--cfg must be >= 0, got {cfg}.")
    if steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}.")
    was_training = model.training
    model.eval()
    C, (H, W) = model.in_channels, model.image_size
    device = next(model.parameters()).device
    out = []
    for chunk in labels.split(batch_size):
        x = torch.randn(chunk.shape[0], C, H, W, generator=generator).to(device)
        y = chunk.to(device)
        sched = objective.scheduler(steps)
        for t in sched.timesteps:
            tt = torch.full((x.shape[0],), float(t), device=device)
            x = sched.step(guided(model, x, tt, y, cfg), t, x, return_dict=False)[0]
        out.append(((x.clamp(-1, 1) + 1) / 2).cpu())
        if progress is not None:
            progress(sum(o.shape[0] for o in out))
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, C, H, W)
