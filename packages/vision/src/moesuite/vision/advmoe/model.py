"""AdvMoE's networks: a timm ResNet-18 whose block convolutions hold channel-group experts.

Zhang et al., "Robust Mixture-of-Expert Training for Convolutional Neural Networks", ICCV 2023.
Each MoE convolution holds ``E`` groups of ``r * planes`` filters; an image is convolved with
the filters of its chosen group only. A router picks one group per image (hard top-1, gate
exactly 1, straight-through gradient: the core's ``TopKRouter(straight_through=True)``), either
once for the whole network from the image (``routing="shared"``, the authors' code) or in front
of every MoE convolution from its input features (``routing="per_layer"``, the paper's figure).
Routers hand the experts a :class:`~moesuite.core.routing.RoutingPlan` over images.

Index legend: ``B`` images, ``E`` experts, ``C`` channels, ``H x W`` pixels.

Examples:
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = AdvResNet(width=8, ratio=0.5, experts=2)
    >>> out = net(torch.rand(3, 1, 28, 28))
    >>> tuple(out.output.shape), len(out.routing), out.routing[0].plan.weight.tolist()
    ((3, 10), 1, [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from torch import nn

from moesuite.core.output import MoEOutput
from moesuite.core.routers import RouterOutput, TopKRouter
from moesuite.core.routing import RoutingPlan

__all__ = ["MoEConv2d", "ImageRouter", "FeatureRouter", "AdvResNet", "ROUTINGS", "MIN_SIZE"]

ROUTINGS = ("shared", "per_layer")
#: three stride-2 stages: a smaller image leaves the last stages nothing but zero padding
MIN_SIZE = 8


class MoEConv2d(nn.Module):
    """``E`` channel-group experts of one convolution; each image uses its chosen group only.

    ``weight[E, C_out, C_in, k, k]``: expert ``e`` is a dense convolution with ``C_out`` filters.
    ``forward(x, plan)`` convolves the images ``plan`` assigns to ``e`` with ``weight[e]`` and
    scales the result by their gates (exactly 1 for the straight-through router), so the cost
    is that of one ``C_out``-filter convolution per image.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out`` of one expert (``r * planes``).
        num_experts: ``E``.
        kernel_size: square kernel.
        stride: convolution stride.

    Examples:
        >>> import torch
        >>> conv = MoEConv2d(2, 4, num_experts=3)
        >>> plan = RoutingPlan.from_topk(torch.tensor([[2], [0]]), torch.ones(2, 1), 3)
        >>> tuple(conv(torch.randn(2, 2, 5, 5), plan).shape)
        (2, 4, 5, 5)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        num_experts: int,
        kernel_size: int = 3,
        stride: int = 1,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_experts = num_experts
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(
            torch.empty(num_experts, out_channels, in_channels, kernel_size, kernel_size)
        )
        for w in self.weight.data:  # He init per expert, as timm initialises its convolutions
            nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, weight, stride=self.stride, padding=self.padding)

    def forward(self, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """``x[B, C_in, H, W]`` -> ``[B, C_out, H', W']``, each image through its experts."""
        offsets = plan.expert_offsets.tolist()
        rows, outs = [], []
        for e in range(self.num_experts):
            lo, hi = offsets[e], offsets[e + 1]
            if hi == lo:
                continue
            idx = plan.token_idx[lo:hi]
            y = self._conv(x.index_select(0, idx), self.weight[e])
            outs.append(y * plan.weight[lo:hi].to(y.dtype).view(-1, 1, 1, 1))
            rows.append(idx)
        y = torch.cat(outs)
        out = y.new_zeros((x.shape[0], *y.shape[1:]))
        return out.index_add(0, torch.cat(rows), y)

    def reference(self, x: torch.Tensor, plan: RoutingPlan) -> torch.Tensor:
        """Every group on every image, then the plan's mix: the authors' mask-after-compute."""
        E, C = self.num_experts, self.out_channels
        full = self._conv(x, self.weight.reshape(E * C, *self.weight.shape[2:]))
        full = full.view(x.shape[0], E, C, *full.shape[2:])
        mix = plan.to_dense().to(full.dtype)  # [B, E]
        return (full * mix[:, :, None, None, None]).sum(1)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, num_experts={self.num_experts}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}"
        )


def _gate(d_model: int, num_experts: int, lb_weight: float, z_weight: float) -> TopKRouter:
    return TopKRouter(
        d_model,
        num_experts,
        k=1,
        straight_through=True,
        lb_weight=lb_weight,
        z_weight=z_weight,
    )


class ImageRouter(nn.Module):
    """The shared router: a small CNN on the image, then a hard top-1 core router over images.

    Three 3x3 conv-BN-ReLU layers (``w``, ``2w``, ``4w`` channels, the last two stride 2) and a
    global average pool give one ``4w``-vector per image; the core ``TopKRouter`` (k=1,
    straight-through) turns it into a plan over the ``B`` images.
    """

    def __init__(
        self,
        in_chans: int,
        num_experts: int,
        width: int = 8,
        lb_weight: float = 1e-2,
        z_weight: float = 1e-3,
    ):
        super().__init__()
        chans = [in_chans, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for i in range(3):
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=1 if i == 0 else 2, padding=1),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            ]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.gate = _gate(4 * width, num_experts, lb_weight, z_weight)

    def forward(self, x: torch.Tensor) -> RouterOutput:
        return self.gate(self.features(x))


class FeatureRouter(nn.Module):
    """A per-layer router: global average pool of the convolution's input, hard top-1 gate."""

    def __init__(
        self, channels: int, num_experts: int, lb_weight: float = 1e-2, z_weight: float = 1e-3
    ):
        super().__init__()
        self.gate = _gate(channels, num_experts, lb_weight, z_weight)

    def forward(self, h: torch.Tensor) -> RouterOutput:
        return self.gate(h.mean(dim=(2, 3)))


class AdvResNet(nn.Module):
    """ResNet-18 (timm) for small images, dense or with channel-group MoE convolutions.

    The topology is ``timm.create_model("resnet18")`` with stage widths ``r * width * (1, 2, 4,
    8)``, a 3x3 stride-1 stem and no max-pool (for 28x28x1 digits). With ``experts > 1`` both
    3x3 convolutions of every basic block become :class:`MoEConv2d` with ``experts`` groups of
    ``r * planes`` filters (so ``experts * r`` times the filters of the dense block, ``r`` of its
    width active per image); the stem, the 1x1 shortcuts, the batch norms and the classifier stay
    dense, as in the authors' code. ``experts=1`` is the dense network of width ``r * width``.

    Args:
        num_classes: classifier outputs.
        in_chans: image channels.
        width: the dense (``r = 1``) network's first-stage width.
        ratio: ``r``, the width of one expert (and of the dense baseline) relative to ``width``.
        experts: ``E`` channel groups per MoE convolution (1: a dense network, no router).
        routing: ``"shared"`` (one router CNN on the image decides for every MoE conv) or
            ``"per_layer"`` (a router in front of every MoE conv, on its input features).
        router_width: first width of the shared router CNN.
        lb_weight: weight of each router's Switch load-balancing loss in ``aux_loss``.
        z_weight: weight of each router's z-loss in ``aux_loss``.

    ``forward(x[B, in_chans, H, W])`` returns a :class:`~moesuite.core.output.MoEOutput`: logits
    ``[B, num_classes]`` and one router output (shared) or one per MoE conv (per-layer), none
    for a dense network.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 1,
        width: int = 16,
        ratio: float = 1.0,
        experts: int = 1,
        routing: str = "shared",
        router_width: int = 8,
        lb_weight: float = 1e-2,
        z_weight: float = 1e-3,
    ):
        super().__init__()
        if routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}, got {routing!r}.")
        if not isinstance(experts, int) or experts < 1:
            raise ValueError(f"experts must be a positive int, got {experts!r}.")
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio}.")
        chans = tuple(max(1, round(ratio * width * m)) for m in (1, 2, 4, 8))
        self.num_classes, self.in_chans, self.width, self.ratio = (
            num_classes,
            in_chans,
            width,
            ratio,
        )
        self.experts, self.routing, self.router_width = experts, routing, router_width
        self.lb_weight, self.z_weight = lb_weight, z_weight
        net = timm.create_model(
            "resnet18",
            pretrained=False,
            num_classes=num_classes,
            in_chans=in_chans,
            channels=chans,
            zero_init_last=False,  # the authors' init (BN weight 1): routers learn from step one
        )
        net.conv1 = nn.Conv2d(in_chans, chans[0], 3, stride=1, padding=1, bias=False)
        net.bn1 = nn.BatchNorm2d(chans[0])
        net.maxpool = nn.Identity()
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        first = net.layer1[0]  # timm's first block expects a 64-wide stem: rebuild its input side
        first.conv1 = nn.Conv2d(chans[0], chans[0], 3, padding=1, bias=False)
        nn.init.kaiming_normal_(first.conv1.weight, mode="fan_out", nonlinearity="relu")
        first.downsample = None
        self.net = net
        self.blocks = nn.ModuleList(b for stage in self.stages() for b in stage)
        self.router: ImageRouter | None = None
        self.layer_routers = nn.ModuleList()
        if experts > 1:
            for block in self.blocks:
                for name in ("conv1", "conv2"):
                    conv = getattr(block, name)
                    setattr(
                        block,
                        name,
                        MoEConv2d(conv.in_channels, conv.out_channels, experts, 3, conv.stride[0]),
                    )
                    if routing == "per_layer":
                        self.layer_routers.append(
                            FeatureRouter(conv.in_channels, experts, lb_weight, z_weight)
                        )
            if routing == "shared":
                self.router = ImageRouter(in_chans, experts, router_width, lb_weight, z_weight)

    def stages(self) -> list[nn.Sequential]:
        """The four residual stages of the timm network."""
        return [self.net.layer1, self.net.layer2, self.net.layer3, self.net.layer4]

    @property
    def is_moe(self) -> bool:
        """True when the network has routers (``experts > 1``)."""
        return self.experts > 1

    def router_parameters(self) -> list[nn.Parameter]:
        """The routers' parameters (what AdvMoE's router step updates)."""
        mods = [self.router] if self.router is not None else list(self.layer_routers)
        return [p for m in mods for p in m.parameters()]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Everything but the routers (what AdvMoE's backbone step updates)."""
        routed = {id(p) for p in self.router_parameters()}
        return [p for p in self.parameters() if id(p) not in routed]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a clear ``ValueError`` unless ``x`` is ``[B, in_chans, H, W]`` with H, W >= 8."""
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.in_chans:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"images must be a [B, {self.in_chans}, H, W] tensor, got {shape}; "
                f"this network's stem takes {self.in_chans}-channel images."
            )
        if min(x.shape[2:]) < MIN_SIZE:
            raise ValueError(
                f"images of {x.shape[2]}x{x.shape[3]} pixels are smaller than the stem takes "
                f"(at least {MIN_SIZE}x{MIN_SIZE}: three stride-2 stages); upscale them."
            )

    def _block(self, block: nn.Module, x: torch.Tensor, plans: list, routing: list) -> torch.Tensor:
        h = x
        for i, name in enumerate(("conv1", "conv2")):
            conv = getattr(block, name)
            if isinstance(conv, MoEConv2d):
                if self.routing == "per_layer":
                    r = self.layer_routers[len(routing)](h)
                    routing.append(r)
                    plan = r.plan
                else:
                    plan = plans[0]
                h = conv(h, plan)
            else:
                h = conv(h)
            h = (block.bn1 if i == 0 else block.bn2)(h)
            if i == 0:
                h = block.act1(h)
        shortcut = x if block.downsample is None else block.downsample(x)
        return block.act2(h + shortcut)

    def forward(self, x: torch.Tensor) -> MoEOutput:
        self.check_input(x)
        routing: list[RouterOutput] = []
        plans: list[RoutingPlan] = []
        if self.router is not None:
            r = self.router(x)
            routing.append(r)
            plans.append(r.plan)
        net = self.net
        h = net.act1(net.bn1(net.conv1(x)))
        for block in self.blocks:
            h = self._block(block, h, plans, routing)
        return MoEOutput(net.forward_head(h), routing)


def expert_choices(routing: list[RouterOutput], batch: int) -> torch.Tensor:
    """``[R, B]`` the expert each router gave each image (top-1 plans), ``R`` routers."""
    rows = []
    for r in routing:
        choice = torch.full((batch,), -1, dtype=torch.long, device=r.plan.expert_idx.device)
        rows.append(choice.scatter(0, r.plan.token_idx, r.plan.expert_idx))
    return torch.stack(rows) if rows else torch.empty(0, batch, dtype=torch.long)


def conv_output_size(size: int) -> int:
    """Spatial size after the network's three stride-2 stages."""
    for _ in range(3):
        size = math.floor((size + 2 - 3) / 2) + 1
    return size
