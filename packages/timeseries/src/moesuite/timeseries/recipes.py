"""Each trainable model's training recipe, as its authors' code trains it, in :data:`RECIPES`.

A recipe is the optimiser, schedule, batch size, epochs, early stopping and loss a model is
trained with unless the user overrides them; the benchmark and ``compare`` use them as they are,
so every model is trained the way its own authors train it:

- MoHETS (evortigosa/mohe_forecast, the example notebook): AdamW, betas (0.9, 0.95), weight
  decay 1e-4, peak learning rate 3.2e-3 after a linear warm-up over the first 10 % of the
  steps, cosine decay per step to 1.2e-4, batch 128, 10 epochs, early-stopping patience 5,
  Huber loss (delta 2) on the shifted window. Gradient clipping at 1.0 is ours (the authors'
  line is commented out). A batch of 128 is trained as 8 passes of 16 windows whose
  gradients are accumulated (the activations of a whole batch do not fit a small machine;
  ``docs/experiments.md`` has the measurement).
- PatchTST/42 (yuqinie98/PatchTST, ``scripts/PatchTST/etth1.sh``): Adam 1e-4 (``lradj``
  type3: constant for 3 epochs, then x0.9 per epoch), batch 128, up to 100 epochs keeping the
  best validation epoch, MSE. The script's patience is 100 (never stops); ours is 10.
- DLinear and NLinear (cure-lab/LTSF-Linear, ``scripts/EXP-LongForecasting/Linear/etth1.sh``):
  Adam 5e-3 halved every epoch from the second on (``lradj`` type1), batch 32, 10 epochs,
  patience 3, MSE.

The baselines drop the last incomplete training batch, as their data loaders do; the MoHETS
loader keeps it. Evaluation always scores every window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moesuite.core.registry import Registry

__all__ = ["RECIPES", "Recipe", "SCHEDULES", "lr_factor", "recipe_for"]

#: learning-rate schedules: per epoch (``constant``, ``type1``, ``type3``) or per step
SCHEDULES = ("constant", "type1", "type3", "warmup-cosine")


@dataclass(frozen=True)
class Recipe:
    """How a model is trained (see the module docstring for each model's).

    Attributes:
        batch_size: training windows per step.
        epochs: maximum epochs.
        patience: early-stopping patience in epochs on the validation MSE (``None``: off).
        lr: peak learning rate.
        weight_decay: AdamW weight decay (0: Adam).
        betas: Adam betas.
        schedule: one of :data:`SCHEDULES`.
        warmup: fraction of the steps with a linear warm-up (``warmup-cosine``).
        min_lr: floor of the cosine decay.
        loss: ``mse``, ``mae`` or ``huber``.
        huber_delta: the Huber loss's delta.
        grad_clip: gradient-norm clipping (``None``: off).
        drop_last: drop the last incomplete training batch.
        micro_batch: at most this many windows per forward/backward pass; a batch is trained
            as :meth:`passes` equal passes whose gradients add up to one optimiser step
            (``None``: the whole batch at once). The update is the batch's (each pass's
            loss is weighted by its share of the batch), the memory a pass's.
    """

    batch_size: int
    epochs: int
    patience: int | None
    lr: float
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    schedule: str = "constant"
    warmup: float = 0.0
    min_lr: float = 0.0
    loss: str = "mse"
    huber_delta: float = 1.0
    grad_clip: float | None = None
    drop_last: bool = False
    micro_batch: int | None = None

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}.")
        if self.micro_batch is not None and self.micro_batch < 1:
            raise ValueError(f"micro_batch must be >= 1, got {self.micro_batch}.")

    def passes(self) -> int:
        """Forward/backward passes per optimiser step.

        The fewest that divide the batch into equal parts of at most ``micro_batch`` windows.

        Examples:
            >>> Recipe(batch_size=128, epochs=1, patience=None, lr=1.0, micro_batch=32).passes()
            4
            >>> Recipe(batch_size=100, epochs=1, patience=None, lr=1.0, micro_batch=32).passes()
            4
            >>> Recipe(batch_size=16, epochs=1, patience=None, lr=1.0, micro_batch=32).passes()
            1
        """
        if self.micro_batch is None or self.batch_size <= self.micro_batch:
            return 1
        k = math.ceil(self.batch_size / self.micro_batch)
        while self.batch_size % k:
            k += 1
        return k


def lr_factor(
    recipe: Recipe, step: int, epoch: int, total_steps: int, lr: float | None = None
) -> float:
    """The learning rate of ``step`` (0-based, in ``epoch``) as a factor of the peak rate.

    Examples:
        >>> r = Recipe(batch_size=32, epochs=10, patience=3, lr=1.0, schedule="type1")
        >>> [lr_factor(r, 0, e, 100) for e in range(4)]
        [1.0, 1.0, 0.5, 0.25]
        >>> r = Recipe(batch_size=8, epochs=1, patience=None, lr=1.0, schedule="warmup-cosine",
        ...            warmup=0.1, min_lr=0.0)
        >>> [round(lr_factor(r, s, 0, 100), 3) for s in (0, 9, 10, 55, 100)]
        [0.1, 1.0, 1.0, 0.5, 0.0]
    """
    peak = lr if lr is not None else recipe.lr
    if recipe.schedule == "type1":  # LTSF-Linear: lr * 0.5 ** (epoch - 1), set after each epoch
        return 0.5 ** max(epoch - 1, 0)
    if recipe.schedule == "type3":  # PatchTST: lr for 3 epochs, then x0.9 per epoch
        return 1.0 if epoch < 3 else 0.9 ** (epoch - 3)
    if recipe.schedule == "warmup-cosine":  # mohe_forecast's CosineLRDecay, per step
        warm = int(recipe.warmup * total_steps)
        floor = recipe.min_lr / peak
        if step < warm:
            return (step + 1) / warm
        if step >= total_steps:
            return floor
        ratio = (step - warm) / max(total_steps - warm, 1)
        return floor + 0.5 * (1 + math.cos(math.pi * ratio)) * (1 - floor)
    return 1.0


#: a recipe per trainable model name
RECIPES: Registry[Recipe] = Registry("recipe")

MOHETS_RECIPE = Recipe(
    batch_size=128,
    epochs=10,
    patience=5,
    lr=3.2e-3,
    weight_decay=1e-4,
    betas=(0.9, 0.95),
    schedule="warmup-cosine",
    warmup=0.1,
    min_lr=1.2e-4,
    loss="huber",
    huber_delta=2.0,
    grad_clip=1.0,
    micro_batch=16,
)
PATCHTST_RECIPE = Recipe(
    batch_size=128, epochs=100, patience=10, lr=1e-4, schedule="type3", drop_last=True
)
LINEAR_RECIPE = Recipe(
    batch_size=32, epochs=10, patience=3, lr=5e-3, schedule="type1", drop_last=True
)

for _name in ("mohets", "mohets-small", "mohets-nocov"):
    RECIPES.register(_name, MOHETS_RECIPE, help="mohe_forecast's notebook recipe")
RECIPES.register("patchtst", PATCHTST_RECIPE, help="PatchTST/42 ETTh1 script")
for _name in ("dlinear", "nlinear"):
    RECIPES.register(_name, LINEAR_RECIPE, help="LTSF-Linear ETTh1 script")

#: what a model without its own recipe is trained with (a model added later)
DEFAULT_RECIPE = Recipe(batch_size=64, epochs=10, patience=3, lr=1e-3, grad_clip=1.0)


def recipe_for(model: str) -> Recipe:
    """The recipe of ``model`` (:data:`DEFAULT_RECIPE` for a model without one)."""
    return RECIPES.get(model).obj if model in RECIPES.list() else DEFAULT_RECIPE
