"""DiT and its MoE variants: ProMoE, TC-DiT (token choice) and EC-DiT (expert choice).

The backbone is DiT (Peebles & Xie 2023) in pixel space: timm ``PatchEmbed``, fixed 2-D sin-cos
positions, a sinusoidal timestep MLP, a label table with one extra null row (labels dropped with
probability ``class_dropout`` in training, for classifier-free guidance), adaLN-Zero blocks and a
final adaLN + linear layer that is unpatchified. The MoE models replace the MLP of every other
block (blocks 1, 3, 5, ... as in the ProMoE code) and keep the activated parameters of the dense
model:

- :class:`ProMoE`: conditional routing (every token of a null-label sample to one unconditional
  expert, gate 1: :class:`~moesuite.core.routers.ConditionalRouter`), prototypical routing of
  the other tokens (top-1 cosine similarity, raw cosine gate: :class:`PrototypeRouter`), one
  shared expert, every expert half the dense MLP width, the centroid routing contrastive loss
  (weight 1, temperature 0.07) and no load balancing.
- :class:`TCDiT`: softmax top-1 token choice over full-width experts, Switch balance loss 0.01.
- :class:`ECDiT`: each expert takes the top ``C = ceil(L / E)`` tokens of each sample.

Every model returns a :class:`~moesuite.core.MoEOutput` (the prediction and each MoE layer's
router output); the training step adds ``out.aux_loss``.

Index legend: ``N`` images, ``L`` tokens per image, ``D`` width, ``E`` routed experts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import Attention, Mlp, PatchEmbed
from torch import nn

from moesuite.core import GroupedExperts, MoELayer, MoEOutput
from moesuite.core.routers import (
    ConditionalRouter,
    ExpertChoiceRouter,
    PrototypeRouter,
    RouterOutput,
    TopKRouter,
)
from moesuite.vision.nn.patches import check_patch_size, unpatchify
from moesuite.vision.nn.positions import sincos_2d

__all__ = ["DiT", "ProMoE", "TCDiT", "ECDiT", "ProMoEMLP", "TokenChoiceMLP", "ExpertChoiceMLP"]


def _gelu_tanh() -> nn.Module:
    return nn.GELU(approximate="tanh")


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of ``t`` (256 frequencies) through a two-layer SiLU MLP."""

    def __init__(self, hidden_size: int, frequency_size: int = 256):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
        )

    @staticmethod
    def sinusoid(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        """``[N] -> [N, dim]``: ``[cos(t f_i) | sin(t f_i)]``, ``f_i = P^(-i / (dim / 2))``."""
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
        args = t.float()[:, None] * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return F.pad(emb, (0, dim % 2))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoid(t, self.frequency_size))


class DiTBlock(nn.Module):
    """adaLN-Zero block: ``x + g1 * attn(mod(norm(x))) + g2 * mlp(mod(norm(x)))``.

    ``mlp`` is a dense timm ``Mlp`` or an MoE layer called as ``mlp(h, null) -> (y, routing)``.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp: nn.Module):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden_size, num_heads=num_heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.mlp = mlp
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 6 * hidden_size))

    def forward(
        self, x: torch.Tensor, c: torch.Tensor, null: torch.Tensor
    ) -> tuple[torch.Tensor, RouterOutput | None]:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate1.unsqueeze(1) * self.attn(_modulate(self.norm1(x), shift1, scale1))
        h = _modulate(self.norm2(x), shift2, scale2)
        routing = None
        if isinstance(self.mlp, MoELayer):
            h, routing = self.mlp(h, null)
        else:
            h = self.mlp(h)
        return x + gate2.unsqueeze(1) * h, routing


class FinalLayer(nn.Module):
    """adaLN (shift, scale) then a linear map to ``p * p * C`` values per token."""

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(_modulate(self.norm(x), shift, scale))


def _xavier_experts(experts: GroupedExperts) -> None:
    """Each expert's matrices as DiT initialises ``nn.Linear`` (Xavier uniform, zero bias)."""
    for w in (experts.w_in, experts.w_out):
        bound = math.sqrt(6.0 / (w.shape[1] + w.shape[2]))
        nn.init.uniform_(w, -bound, bound)
    for b in (experts.b_in, experts.b_out):
        if b is not None:
            nn.init.zeros_(b)


class ProMoEMLP(MoELayer):
    """ProMoE's MoE layer: conditional + prototypical routing, a shared expert.

    Experts ``0 .. E-1`` are routed by prototypes (top-1 cosine, ``gate`` activation with
    temperature 1); expert ``E`` (with ``conditional``) takes every token of null-label samples
    with gate 1; the shared expert sees every token.

    Args:
        hidden_size: ``D``.
        expert_hidden: hidden width of every expert (half the dense MLP's in ProMoE).
        num_experts: routed experts ``E``.
        gate: ``"identity"`` (ProMoE), ``"softmax"`` or ``"sigmoid"`` (ablations).
        contrastive_weight: weight of the centroid routing contrastive loss (0: ablation).
        contrastive_temperature: its temperature.
        conditional: route null-label tokens to the unconditional expert (False: ablation; every
            token is then routed by prototypes and there is no unconditional expert).
        shared_expert: add the always-on shared expert.
        prototype_std: prototypes start as ``N(0, prototype_std^2)``.
    """

    def __init__(
        self,
        hidden_size: int,
        expert_hidden: int,
        num_experts: int,
        gate: str = "identity",
        contrastive_weight: float = 1.0,
        contrastive_temperature: float = 0.07,
        conditional: bool = True,
        shared_expert: bool = True,
        prototype_std: float = 0.02,
    ):
        proto = PrototypeRouter(
            hidden_size,
            num_experts,
            k=1,
            temperature=1.0,
            normalize=False,
            gate=gate,
            init_std=prototype_std,
            lb_weight=0.0,
            contrastive="centroid",
            contrastive_weight=contrastive_weight,
            contrastive_temperature=contrastive_temperature,
        )
        router = ConditionalRouter(proto, num_fixed=1) if conditional else proto
        experts = GroupedExperts(
            router.num_experts, hidden_size, expert_hidden, activation="gelu_tanh", bias=True
        )
        shared = Mlp(hidden_size, expert_hidden, act_layer=_gelu_tanh) if shared_expert else None
        super().__init__(router, experts, shared)
        self.conditional = conditional

    @property
    def prototypes(self) -> PrototypeRouter:
        """The prototypical router (inside the conditional one when there is one)."""
        return self.router.router if isinstance(self.router, ConditionalRouter) else self.router

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, null: torch.Tensor
    ) -> tuple[torch.Tensor, RouterOutput]:
        """``x [N, L, D]``, ``null [N]`` (null-label samples) -> ``(y [N, L, D], routing)``."""
        N, L, D = x.shape
        flat = x.reshape(N * L, D)
        if self.conditional:
            out = self.router(flat, mask=null.repeat_interleave(L))
        else:
            out = self.router(flat)
        y = self.experts(flat, out.plan).reshape(N, L, D)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return y, out


class TokenChoiceMLP(MoELayer):
    """TC-DiT's MoE layer: softmax top-1 over full-width experts, Switch balance loss."""

    def __init__(
        self, hidden_size: int, expert_hidden: int, num_experts: int, lb_weight: float = 0.01
    ):
        router = TopKRouter(hidden_size, num_experts, k=1, lb_weight=lb_weight, z_weight=0.0)
        experts = GroupedExperts(
            num_experts, hidden_size, expert_hidden, activation="gelu_tanh", bias=True
        )
        super().__init__(router, experts)

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, null: torch.Tensor
    ) -> tuple[torch.Tensor, RouterOutput]:
        return super().forward(x)


class ExpertChoiceMLP(MoELayer):
    """EC-DiT's MoE layer: each expert takes its top tokens within each sample."""

    def __init__(
        self,
        hidden_size: int,
        expert_hidden: int,
        num_experts: int,
        tokens_per_sample: int,
        capacity_factor: float = 1.0,
    ):
        router = ExpertChoiceRouter(
            hidden_size,
            num_experts,
            capacity_factor=capacity_factor,
            z_weight=0.0,
            group_size=tokens_per_sample,
        )
        experts = GroupedExperts(
            num_experts, hidden_size, expert_hidden, activation="gelu_tanh", bias=True
        )
        super().__init__(router, experts)

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, null: torch.Tensor
    ) -> tuple[torch.Tensor, RouterOutput]:
        return super().forward(x)


class DiT(nn.Module):
    """Class-conditional diffusion transformer with a dense MLP in every block.

    Args:
        image_size: image side (square) or ``(height, width)``.
        in_channels: image channels.
        patch_size: patch side (must divide the image sides).
        hidden_size: token width ``D`` (divisible by 4 and by ``num_heads``).
        depth: blocks.
        num_heads: attention heads.
        mlp_ratio: dense MLP hidden width over ``D``.
        num_classes: classes; label ``num_classes`` is the null label.
        class_dropout: probability of replacing a label by the null label in training.

    Shapes:
        ``forward(x [N, C, H, W], t [N] in [0, 1000], y [N])`` -> ``MoEOutput(output
        [N, C, H, W], routing)``.

    Examples:
        >>> import torch
        >>> net = DiT(image_size=8, patch_size=2, hidden_size=32, depth=2, num_heads=2)
        >>> out = net(torch.randn(3, 1, 8, 8), torch.rand(3) * 1000, torch.tensor([0, 5, 10]))
        >>> tuple(out.output.shape), len(out.routing)
        ((3, 1, 8, 8), 0)
    """

    def __init__(
        self,
        image_size: int | tuple[int, int] = 28,
        in_channels: int = 1,
        patch_size: int = 4,
        hidden_size: int = 128,
        depth: int = 6,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        num_classes: int = 10,
        class_dropout: float = 0.1,
    ):
        super().__init__()
        H, W = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        check_patch_size(H, W, patch_size)
        if hidden_size % 4 or hidden_size % num_heads:
            raise ValueError(
                f"hidden_size={hidden_size} must be divisible by 4 (2-D sin-cos positions) and "
                f"by num_heads={num_heads}."
            )
        if not 0.0 <= class_dropout < 1.0:
            raise ValueError(f"class_dropout must be in [0, 1), got {class_dropout}.")
        self.image_size = (H, W)
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.hidden_size = hidden_size
        self.depth = depth
        self.num_heads = num_heads
        self.mlp_ratio = mlp_ratio
        self.num_classes = num_classes
        self.class_dropout = class_dropout
        self.mlp_hidden = int(hidden_size * mlp_ratio)
        self.x_embedder = PatchEmbed((H, W), patch_size, in_channels, hidden_size, bias=True)
        self.num_tokens = (H // patch_size) * (W // patch_size)
        pos = sincos_2d(hidden_size, H // patch_size, W // patch_size)
        self.register_buffer("pos_embed", pos.unsqueeze(0), persistent=False)
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.y_embedder = nn.Embedding(num_classes + 1, hidden_size)  # row num_classes: null
        self.blocks = nn.ModuleList(
            DiTBlock(hidden_size, num_heads, self.make_mlp(i)) for i in range(depth)
        )
        self.final_layer = FinalLayer(hidden_size, patch_size, in_channels)
        self.reset_parameters()

    # -- architecture hooks ------------------------------------------------------------
    def make_mlp(self, index: int) -> nn.Module:
        """The MLP of block ``index`` (dense here; MoE subclasses replace every other one)."""
        return Mlp(self.hidden_size, self.mlp_hidden, act_layer=_gelu_tanh)

    @property
    def moe_blocks(self) -> list[int]:
        """Indices of the blocks whose MLP an MoE model replaces (1, 3, 5, ...)."""
        return [i for i in range(self.depth) if i % 2 == 1]

    def reset_parameters(self) -> None:
        """DiT's initialisation: Xavier linears, zeroed adaLN and output layers."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, GroupedExperts):
                _xavier_experts(m)
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        nn.init.normal_(self.y_embedder.weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        for layer in (self.final_layer.adaLN_modulation[-1], self.final_layer.linear):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    # -- forward -------------------------------------------------------------------------
    @property
    def null_label(self) -> int:
        """The label of the unconditional (null) class."""
        return self.num_classes

    def drop_labels(self, y: torch.Tensor) -> torch.Tensor:
        """Replace each label by the null label with probability ``class_dropout``."""
        if self.class_dropout <= 0:
            return y
        drop = torch.rand(y.shape[0], device=y.device) < self.class_dropout
        return torch.where(drop, torch.full_like(y, self.null_label), y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> MoEOutput:
        """Predict from noisy images ``x``, timesteps ``t`` and labels ``y`` (null allowed)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.in_channels, *self.image_size):
            raise ValueError(
                f"x must have shape [N, {self.in_channels}, {self.image_size[0]}, "
                f"{self.image_size[1]}], got {tuple(x.shape)}."
            )
        y = y.long()
        if y.numel() and (int(y.min()) < 0 or int(y.max()) > self.null_label):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}] ({self.num_classes} = null), got "
                f"values in [{int(y.min())}, {int(y.max())}]."
            )
        if self.training:
            y = self.drop_labels(y)
        null = y == self.null_label
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        routing: list[RouterOutput] = []
        for block in self.blocks:
            h, r = block(h, c, null)
            if r is not None:
                routing.append(r)
        out = unpatchify(self.final_layer(h, c), self.patch_size, *self.image_size)
        return MoEOutput(out, routing)

    # -- accounting ----------------------------------------------------------------------
    def moe_layers(self) -> list[MoELayer]:
        """The MoE layers, in depth order."""
        return [b.mlp for b in self.blocks if isinstance(b.mlp, MoELayer)]

    def experts_per_token(self, layer: MoELayer) -> float:
        """Experts (of ``layer.experts``) a token activates on average."""
        return 1.0

    def parameter_counts(self) -> dict[str, int]:
        """``{"total", "activated"}`` parameters; activated counts, per token, the experts used."""
        total = sum(p.numel() for p in self.parameters())
        idle = 0.0
        for layer in self.moe_layers():
            E = layer.experts.num_experts
            per_expert = sum(p.numel() for p in layer.experts.parameters()) / E
            idle += per_expert * (E - self.experts_per_token(layer))
        return {"total": int(total), "activated": int(round(total - idle))}


class ProMoE(DiT):
    """DiT with ProMoE layers in every other block (see :class:`ProMoEMLP`).

    Args:
        num_experts: routed experts per MoE layer (plus one unconditional and one shared).
        expert_ratio: every expert's hidden width over the dense MLP's (0.5: activated
            parameters equal the dense model's, shared + one expert per token).
        gate: ``"identity"``, ``"softmax"`` or ``"sigmoid"`` (ablation).
        contrastive_weight: routing contrastive loss weight (0: ablation).
        contrastive_temperature: its temperature.
        conditional: conditional routing (False: ablation).
        prototype_std: prototype initialisation std.
        **backbone: :class:`DiT` arguments.

    Examples:
        >>> import torch
        >>> net = ProMoE(image_size=8, patch_size=2, hidden_size=32, depth=2, num_heads=2,
        ...              num_experts=3)
        >>> out = net(torch.randn(2, 1, 8, 8), torch.rand(2) * 1000, torch.tensor([4, 10]))
        >>> out.routing[0].plan.to_dense()[16:, 3].tolist() == [1.0] * 16   # null sample
        True
    """

    def __init__(
        self,
        num_experts: int = 6,
        expert_ratio: float = 0.5,
        gate: str = "identity",
        contrastive_weight: float = 1.0,
        contrastive_temperature: float = 0.07,
        conditional: bool = True,
        prototype_std: float = 0.02,
        **backbone,
    ):
        self._moe = dict(
            num_experts=num_experts,
            gate=gate,
            contrastive_weight=contrastive_weight,
            contrastive_temperature=contrastive_temperature,
            conditional=conditional,
            prototype_std=prototype_std,
        )
        self._expert_ratio = expert_ratio
        super().__init__(**backbone)
        self.num_experts = num_experts
        self.expert_ratio = expert_ratio
        self.gate = gate
        self.contrastive_weight = contrastive_weight
        self.contrastive_temperature = contrastive_temperature
        self.conditional = conditional
        self.prototype_std = prototype_std

    def make_mlp(self, index: int) -> nn.Module:
        if index % 2 == 0:
            return super().make_mlp(index)
        hidden = max(1, int(self.mlp_hidden * self._expert_ratio))
        return ProMoEMLP(self.hidden_size, hidden, **self._moe)


class TCDiT(DiT):
    """DiT with token-choice top-1 MoE layers in every other block (see :class:`TokenChoiceMLP`).

    Args:
        num_experts: full-width experts per MoE layer.
        lb_weight: Switch load-balancing weight.
        **backbone: :class:`DiT` arguments.
    """

    def __init__(self, num_experts: int = 4, lb_weight: float = 0.01, **backbone):
        self._moe = dict(num_experts=num_experts, lb_weight=lb_weight)
        super().__init__(**backbone)
        self.num_experts = num_experts
        self.lb_weight = lb_weight

    def make_mlp(self, index: int) -> nn.Module:
        if index % 2 == 0:
            return super().make_mlp(index)
        return TokenChoiceMLP(self.hidden_size, self.mlp_hidden, **self._moe)


class ECDiT(DiT):
    """DiT with per-sample expert-choice MoE layers in every other block.

    Args:
        num_experts: full-width experts per MoE layer.
        capacity_factor: experts per token on average (each expert takes
            ``ceil(L * capacity_factor / E)`` tokens of each sample).
        **backbone: :class:`DiT` arguments.
    """

    def __init__(self, num_experts: int = 4, capacity_factor: float = 1.0, **backbone):
        self._moe = dict(num_experts=num_experts, capacity_factor=capacity_factor)
        super().__init__(**backbone)
        self.num_experts = num_experts
        self.capacity_factor = capacity_factor
        for layer in self.moe_layers():  # EC-DiT's gate initialisation
            nn.init.normal_(layer.router.weight, std=0.006)

    def make_mlp(self, index: int) -> nn.Module:
        if index % 2 == 0:
            return super().make_mlp(index)
        return ExpertChoiceMLP(
            self.hidden_size, self.mlp_hidden, tokens_per_sample=self.num_tokens, **self._moe
        )

    def experts_per_token(self, layer: MoELayer) -> float:
        E, L = layer.router.num_experts, self.num_tokens
        return E * min(L, math.ceil(L * self.capacity_factor / E)) / L
