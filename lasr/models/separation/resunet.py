"""ResUNet30: the text-conditioned mask U-Net of AudioSep and the DCASE 2024 Task 9 baseline.

Faithful to the reference (``Audio-AGI/AudioSep:models/resunet.py``), re-written:

* the network sees the mixture magnitude ``|X|`` (Hann STFT, ``center=True``, reflect padding) normalised by a
  BatchNorm per frequency bin (``bn0``); the top bin is dropped so the frequency axis halves cleanly;
* ``pre_conv`` (1x1) -> ``len(channels)`` encoder blocks (one residual conv block + average pooling: ``(2, 2)``
  except the last, ``(1, 2)``) -> a bottleneck block -> mirrored decoder blocks (BN, bias, LeakyReLU, transposed
  conv, concatenation with the skip, residual conv block) -> ``after_conv`` (1x1, 3 maps);
* output: a sigmoid magnitude mask (in [0, 1], so no bin is amplified) and a unit phasor that rotates the mixture
  phase: ``Y = relu(|X| * mask) * exp(j(angle X + angle M))``; the re-added Nyquist bin is zero;
* conditioning: every BatchNorm inside a conditioned block is followed by an additive bias ``beta = Linear(q)``
  of the query embedding ``q`` (the reference calls it FiLM but has no scale). ``film="scale_bias"`` adds a true
  FiLM scale ``(1 + gamma(q))``, zero-initialised so training starts from the reference behaviour.

Module names follow the published checkpoint (``encoder_block1.conv_block1.bn1`` ...); the reference keeps the
bias layers in a separate ``film`` module and the STFT as convolution kernels, which
:mod:`lasr.models.separation.checkpoint` maps on load. The STFT here is ``torch.stft`` (same transform, no weights).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FILM_MODES = ("bias", "scale_bias")
REFERENCE_CHANNELS = (32, 64, 128, 256, 384, 384)
MAG_FLOOR_SQUARED = 1e-10  # the reference clamps |X|^2 here before the square root (|X| >= 1e-5)
PHASOR_FLOOR_SQUARED = 1e-20  # keeps the mask phasor's norm differentiable where both maps are exactly 0
LEAKY_SLOPE = 0.01
MASK_MAPS = 3  # magnitude mask, real and imaginary part of the phase rotation


def _init_layer(layer: nn.Module) -> None:
    nn.init.xavier_uniform_(layer.weight)
    if getattr(layer, "bias", None) is not None:
        nn.init.zeros_(layer.bias)


def _init_bn(bn: nn.BatchNorm2d) -> None:
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)


class _Conditioning(nn.Module):
    """Per-channel bias (and optional scale) from the query embedding, applied after a BatchNorm.

    The layers are attributes of the owning block (``beta1``, ``gamma1`` ...) so state-dict names stay flat.
    """

    def _add_film(self, name: str, channels: int, condition_size: int, scale: bool) -> None:
        beta = nn.Linear(condition_size, channels)
        _init_layer(beta)
        self.add_module(f"beta{name}", beta)
        if scale:
            gamma = nn.Linear(condition_size, channels)
            nn.init.zeros_(gamma.weight)
            nn.init.zeros_(gamma.bias)
            self.add_module(f"gamma{name}", gamma)

    def _film(self, x: Tensor, name: str, condition: Tensor) -> Tensor:
        """x (B, C, T, F) after BatchNorm -> (1 + gamma) * x + beta, the per-channel terms from condition (B, D)."""
        gamma = getattr(self, f"gamma{name}", None)
        if gamma is not None:
            x = x * (1.0 + gamma(condition)[:, :, None, None])
        return x + getattr(self, f"beta{name}")(condition)[:, :, None, None]


class ConvBlockRes(_Conditioning):
    """BN -> film -> LeakyReLU -> 3x3 conv -> BN -> film -> LeakyReLU -> 3x3 conv, plus a residual path
    (1x1 conv with bias when the channel count changes).

    Shape:
        x: (B, in_channels, T, F); condition: (B, condition_size). Returns (B, out_channels, T, F).
    """

    def __init__(self, in_channels: int, out_channels: int, condition_size: int, momentum: float, scale: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.bn2 = nn.BatchNorm2d(out_channels, momentum=momentum)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None
        for layer in (self.conv1, self.conv2, self.shortcut):
            if layer is not None:
                _init_layer(layer)
        _init_bn(self.bn1)
        _init_bn(self.bn2)
        self._add_film("1", in_channels, condition_size, scale)
        self._add_film("2", out_channels, condition_size, scale)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        h = self.conv1(F.leaky_relu(self._film(self.bn1(x), "1", condition), LEAKY_SLOPE))
        h = self.conv2(F.leaky_relu(self._film(self.bn2(h), "2", condition), LEAKY_SLOPE))
        return (x if self.shortcut is None else self.shortcut(x)) + h


class EncoderBlock(nn.Module):
    """Residual conv block then average pooling by ``downsample`` (time, frequency).

    Returns (pooled (B, C, T / dt, F / df), skip (B, C, T, F)).
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: tuple[int, int], condition_size: int,
                 momentum: float, scale: bool):
        super().__init__()
        self.conv_block1 = ConvBlockRes(in_channels, out_channels, condition_size, momentum, scale)
        self.downsample = tuple(downsample)

    def forward(self, x: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.conv_block1(x, condition)
        pooled = F.avg_pool2d(skip, kernel_size=self.downsample) if self.downsample != (1, 1) else skip
        return pooled, skip


class DecoderBlock(_Conditioning):
    """BN -> film -> LeakyReLU -> transposed conv (kernel = stride = ``upsample``) -> concat skip -> residual block.

    ``unused_reference_layers`` creates the second BatchNorm and bias the reference builds but never uses, so that
    parameter counts and published state dicts match exactly.

    Shape:
        x: (B, in_channels, T, F); skip: (B, out_channels, T * ut, F * uf). Returns (B, out_channels, T * ut, F * uf).
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: tuple[int, int], condition_size: int,
                 momentum: float, scale: bool, unused_reference_layers: bool):
        super().__init__()
        self.conv1 = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=upsample, stride=upsample, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels, momentum=momentum)
        self.conv_block2 = ConvBlockRes(2 * out_channels, out_channels, condition_size, momentum, scale)
        _init_layer(self.conv1)
        _init_bn(self.bn1)
        self._add_film("1", in_channels, condition_size, scale)
        if unused_reference_layers:
            self.bn2 = nn.BatchNorm2d(in_channels, momentum=momentum)
            _init_bn(self.bn2)
            self._add_film("2", in_channels, condition_size, scale)

    def forward(self, x: Tensor, skip: Tensor, condition: Tensor) -> Tensor:
        x = self.conv1(F.leaky_relu(self._film(self.bn1(x), "1", condition), LEAKY_SLOPE))
        return self.conv_block2(torch.cat((x, skip), dim=1), condition)


class ResUNet30(nn.Module):
    """Text-queried separator (AudioSep / DCASE 2024 T9 baseline architecture). Mono in, mono out.

    Args:
        sample_rate: Hz of the waveforms (16000 for DCASE, 32000 for AudioSep). Not used by the maths; stored so
            checkpoints and tools can check the rate of their audio.
        n_fft: STFT size = window length in samples (1024 at 16 kHz, 2048 at 32 kHz).
        hop_length: STFT hop in samples (160 at 16 kHz, 320 at 32 kHz: 10 ms).
        condition_size: size of the query embedding (512 for CLAP).
        channels: output channels of the encoder blocks (the reference: 32, 64, 128, 256, 384, 384); the
            bottleneck keeps the last width and the decoder mirrors the list. Smaller widths give CPU demo models.
        momentum: BatchNorm momentum (reference 0.01).
        film: ``"bias"`` (reference: additive bias only) or ``"scale_bias"`` (true FiLM).
        unused_reference_layers: keep the decoder's unused BatchNorm and bias (reference layout, 26.45 M trainable
            parameters at the reference sizes). False drops them: smaller, and DDP then needs no unused-parameter
            search; published checkpoints still load (their unused tensors are ignored).

    Shape:
        mixture: (B, S) or (B, 1, S) samples at ``sample_rate``; condition: (B, condition_size).
        Returns the estimate with the mixture's shape.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 160,
        condition_size: int = 512,
        channels: Sequence[int] = REFERENCE_CHANNELS,
        momentum: float = 0.01,
        film: str = "bias",
        unused_reference_layers: bool = True,
    ):
        super().__init__()
        channels = [int(c) for c in channels]
        if film not in FILM_MODES:
            raise ValueError(f"film must be one of {FILM_MODES}, got {film!r}")
        if len(channels) < 2:
            raise ValueError(f"channels needs at least two encoder widths, got {channels}")
        if (n_fft // 2) % (2 ** len(channels)):
            raise ValueError(f"n_fft // 2 = {n_fft // 2} frequency bins cannot be halved {len(channels)} times; "
                             "use a larger n_fft or fewer channels")
        self.sample_rate, self.n_fft, self.hop_length = int(sample_rate), int(n_fft), int(hop_length)
        self.condition_size, self.channels, self.momentum = int(condition_size), channels, momentum
        self.film, self.unused_reference_layers = film, unused_reference_layers
        self.depth = len(channels)
        self.time_downsample_ratio = 2 ** (self.depth - 1)
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        self.bn0 = nn.BatchNorm2d(n_fft // 2 + 1, momentum=momentum)
        self.pre_conv = nn.Conv2d(1, channels[0], kernel_size=1)
        self._build_unet(channels, condition_size, momentum, film == "scale_bias", unused_reference_layers)
        self.after_conv = nn.Conv2d(channels[0], MASK_MAPS, kernel_size=1)
        _init_bn(self.bn0)
        _init_layer(self.pre_conv)
        _init_layer(self.after_conv)

    def _build_unet(self, channels: list[int], condition_size: int, momentum: float, scale: bool,
                    unused: bool) -> None:
        widths = [channels[0], *channels]
        for i in range(self.depth):
            down = (1, 2) if i == self.depth - 1 else (2, 2)
            self.add_module(f"encoder_block{i + 1}",
                            EncoderBlock(widths[i], widths[i + 1], down, condition_size, momentum, scale))
        self.add_module(self.bottleneck_name,
                        EncoderBlock(channels[-1], channels[-1], (1, 1), condition_size, momentum, scale))
        for i in range(self.depth):  # decoder block i+1 upsamples to the resolution of encoder block depth-i
            up = (1, 2) if i == 0 else (2, 2)
            in_ch = widths[self.depth] if i == 0 else widths[self.depth - i + 1]
            out_ch = widths[self.depth - i]  # = channels of the skip it is concatenated with
            self.add_module(f"decoder_block{i + 1}",
                            DecoderBlock(in_ch, out_ch, up, condition_size, momentum, scale, unused))

    @property
    def bottleneck_name(self) -> str:
        return f"conv_block{self.depth + 1}a"  # "conv_block7a" in the reference

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in lasr checkpoints so tools can rebuild the model)."""
        return {"sample_rate": self.sample_rate, "n_fft": self.n_fft, "hop_length": self.hop_length,
                "condition_size": self.condition_size, "channels": list(self.channels), "momentum": self.momentum,
                "film": self.film, "unused_reference_layers": self.unused_reference_layers}

    # ---- spectral front and back end ---------------------------------------------------------------------------
    @property
    def min_samples(self) -> int:
        """Shortest input the reflect-padded STFT accepts; shorter inputs are zero-padded internally."""
        return self.n_fft // 2 + 1

    def spectrogram(self, wave: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(B, S) -> magnitude, cos and sin of the phase, each (B, 1, T, n_fft // 2 + 1) with T = S // hop + 1."""
        spec = torch.stft(wave.float(), self.n_fft, self.hop_length, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True)  # (B, F, T)
        real, imag = spec.real.transpose(1, 2)[:, None], spec.imag.transpose(1, 2)[:, None]
        mag = torch.clamp(real ** 2 + imag ** 2, min=MAG_FLOOR_SQUARED).sqrt()
        return mag, real / mag, imag / mag

    def mask_maps(self, mixture: Tensor, condition: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Network output and the mixture spectrogram.

        Returns:
            maps (B, 3, T, F) pre-activation mask maps (Nyquist column zero), and mag, cos, sin (B, 1, T, F).
        """
        mag, cos, sin = self.spectrogram(mixture)
        x = self.bn0(mag.transpose(1, 3)).transpose(1, 3)  # BatchNorm per frequency bin
        frames = x.shape[2]
        pad = math.ceil(frames / self.time_downsample_ratio) * self.time_downsample_ratio - frames
        x = F.pad(x, (0, 0, 0, pad))[..., :-1]  # drop the top bin: 513 -> 512
        x = self.pre_conv(x)
        skips = []
        for i in range(self.depth):
            x, skip = getattr(self, f"encoder_block{i + 1}")(x, condition)
            skips.append(skip)
        x, _ = getattr(self, self.bottleneck_name)(x, condition)
        for i in range(self.depth):
            x = getattr(self, f"decoder_block{i + 1}")(x, skips[self.depth - 1 - i], condition)
        maps = F.pad(self.after_conv(x), (0, 1))[:, :, :frames]  # re-add the top bin as zeros, crop the padding
        return maps, mag, cos, sin

    def masked_spectrogram(self, mixture: Tensor, condition: Tensor) -> dict[str, Tensor]:
        """Output spectrogram before the inverse STFT (for the mask-bound test and diagnostics).

        Returns dict of (B, 1, T, F) tensors: ``mask`` (sigmoid, in [0, 1]), ``mixture_mag``, ``estimate_mag``
        (magnitude of the output), ``real`` and ``imag`` of the estimate.
        """
        maps, mag, cos, sin = self.mask_maps(mixture, condition)
        mask = torch.sigmoid(maps[:, :1])
        rot_real, rot_imag = torch.tanh(maps[:, 1:2]), torch.tanh(maps[:, 2:3])
        norm = torch.clamp(rot_real ** 2 + rot_imag ** 2, min=PHASOR_FLOOR_SQUARED).sqrt()
        rot_cos, rot_sin = rot_real / norm, rot_imag / norm
        out_cos = cos * rot_cos - sin * rot_sin  # cos(angle X + angle M)
        out_sin = sin * rot_cos + cos * rot_sin
        out_mag = F.relu(mag * mask)
        real, imag = out_mag * out_cos, out_mag * out_sin
        return {"mask": mask, "mixture_mag": mag, "estimate_mag": torch.hypot(real, imag), "real": real, "imag": imag}

    def forward(self, mixture: Tensor, condition: Tensor) -> Tensor:
        if mixture.dim() not in (2, 3) or (mixture.dim() == 3 and mixture.shape[1] != 1):
            raise ValueError(f"mixture must be (B, S) or (B, 1, S) samples, got {tuple(mixture.shape)}")
        if condition.dim() != 2 or condition.shape != (mixture.shape[0], self.condition_size):
            raise ValueError(f"condition must be (B, {self.condition_size}) = ({mixture.shape[0]}, "
                             f"{self.condition_size}), got {tuple(condition.shape)}")
        wave = mixture.reshape(mixture.shape[0], -1)
        length = wave.shape[-1]
        if length < self.min_samples:
            wave = F.pad(wave, (0, self.min_samples - length))
        out = self.masked_spectrogram(wave, condition.to(wave.dtype))
        with torch.autocast(wave.device.type, enabled=False):  # the inverse STFT stays in fp32 under AMP
            spec = torch.complex(out["real"][:, 0].float(), out["imag"][:, 0].float()).transpose(1, 2)  # (B, F, T)
            estimate = torch.istft(spec, self.n_fft, self.hop_length, window=self.window, center=True,
                                   length=wave.shape[-1])[:, :length]
        return estimate.reshape(mixture.shape)
