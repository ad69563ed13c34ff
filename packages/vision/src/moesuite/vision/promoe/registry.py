"""The ProMoE system's models (the system, its baselines and its ablations), by name.

The backbone size follows the images: 8x8 (scikit-learn digits) gets patch 2, width 64, depth 4;
larger images (MNIST 28x28) patch 4 (any ``patch_size`` dividing the sides may be asked for),
width 64, depth 6; 4 heads, MLP ratio 4 for both.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from moesuite.core.registry import Registry
from moesuite.vision.promoe.model import DiT, ECDiT, ProMoE, TCDiT

__all__ = ["MODELS", "backbone_for", "build_model", "model_from_config"]

MODELS: Registry[nn.Module] = Registry("model")
MODELS.register("dit", DiT, help="dense DiT (adaLN-Zero), the baseline")
MODELS.register(
    "promoe",
    ProMoE,
    help="ProMoE: conditional + prototypical routing, contrastive loss, half-width experts",
)
MODELS.register("tc-dit", TCDiT, help="token-choice softmax top-1 MoE DiT, Switch balance loss")
MODELS.register("ec-dit", ECDiT, help="expert-choice MoE DiT (experts pick tokens per sample)")
MODELS.register(
    "promoe-no-cl",
    ProMoE,
    help="ProMoE ablation: without the routing contrastive loss",
    contrastive_weight=0.0,
)
MODELS.register(
    "promoe-no-cond",
    ProMoE,
    help="ProMoE ablation: without conditional routing (no unconditional expert)",
    conditional=False,
)
MODELS.register(
    "promoe-softmax",
    ProMoE,
    help="ProMoE ablation: softmax gates instead of raw cosine",
    gate="softmax",
)


def backbone_for(
    image_size: tuple[int, int], channels: int, num_classes: int, patch_size: int | None = None
) -> dict[str, Any]:
    """DiT arguments for images of ``image_size`` with ``channels`` and ``num_classes``."""
    small = max(image_size) <= 16
    return {
        "image_size": tuple(image_size),
        "in_channels": channels,
        "num_classes": num_classes,
        "patch_size": patch_size or (2 if small else 4),
        "hidden_size": 64,
        "depth": 4 if small else 6,
        "num_heads": 4,
    }


def build_model(
    name: str, data: Any, experts: int | None = None, patch_size: int | None = None
) -> nn.Module:
    """Model ``name`` sized for ``data`` (an :class:`~moesuite.vision.promoe.data.ImageData`)."""
    entry = MODELS.get(name)
    backbone = backbone_for(data.image_size, data.channels, data.num_classes, patch_size)
    moe = {"num_experts": experts} if experts is not None and entry.obj is not DiT else {}
    if experts is not None and entry.obj is DiT:
        raise ValueError(f"--experts does not apply to the dense model {name!r}.")
    return MODELS.create(name, **backbone, **moe)


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild a run's model (untrained) from its ``config.json``."""
    cls = MODELS.get(config["model"]).obj
    kwargs = dict(config["model_config"])
    kwargs["image_size"] = tuple(kwargs["image_size"])
    return cls(**kwargs)
