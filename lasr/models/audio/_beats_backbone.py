"""The BEATs transformer (Chen et al. 2022, arXiv:2212.09058), written for lasr.

Module and parameter names follow the published checkpoints of microsoft/unilm ``beats/`` so that their
``"model"`` state dict loads with ``strict=True``:
``patch_embedding``, ``layer_norm``, ``post_extract_proj``, ``encoder.pos_conv.0.weight_g / weight_v / bias``,
``encoder.layers.<i>.self_attn.{q,k,v,out}_proj``, ``.self_attn.relative_attention_bias`` (one table shared by all
layers, stored under every layer's name), ``.self_attn.grep_linear`` / ``.grep_a`` (gated relative position bias),
``.self_attn_layer_norm``, ``.fc1``, ``.fc2``, ``.final_layer_norm`` and ``encoder.layer_norm``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = ("gelu", "gelu_accurate", "relu")
GATE_UNITS = 8  # grep_linear output: two gates of four summed units each, as in the published weights
BERT_INIT_STD = 0.02


@dataclass(frozen=True)
class BEATsArch:
    """Architecture hyper-parameters; field names are the keys of the official checkpoint's ``"cfg"``."""

    input_patch_size: int = 16
    embed_dim: int = 512
    conv_bias: bool = False
    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    activation_fn: str = "gelu"
    layer_norm_first: bool = False
    deep_norm: bool = True
    conv_pos: int = 128
    conv_pos_groups: int = 16
    relative_position_embedding: bool = True
    num_buckets: int = 320
    max_distance: int = 800
    gru_rel_pos: bool = True


@dataclass(frozen=True)
class BEATsRegularization:
    """Training-time settings (dropout probabilities, layer drop, layer-wise gradient decay)."""

    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    encoder_layerdrop: float = 0.0
    dropout_input: float = 0.0
    layer_wise_gradient_decay_ratio: float = 0.6


class BEATsBackbone(nn.Module):
    """Patch embedding of the normalised fbank, then the BEATs transformer.

    Shape:
        fbank: (N, T, F) normalised log-mel frames; real_frames: (N,) frames of real audio per row, or None.
        Returns tokens (N, L, encoder_embed_dim), L = (T // p) * (F // p) in time-major order, and the token
        padding mask (N, L) (True = padding; None when every token is real). A time patch counts as real when all
        its ``p`` frames are real, so a padded row gives the same real tokens as the unpadded audio.
    """

    def __init__(self, arch: BEATsArch = BEATsArch(), reg: BEATsRegularization = BEATsRegularization()):
        super().__init__()
        if arch.deep_norm and arch.layer_norm_first:
            raise ValueError("deep_norm and layer_norm_first exclude each other (as in the official BEATs)")
        if arch.activation_fn not in ACTIVATIONS:
            raise ValueError(f"activation_fn must be one of {ACTIVATIONS}, got {arch.activation_fn!r}")
        self.patch_size = arch.input_patch_size
        self.patch_embedding = nn.Conv2d(
            1, arch.embed_dim, kernel_size=self.patch_size, stride=self.patch_size, bias=arch.conv_bias
        )
        self.layer_norm = nn.LayerNorm(arch.embed_dim)
        self.post_extract_proj = (
            nn.Linear(arch.embed_dim, arch.encoder_embed_dim) if arch.embed_dim != arch.encoder_embed_dim else None
        )
        self.dropout_input = nn.Dropout(reg.dropout_input)
        self.encoder = BEATsTransformer(arch, reg)

    def forward(self, fbank: Tensor, real_frames: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        patches = self.patch_embedding(fbank.unsqueeze(1))  # (N, C, T // p, F // p)
        time_patches, freq_patches = patches.shape[-2:]
        features = self.layer_norm(patches.flatten(2).transpose(1, 2))  # (N, L, C), time-major
        if self.post_extract_proj is not None:
            features = self.post_extract_proj(features)
        padding = None
        if real_frames is not None:
            real_patches = (real_frames.to(features.device) // self.patch_size).clamp(1, time_patches)
            token_time = torch.arange(time_patches * freq_patches, device=features.device) // freq_patches
            padding = token_time >= real_patches.unsqueeze(-1)
            padding = padding if bool(padding.any()) else None
        return self.encoder(self.dropout_input(features), padding), padding


class BEATsTransformer(nn.Module):
    """Convolutional position embedding, then post-LN (deep norm) layers with a shared relative position bias."""

    def __init__(self, arch: BEATsArch, reg: BEATsRegularization):
        super().__init__()
        dim = arch.encoder_embed_dim
        self.dropout = reg.dropout
        self.layerdrop = reg.encoder_layerdrop
        self.gradient_decay = reg.layer_wise_gradient_decay_ratio
        self.layer_norm_first = arch.layer_norm_first
        self.num_buckets, self.max_distance = arch.num_buckets, arch.max_distance
        conv = WeightNormConv1d(dim, arch.conv_pos, arch.conv_pos_groups)
        # An even kernel with padding k // 2 yields one frame too many; dropping the last keeps the length.
        self.pos_conv = nn.Sequential(conv, TrimLast(1 if arch.conv_pos % 2 == 0 else 0), nn.GELU())
        shared_bias = (
            nn.Embedding(arch.num_buckets, arch.encoder_attention_heads) if arch.relative_position_embedding else None
        )
        self.layers = nn.ModuleList(BEATsLayer(arch, reg, shared_bias) for _ in range(arch.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim)
        self._init_weights(arch)

    def forward(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        """(N, L, D) tokens, (N, L) bool padding mask or None -> (N, L, D)."""
        if padding is not None:
            x = x.masked_fill(padding.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = F.dropout(x, p=self.dropout, training=self.training)
        position_bias = self.position_bias(x.shape[1]) if self.layers[0].self_attn.has_position_bias else None
        for layer in self.layers:
            if self.gradient_decay != 1.0 and torch.is_grad_enabled():
                x = ScaleGradient.apply(x, self.gradient_decay)
            if self.training and self.layerdrop > 0 and float(torch.rand(())) < self.layerdrop:
                continue
            x = layer(x, position_bias, padding)
        return self.layer_norm(x) if self.layer_norm_first else x

    def position_bias(self, length: int) -> Tensor:
        """(heads, L, L) bias from the bucketed signed distance key - query (T5-style log buckets)."""
        table = self.layers[0].self_attn.relative_attention_bias
        buckets = relative_position_buckets(length, self.num_buckets, self.max_distance, table.weight.device)
        return table(buckets).permute(2, 0, 1)

    def _init_weights(self, arch: BEATsArch) -> None:
        """BERT-style normal init; with deep norm, Xavier init scaled by beta = (8 * layers)^(-1/4)."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=BERT_INIT_STD)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        if arch.deep_norm:
            beta = (8 * arch.encoder_layers) ** -0.25
            for layer in self.layers:
                attn = layer.self_attn
                for linear, gain in ((attn.q_proj, 1.0), (attn.k_proj, 1.0), (attn.v_proj, beta),
                                     (attn.out_proj, beta), (layer.fc1, beta), (layer.fc2, beta)):
                    nn.init.xavier_normal_(linear.weight, gain=gain)


class BEATsLayer(nn.Module):
    """Self-attention and feed-forward block; post-LN with residuals scaled by alpha = (2 * layers)^(1/4)."""

    def __init__(self, arch: BEATsArch, reg: BEATsRegularization, shared_bias: nn.Embedding | None):
        super().__init__()
        dim = arch.encoder_embed_dim
        self.self_attn = RelativeSelfAttention(arch, reg.attention_dropout, shared_bias)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, arch.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(arch.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.dropout1, self.dropout3 = nn.Dropout(reg.dropout), nn.Dropout(reg.dropout)
        self.dropout2 = nn.Dropout(reg.activation_dropout)
        self.activation_fn = arch.activation_fn
        self.layer_norm_first = arch.layer_norm_first
        self.residual_scale = (2 * arch.encoder_layers) ** 0.25 if arch.deep_norm else 1.0

    def forward(self, x: Tensor, position_bias: Tensor | None, padding: Tensor | None) -> Tensor:
        if self.layer_norm_first:
            x = x + self.dropout1(self.self_attn(self.self_attn_layer_norm(x), position_bias, padding))
            return x + self.dropout3(self.feed_forward(self.final_layer_norm(x)))
        attended = self.dropout1(self.self_attn(x, position_bias, padding))
        x = self.self_attn_layer_norm(x * self.residual_scale + attended)
        return self.final_layer_norm(x * self.residual_scale + self.dropout3(self.feed_forward(x)))

    def feed_forward(self, x: Tensor) -> Tensor:
        hidden = self.fc1(x)
        if self.activation_fn == "relu":
            hidden = F.relu(hidden)
        else:  # GELU in fp32 as the official model computes it
            approximate = "tanh" if self.activation_fn == "gelu_accurate" else "none"
            hidden = F.gelu(hidden.float(), approximate=approximate).type_as(hidden)
        return self.fc2(self.dropout2(hidden))


class RelativeSelfAttention(nn.Module):
    """Multi-head self-attention plus a relative position bias, optionally gated per query ("gru_rel_pos").

    The gate of head h at query i is ``a * (b * grep_a[h] - 1) + 2`` with ``a, b = sigmoid`` of two sums of four
    ``grep_linear`` outputs of the (unscaled) query; it multiplies the shared bias row of that query.
    """

    def __init__(self, arch: BEATsArch, attention_dropout: float, shared_bias: nn.Embedding | None):
        super().__init__()
        dim, heads = arch.encoder_embed_dim, arch.encoder_attention_heads
        if dim % heads:
            raise ValueError(f"encoder_embed_dim {dim} is not divisible by encoder_attention_heads {heads}")
        self.num_heads, self.head_dim = heads, dim // heads
        self.attention_dropout = attention_dropout
        self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.q_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.has_position_bias = shared_bias is not None
        if shared_bias is not None:
            self.relative_attention_bias = shared_bias
        self.gated = arch.gru_rel_pos
        if self.gated:
            self.grep_linear = nn.Linear(self.head_dim, GATE_UNITS)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def forward(self, x: Tensor, position_bias: Tensor | None, padding: Tensor | None) -> Tensor:
        """(N, L, D), (H, L, L) or None, (N, L) bool or None -> (N, L, D)."""
        batch, length, dim = x.shape
        q, k, v = (
            proj(x).view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)
            for proj in (self.q_proj, self.k_proj, self.v_proj)
        )  # (N, H, L, head_dim) each
        bias = None
        if position_bias is not None:
            bias = position_bias.unsqueeze(0)
            if self.gated:
                units = self.grep_linear(q).view(batch, self.num_heads, length, 2, GATE_UNITS // 2)
                gate_a, gate_b = torch.sigmoid(units.sum(-1)).chunk(2, dim=-1)  # (N, H, L, 1) each
                bias = (gate_a * (gate_b * self.grep_a - 1.0) + 2.0) * bias
        if padding is not None:
            blocked = torch.zeros(batch, 1, 1, length, dtype=q.dtype, device=q.device)
            blocked = blocked.masked_fill(padding[:, None, None, :], float("-inf"))
            bias = blocked if bias is None else bias + blocked
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=None if bias is None else bias.to(q.dtype),
            dropout_p=self.attention_dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))


class WeightNormConv1d(nn.Module):
    """Grouped 1-d convolution with ``weight = weight_g * weight_v / ||weight_v||``, the norm taken per kernel tap.

    Same parameters as ``torch.nn.utils.weight_norm(conv, dim=2)``, which the published weights were saved with.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int):
        super().__init__()
        if channels % groups:
            raise ValueError(f"channels {channels} are not divisible by conv_pos_groups {groups}")
        self.padding, self.groups = kernel_size // 2, groups
        weight = torch.randn(channels, channels // groups, kernel_size) * math.sqrt(4.0 / (kernel_size * channels))
        self.weight_g = nn.Parameter(weight.norm(dim=(0, 1), keepdim=True))
        self.weight_v = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_g * self.weight_v / self.weight_v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class TrimLast(nn.Module):
    """Drop the last ``remove`` frames of a (N, C, T) tensor."""

    def __init__(self, remove: int):
        super().__init__()
        self.remove = remove

    def forward(self, x: Tensor) -> Tensor:
        return x[..., : x.shape[-1] - self.remove]


class ScaleGradient(torch.autograd.Function):
    """Identity forward; multiplies the gradient by ``scale`` (BEATs' layer-wise gradient decay)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


def relative_position_buckets(length: int, num_buckets: int, max_distance: int, device: torch.device) -> Tensor:
    """(L, L) bucket of the signed distance key - query: half the buckets per sign, exact below a quarter of
    ``num_buckets``, logarithmic up to ``max_distance`` (then the last bucket)."""
    positions = torch.arange(length, device=device)
    relative = positions[None, :] - positions[:, None]
    half = num_buckets // 2
    exact = half // 2
    distance = relative.abs()
    log_ratio = torch.log(distance.clamp(min=1).float() / exact) / math.log(max_distance / exact)
    far = (exact + (log_ratio * (half - exact)).long()).clamp(max=half - 1)
    return (relative > 0).long() * half + torch.where(distance < exact, distance, far)
