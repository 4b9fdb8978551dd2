"""The EAT encoder (Chen et al. 2024, arXiv:2401.03497): a data2vec 2.0 image-modality ViT on the log-mel, for lasr.

Module and parameter names follow the fairseq checkpoints of cwx-worst-one/EAT (``Data2VecMultiModel``), so that
their encoder weights load with ``strict=True``:
``modality_encoders.IMAGE.local_encoder.proj`` (16x16 patch conv), ``modality_encoders.IMAGE.extra_tokens`` (CLS),
``modality_encoders.IMAGE.fixed_positional_encoder.positions`` (fixed 2-d sin-cos table),
``modality_encoders.IMAGE.context_encoder.norm`` (LayerNorm before the blocks), and
``blocks.<i>.{norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}`` (post-LN transformer blocks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BERT_INIT_STD = 0.02
SINCOS_BASE = 10000.0


@dataclass(frozen=True)
class EATArch:
    """Architecture hyper-parameters (EAT-base defaults); ``target_length`` frames x ``n_mels`` is the input."""

    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    patch_size: int = 16
    n_mels: int = 128
    target_length: int = 1024
    norm_eps: float = 1e-6


@dataclass(frozen=True)
class EATRegularization:
    """Training-time dropout probabilities and the stochastic depth rate of the last block (0 for the first)."""

    encoder_dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    post_mlp_dropout: float = 0.0
    dropout_input: float = 0.0
    drop_path_rate: float = 0.0


class EATBackbone(nn.Module):
    """Patch embedding + fixed positions, CLS token, LayerNorm, then ``depth`` post-LN transformer blocks.

    Shape:
        spectrogram: (N, target_length, n_mels) normalised log-mel. Returns (N, 1 + L, embed_dim): the CLS token
        first, then L = (target_length / p) * (n_mels / p) patch tokens in time-major order.
    """

    def __init__(self, arch: EATArch = EATArch(), reg: EATRegularization = EATRegularization()):
        super().__init__()
        if arch.target_length % arch.patch_size or arch.n_mels % arch.patch_size:
            raise ValueError(
                f"target_length {arch.target_length} and n_mels {arch.n_mels} must be multiples of "
                f"patch_size {arch.patch_size}"
            )
        if arch.embed_dim % arch.num_heads:
            raise ValueError(f"embed_dim {arch.embed_dim} is not divisible by num_heads {arch.num_heads}")
        self.input_shape = (arch.target_length, arch.n_mels)
        self.modality_encoders = nn.ModuleDict({"IMAGE": EATPatchFrontEnd(arch)})
        self.dropout_input = nn.Dropout(reg.dropout_input)
        rates = torch.linspace(0, reg.drop_path_rate, arch.depth).tolist()
        self.blocks = nn.ModuleList(EATBlock(arch, reg, rate) for rate in rates)
        self._init_weights()

    def forward(self, spectrogram: Tensor) -> Tensor:
        if tuple(spectrogram.shape[1:]) != self.input_shape:
            raise ValueError(f"EAT expects (N, {self.input_shape[0]}, {self.input_shape[1]}) log-mel frames, "
                             f"got {tuple(spectrogram.shape)}")
        x = self.dropout_input(self.modality_encoders["IMAGE"](spectrogram))
        for block in self.blocks:
            x = block(x)
        return x

    def _init_weights(self) -> None:
        """BERT-style normal init of the linear layers; Xavier on the flattened patch kernel; N(0, 1) CLS token."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=BERT_INIT_STD)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        front = self.modality_encoders["IMAGE"]
        nn.init.xavier_uniform_(front.local_encoder.proj.weight.view(front.local_encoder.proj.weight.shape[0], -1))
        nn.init.normal_(front.extra_tokens)


class EATPatchFrontEnd(nn.Module):
    """The "IMAGE" modality encoder: patches, fixed positions, CLS token and the LayerNorm before the blocks."""

    def __init__(self, arch: EATArch):
        super().__init__()
        self.local_encoder = PatchProjection(arch.patch_size, arch.embed_dim)
        self.extra_tokens = nn.Parameter(torch.zeros(1, 1, arch.embed_dim))
        grid = (arch.target_length // arch.patch_size, arch.n_mels // arch.patch_size)
        self.fixed_positional_encoder = FixedPositions(sincos_positions_2d(arch.embed_dim, *grid).unsqueeze(0))
        self.context_encoder = ContextNorm(arch.embed_dim, arch.norm_eps)

    def forward(self, spectrogram: Tensor) -> Tensor:
        """(N, T, F) -> (N, 1 + L, D)."""
        x = self.local_encoder(spectrogram) + self.fixed_positional_encoder.positions
        x = torch.cat([self.extra_tokens.expand(x.shape[0], -1, -1), x], dim=1)
        return self.context_encoder.norm(x)


class PatchProjection(nn.Module):
    """Non-overlapping ``p x p`` patches of the (T, F) log-mel projected to D channels, flattened time-major."""

    def __init__(self, patch_size: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(1, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, spectrogram: Tensor) -> Tensor:
        """(N, T, F) -> (N, (T / p) * (F / p), D)."""
        return self.proj(spectrogram.unsqueeze(1)).flatten(2).transpose(1, 2)


class FixedPositions(nn.Module):
    """Holds the fixed position table (1, L, D); stored in checkpoints but never trained."""

    def __init__(self, positions: Tensor):
        super().__init__()
        self.register_buffer("positions", positions)


class ContextNorm(nn.Module):
    """Holds the LayerNorm applied after the CLS token is prepended."""

    def __init__(self, embed_dim: int, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim, eps=eps)


class EATBlock(nn.Module):
    """Post-LN block: ``x = norm1(x + attn(x)); x = norm2(x + mlp(x))`` with dropouts and stochastic depth."""

    def __init__(self, arch: EATArch, reg: EATRegularization, drop_path_rate: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(arch.embed_dim, eps=arch.norm_eps)
        self.attn = EATAttention(arch, reg)
        self.norm2 = nn.LayerNorm(arch.embed_dim, eps=arch.norm_eps)
        self.mlp = EATMlp(arch.embed_dim, round(arch.embed_dim * arch.mlp_ratio), reg.activation_dropout)
        self.post_mlp_dropout = nn.Dropout(reg.post_mlp_dropout)
        self.drop_path_rate = drop_path_rate

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm1(x + self.drop_path(self.attn(x)))
        return self.norm2(x + self.drop_path(self.post_mlp_dropout(self.mlp(x))))

    def drop_path(self, x: Tensor) -> Tensor:
        """Stochastic depth: in training, zero the branch of a whole sample with probability ``drop_path_rate``."""
        if not self.training or self.drop_path_rate == 0.0:
            return x
        keep = 1.0 - self.drop_path_rate
        mask = x.new_empty(x.shape[0], *([1] * (x.dim() - 1))).bernoulli_(keep)
        return x * mask / keep


class EATAttention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection (bias) and an output ``proj``."""

    def __init__(self, arch: EATArch, reg: EATRegularization):
        super().__init__()
        self.num_heads = arch.num_heads
        self.qkv = nn.Linear(arch.embed_dim, 3 * arch.embed_dim)
        self.proj = nn.Linear(arch.embed_dim, arch.embed_dim)
        self.attention_dropout = reg.attention_dropout
        self.proj_dropout = nn.Dropout(reg.encoder_dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, length, dim = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, dim // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            qkv[0], qkv[1], qkv[2], dropout_p=self.attention_dropout if self.training else 0.0
        )  # (N, H, L, head_dim)
        return self.proj_dropout(self.proj(out.transpose(1, 2).reshape(batch, length, dim)))


class EATMlp(nn.Module):
    """``fc2(dropout(gelu(fc1(x))))`` followed by dropout."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.fc2(self.dropout(F.gelu(self.fc1(x)))))


def sincos_positions_2d(dim: int, time_patches: int, freq_patches: int) -> Tensor:
    """(time_patches * freq_patches, dim) fixed table, time-major rows (MAE-style 2-d sin-cos).

    The first ``dim / 2`` channels encode the frequency-patch index, the last ``dim / 2`` the time-patch index;
    each half is ``[sin(pos * w), cos(pos * w)]`` with ``w_k = SINCOS_BASE ** (-k / (dim / 4))``.
    """
    if dim % 4:
        raise ValueError(f"embed_dim must be a multiple of 4 for 2-d sin-cos positions, got {dim}")
    time_index = torch.arange(time_patches, dtype=torch.float64).repeat_interleave(freq_patches)
    freq_index = torch.arange(freq_patches, dtype=torch.float64).repeat(time_patches)
    quarter = dim // 4
    frequencies = SINCOS_BASE ** (-torch.arange(quarter, dtype=torch.float64) / quarter)

    def encode(index: Tensor) -> Tensor:
        angles = index[:, None] * frequencies[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(freq_index), encode(time_index)], dim=1).float()
