"""L-infinity attacks in plain torch: FGSM, PGD, TRADES-KL and a router-only attack.

Every attack differentiates through the whole model, routers included: the routers' hard
top-1 gates pass the gradient of their softmax scores (straight-through), so an attack can move
an image across a routing boundary. Perturbations stay inside the epsilon ball around ``x`` and
inside the valid pixel range ``[0, 1]`` (projection after every step). Models return a
:class:`~moesuite.core.output.MoEOutput` (``.output`` logits, ``.routing`` router outputs) or
plain logits. Attacks leave the model's train/eval mode as they find it; evaluation and the
training steps put the model in eval mode while crafting (as the authors do).

PGD keeps, per image, the highest-loss iterate among those that fool the model (else the
highest-loss iterate) over all steps and restarts, with a fixed step size (default
``2.5 * eps / 10``, Madry et al.'s size for 10 steps) and seeded random starts; so PGD-50 runs
PGD-10's iterates first and is never weaker than PGD-10 on the same images and seed.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> _ = torch.manual_seed(0)
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    >>> x, y = torch.rand(5, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1])
    >>> x_adv = pgd(model, x, y, eps=0.1, steps=5)
    >>> bool((x_adv - x).abs().max() <= 0.1 + 1e-6), bool(x_adv.min() >= 0)
    (True, True)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from moesuite.core.output import MoEOutput
from moesuite.core.routers import RouterOutput

__all__ = [
    "logits_of",
    "routing_of",
    "project",
    "fgsm",
    "pgd",
    "trades_kl",
    "router_attack",
    "kl_sum",
    "routing_kl",
    "check_attack_args",
]


def logits_of(out: MoEOutput | torch.Tensor) -> torch.Tensor:
    """The logits of a model's output (a ``MoEOutput`` or a tensor)."""
    return out.output if isinstance(out, MoEOutput) else out


def routing_of(out: MoEOutput | torch.Tensor) -> list[RouterOutput]:
    """The router outputs of a model's output (none for a plain tensor)."""
    return list(out.routing) if isinstance(out, MoEOutput) else []


def check_attack_args(eps: float, steps: int = 1, restarts: int = 1) -> None:
    """Raise one clear ``ValueError`` for a negative radius, < 1 step or < 1 restart."""
    if not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"eps must be >= 0 (an L-infinity radius in [0, 1] pixels), got {eps}.")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1, got {steps}.")
    if not isinstance(restarts, int) or restarts < 1:
        raise ValueError(f"restarts must be an integer >= 1, got {restarts}.")


def project(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Clip ``x_adv`` into the ``eps`` ball around ``x`` and then into ``[0, 1]``."""
    return torch.clamp(torch.minimum(torch.maximum(x_adv, x - eps), x + eps), 0.0, 1.0)


def _random_start(x: torch.Tensor, eps: float, gen: torch.Generator) -> torch.Tensor:
    """A uniform point of the eps ball around ``x``, in the pixel range."""
    noise = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return project(x + (2 * noise - 1) * eps, x, eps)


def _input_grad(loss: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.grad(loss, [x])[0]


def _ce_per_image(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits_of(model(x)), y, reduction="none")


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method: one step of size ``eps`` up the cross-entropy's sign gradient."""
    check_attack_args(eps)
    x = x.detach()
    with torch.enable_grad():
        xr = x.clone().requires_grad_(True)
        grad = _input_grad(_ce_per_image(model, xr, y).sum(), xr)
    return project(x + eps * grad.sign(), x, eps).detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    restarts: int = 1,
    step_size: float | None = None,
    random_start: bool = True,
    seed: int = 0,
) -> torch.Tensor:
    """Projected gradient descent (L-infinity) on the cross-entropy, with random restarts.

    Args:
        model: the attacked model (routers included).
        x: clean images ``[B, C, H, W]`` in ``[0, 1]``.
        y: labels ``[B]``.
        eps: radius.
        steps: gradient steps per restart.
        restarts: random starts; per image the best result over all of them is kept.
        step_size: sign-step size (default ``2.5 * eps / 10``, independent of ``steps``).
        random_start: start each restart uniformly inside the ball (else at ``x``).
        seed: seeds the random starts (same seed, same starts).

    Returns:
        Adversarial images: per image the highest-loss iterate among those that fool the
        model, else the highest-loss iterate.
    """
    check_attack_args(eps, steps, restarts)
    alpha = 2.5 * eps / 10 if step_size is None else step_size
    x = x.detach()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    best = x.clone()
    best_loss = torch.full((x.shape[0],), -float("inf"), device=x.device)
    fooled = torch.zeros(x.shape[0], dtype=torch.bool, device=x.device)
    for _ in range(restarts):
        x_adv = _random_start(x, eps, gen) if random_start else x.clone()
        for _ in range(steps):
            with torch.enable_grad():
                xr = x_adv.clone().requires_grad_(True)
                out = logits_of(model(xr))
                loss = F.cross_entropy(out, y, reduction="none")
                grad = _input_grad(loss.sum(), xr)
            _keep(best, best_loss, fooled, x_adv, loss.detach(), out.argmax(1) != y)
            x_adv = project(x_adv + alpha * grad.sign(), x, eps)
        with torch.no_grad():
            out = logits_of(model(x_adv))
            loss = F.cross_entropy(out, y, reduction="none")
        _keep(best, best_loss, fooled, x_adv, loss, out.argmax(1) != y)
    return best


def _keep(
    best: torch.Tensor,
    best_loss: torch.Tensor,
    fooled: torch.Tensor,
    x_adv: torch.Tensor,
    loss: torch.Tensor,
    wrong: torch.Tensor,
) -> None:
    """Update in place: keep the best iterate by (fools the model, loss), lexicographically."""
    take = (wrong & ~fooled) | ((wrong == fooled) & (loss > best_loss))
    best[take] = x_adv[take]
    best_loss[take] = loss[take]
    fooled |= wrong


def kl_sum(adv_logits: torch.Tensor, clean_logits: torch.Tensor) -> torch.Tensor:
    """``sum KL(softmax(clean) || softmax(adv))`` over the batch (TRADES' inner objective)."""
    return F.kl_div(
        F.log_softmax(adv_logits.float(), 1), F.softmax(clean_logits.float(), 1), reduction="sum"
    )


def routing_kl(adv: list[RouterOutput], clean: list[RouterOutput]) -> torch.Tensor:
    """Sum over routers of ``KL(router(x) || router(x_adv))`` on their logits (0 for none)."""
    total = None
    for a, c in zip(adv, clean, strict=True):
        term = kl_sum(a.logits, c.logits.detach())
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def trades_kl(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    steps: int,
    step_size: float,
    router_kl: bool = False,
) -> torch.Tensor:
    """TRADES' inner maximisation: images in the ball that maximise ``KL(f(x) || f(x_adv))``.

    Starts at ``x + 0.001 N(0, 1)`` (Zhang et al. 2019). With ``router_kl`` the routers' KL
    between their clean and adversarial logits is added (the AdvMoE authors' code), so the
    examples also push the routing away from its clean decision.
    """
    check_attack_args(eps, steps)
    x = x.detach()
    with torch.no_grad():
        clean = model(x)
    clean_logits, clean_routing = logits_of(clean), routing_of(clean)
    x_adv = project(x + 0.001 * torch.randn_like(x), x, eps)
    for _ in range(steps):
        with torch.enable_grad():
            xr = x_adv.clone().requires_grad_(True)
            out = model(xr)
            loss = kl_sum(logits_of(out), clean_logits)
            if router_kl:
                loss = loss + routing_kl(routing_of(out), clean_routing)
            grad = _input_grad(loss, xr)
        x_adv = project(x_adv + step_size * grad.sign(), x, eps)
    return x_adv.detach()


def router_attack(
    model: nn.Module,
    x: torch.Tensor,
    eps: float,
    steps: int = 10,
    restarts: int = 1,
    seed: int = 0,
    step_size: float | None = None,
) -> torch.Tensor:
    """PGD on the routers only: push every router away from its clean choice.

    Maximises the summed cross-entropy of each router's logits against the expert it chose on
    the clean image; the classifier's loss plays no part. Per image, the iterate that flips the
    most routing decisions (ties: the higher loss) over all steps and restarts is kept. A model
    without routers gets its images back unchanged.
    """
    check_attack_args(eps, steps, restarts)
    alpha = 2.5 * eps / 10 if step_size is None else step_size
    x = x.detach()
    with torch.no_grad():
        clean = routing_of(model(x))
    if not clean:
        return x.clone()
    targets = [r.logits.argmax(-1) for r in clean]
    gen = torch.Generator(device=x.device).manual_seed(seed)
    best, best_score = x.clone(), torch.full((x.shape[0],), -float("inf"), device=x.device)

    def score(x_in: torch.Tensor, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.enable_grad() if grad else torch.no_grad():
            xr = x_in.clone().requires_grad_(grad)
            routing = routing_of(model(xr))
            pairs = list(zip(routing, targets, strict=True))
            loss = sum(F.cross_entropy(r.logits, t, reduction="none") for r, t in pairs)
            flips = sum((r.logits.argmax(-1) != t).float() for r, t in pairs)
            g = _input_grad(loss.sum(), xr) if grad else None
        # flips dominate; the loss (bounded well below 1e3 per router) breaks ties
        return (flips * 1e3 + loss.clamp(max=999.0)).detach(), g

    for _ in range(restarts):
        x_adv = _random_start(x, eps, gen)
        for _ in range(steps):
            s, g = score(x_adv, True)
            take = s > best_score
            best[take], best_score[take] = x_adv[take], s[take]
            x_adv = project(x_adv + alpha * g.sign(), x, eps)
        s, _ = score(x_adv, False)
        take = s > best_score
        best[take], best_score[take] = x_adv[take], s[take]
    return best
