"""The small classifier whose features replace Inception for FID, KID and precision/recall.

Nothing is downloaded here, so the feature network of the generative metrics is trained on the
training images of the data set itself: a four-convolution CNN (:class:`FeatureNet`) whose
penultimate layer (``num_features`` values, after ReLU, like Inception's pool features) is the
feature space, and whose classification head scores the class accuracy of generated samples.
:func:`feature_net_for` trains it once per data set and caches it in a directory keyed by a
fingerprint of the training images, so every model evaluated on that data shares it.

Images enter as ``float [N, C, H, W]`` in ``[0, 1]``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FeatureNet", "FeatureNetConfig", "train_feature_net", "feature_net_for"]


@dataclass(frozen=True, kw_only=True)
class FeatureNetConfig:
    """Architecture and training recipe of a :class:`FeatureNet`.

    Attributes:
        in_channels: image channels.
        num_classes: classes of the head.
        width: channels of the first convolutions (the second pair has twice as many).
        num_features: width of the feature layer (what FID/KID compare).
        epochs: training epochs (AdamW, one-cycle learning rate), at least enough for
            ``min_steps`` optimiser steps on small data sets.
        min_steps: the fewest optimiser steps.
        batch_size: training batch size.
        lr: peak learning rate.
        seed: initialisation and shuffling seed.
    """

    in_channels: int = 1
    num_classes: int = 10
    width: int = 16
    num_features: int = 128
    epochs: int = 6
    min_steps: int = 600
    batch_size: int = 128
    lr: float = 3e-3
    seed: int = 0


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class FeatureNet(nn.Module):
    """CNN classifier; ``forward`` returns its ``[N, num_features]`` features (torchmetrics' API).

    Two pairs of 3x3 convolutions (``width`` then ``2 * width`` channels, batch norm, ReLU), a
    2x2 max-pool between them for images of 16 pixels or more, an adaptive 2x2 average pool, a
    linear feature layer with ReLU, and a linear head over the classes.

    Args:
        in_channels: image channels.
        num_classes: classes.
        width: first convolution width.
        num_features: feature width; an ``int`` attribute, as torchmetrics' FID/KID require of a
            custom feature extractor.

    Examples:
        >>> import torch
        >>> net = FeatureNet(in_channels=1, num_classes=10).eval()
        >>> x = torch.rand(3, 1, 28, 28)
        >>> tuple(net(x).shape), tuple(net.logits(x).shape), net.num_features
        ((3, 128), (3, 10), 128)
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, width: int = 16, num_features: int = 128
    ):
        super().__init__()
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.width = width
        self.num_features = int(num_features)
        self.block1 = _block(in_channels, width)
        self.block2 = _block(width, 2 * width)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(8 * width, self.num_features)
        self.head = nn.Linear(self.num_features, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` images in ``[0, 1]`` -> ``[N, num_features]`` features."""
        if images.dim() != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"images must have shape [N, {self.in_channels}, H, W], got {tuple(images.shape)}."
            )
        x = self.block1((images.float() - 0.5) / 0.5)
        if x.shape[-1] >= 16:
            x = F.max_pool2d(x, 2)
        x = self.pool(self.block2(x)).flatten(1)
        return F.relu(self.fc(x))

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """``[N, num_classes]`` class logits."""
        return self.head(self(images))

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """``[N]`` predicted classes (eval mode, batched)."""
        was = self.training
        self.eval()
        preds = [self.logits(b).argmax(-1) for b in images.split(batch_size)]
        self.train(was)
        return torch.cat(preds) if preds else torch.zeros(0, dtype=torch.long)


def train_feature_net(
    images: torch.Tensor,
    labels: torch.Tensor,
    config: FeatureNetConfig | None = None,
) -> FeatureNet:
    """Train a :class:`FeatureNet` on ``images [N, C, H, W]`` in ``[0, 1]`` with ``labels [N]``.

    Cross-entropy, AdamW with a cosine schedule, light augmentation by random shifts of up to
    one pixel; returns the network in eval mode.
    """
    cfg = config or FeatureNetConfig(in_channels=images.shape[1], num_classes=int(labels.max()) + 1)
    g = torch.Generator().manual_seed(cfg.seed)
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        net = FeatureNet(cfg.in_channels, cfg.num_classes, cfg.width, cfg.num_features)
    n = images.shape[0]
    per_epoch = max(1, -(-n // cfg.batch_size))
    epochs = max(cfg.epochs, -(-cfg.min_steps // per_epoch))
    steps = epochs * per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for idx in order.split(cfg.batch_size):
            x = images[idx]
            dx, dy = torch.randint(-1, 2, (2,), generator=g).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(net.logits(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def _fingerprint(images: torch.Tensor, labels: torch.Tensor, config: FeatureNetConfig) -> str:
    h = hashlib.sha1()
    h.update(np.ascontiguousarray(images.numpy(), dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(labels.numpy(), dtype=np.int64).tobytes())
    h.update(json.dumps(asdict(config), sort_keys=True).encode())
    return h.hexdigest()[:12]


def feature_net_for(
    train_images: torch.Tensor,
    train_labels: torch.Tensor,
    held_images: torch.Tensor,
    held_labels: torch.Tensor,
    cache_dir: str | Path,
    name: str = "data",
    config: FeatureNetConfig | None = None,
) -> tuple[FeatureNet, dict]:
    """The feature network of a data set: loaded from ``cache_dir`` or trained once and saved.

    The cache entry ``cache_dir/<name>-<fingerprint>/`` (fingerprint of the training images,
    labels and recipe) holds ``model.pt``, ``config.json`` and ``metrics.json`` with the
    accuracy on the held-out images; it is written atomically.

    Returns:
        ``(net, info)`` with ``info = {"path", "held_out_accuracy", "num_features", ...}``.
    """
    from moesuite.core.training import read_json, run_directory

    cfg = config or FeatureNetConfig(
        in_channels=train_images.shape[1], num_classes=int(train_labels.max()) + 1
    )
    path = Path(cache_dir) / f"{name}-{_fingerprint(train_images, train_labels, cfg)}"
    if (path / "model.pt").is_file():
        net = FeatureNet(cfg.in_channels, cfg.num_classes, cfg.width, cfg.num_features)
        net.load_state_dict(torch.load(path / "model.pt", map_location="cpu", weights_only=True))
        info = read_json(path / "metrics.json")
        return net.eval(), {**info, "path": str(path)}
    net = train_feature_net(train_images, train_labels, cfg)
    acc = float((net.predict(held_images) == held_labels).float().mean())
    info = {
        "held_out_accuracy": acc,
        "num_train": int(train_images.shape[0]),
        "num_held_out": int(held_images.shape[0]),
        "num_features": cfg.num_features,
    }
    with run_directory(path, overwrite=True) as run:
        torch.save(net.state_dict(), run.file("model.pt"))
        run.write_config(asdict(cfg))
        run.write_metrics(info)
    return net, {**info, "path": str(path)}
