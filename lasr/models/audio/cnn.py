"""A small log-mel CNN audio tower for CPU demos and tests (not a paper model).

Padding never changes the embedding: the STFT pads with zeros (so frames inside the clip do not depend on what
follows it), padded frames are zeroed before every convolution (as a convolution's own zero padding would be),
and the final time pooling only looks at frames that hold real audio. Equal in eval mode up to float rounding.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import Tensor, nn

from lasr.models.audio import AudioEncoder, check_wave_batch

NORMALIZATIONS = ("utterance", "batchnorm")
VARIANCE_EPS = 1e-5  # keeps the per-utterance normalisation finite on silent clips


class CNNEncoder(AudioEncoder):
    """Log-mel -> normalisation -> conv blocks (3x3 conv with stride 2, BatchNorm, ReLU) -> mean+max time pooling.

    Each block halves the mel and frame axes, so an 8 s clip costs a few ms on a 2-core CPU.

    Args:
        sample_rate: Hz of the input waveform.
        n_fft, hop_length: STFT size and hop in samples; n_mels: mel bins.
        channels: output channels of each conv block; ``output_dim = channels[-1]``.
        normalization: "utterance" (mean/std over each clip's real frames) or "batchnorm" (BatchNorm per mel bin,
            statistics over real frames only).
        log_offset: added to the mel power before the log.

    Shape:
        wave: (B, S) samples at ``sample_rate``; duration: (B,) seconds. Returns (B, channels[-1]).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 512,
        hop_length: int = 160,
        n_mels: int = 64,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        normalization: str = "utterance",
        log_offset: float = 1e-6,
    ):
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
        if not channels:
            raise ValueError("channels must name at least one conv block")
        self.sample_rate = sample_rate
        self.output_dim = channels[-1]
        self.hop_length = hop_length
        self.normalization = normalization
        self.log_offset = log_offset
        self.melspec = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, center=True,
            pad_mode="constant",
        )
        self.input_norm = nn.BatchNorm1d(n_mels) if normalization == "batchnorm" else None
        widths = (1, *channels)
        self.blocks = nn.ModuleList(_conv_block(c_in, c_out) for c_in, c_out in zip(widths[:-1], widths[1:]))

    def valid_frames(self, duration: Tensor, num_frames: int) -> Tensor:
        """(B,) seconds -> (B,) number of STFT frames centred inside the clip, in [1, num_frames]."""
        samples = torch.round(duration.to(torch.float64) * self.sample_rate).long()
        return (samples // self.hop_length + 1).clamp(1, num_frames)

    def log_mel(self, wave: Tensor) -> Tensor:
        """(B, S) -> (B, n_mels, T) log mel power, computed in fp32."""
        with torch.autocast(wave.device.type, enabled=False):
            return torch.log(self.melspec(wave.float()) + self.log_offset)

    def forward(self, wave: Tensor, duration: Tensor) -> Tensor:
        check_wave_batch(wave, duration)
        features = self.log_mel(wave)  # (B, F, T)
        valid = self.valid_frames(duration.to(wave.device), features.shape[-1])
        features = self._normalize(features, _frame_mask(valid, features.shape[-1])).unsqueeze(1)  # (B, 1, F, T)
        for block in self.blocks:
            features = block(features)
            valid = (valid + 1) // 2  # a stride-2 conv with padding 1 keeps ceil(T / 2) frames
            features = features * _frame_mask(valid, features.shape[-1])[:, None, None, :]
        return _masked_mean_max(features.mean(dim=2), _frame_mask(valid, features.shape[-1]))

    def _normalize(self, features: Tensor, mask: Tensor) -> Tensor:
        """(B, F, T) log-mel, (B, T) bool mask -> normalised features, zero at padded frames."""
        weights = mask[:, None, :].to(features.dtype)
        if self.input_norm is None:
            count = weights.sum(dim=(1, 2), keepdim=True) * features.shape[1]
            mean = (features * weights).sum(dim=(1, 2), keepdim=True) / count
            var = (((features - mean) * weights) ** 2).sum(dim=(1, 2), keepdim=True) / count
            return (features - mean) / torch.sqrt(var + VARIANCE_EPS) * weights
        frames = features.transpose(1, 2)  # (B, T, F)
        normalised = torch.zeros_like(frames)
        normalised[mask] = self.input_norm(frames[mask])  # statistics over real frames only
        return normalised.transpose(1, 2)


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """3x3 conv with stride 2 (halves mel bins and frames), BatchNorm, ReLU."""
    conv = nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _frame_mask(valid: Tensor, num_frames: int) -> Tensor:
    """(B,) counts -> (B, num_frames) bool, True for the first ``valid[b]`` frames."""
    return torch.arange(num_frames, device=valid.device) < valid.unsqueeze(-1)


def _masked_mean_max(features: Tensor, mask: Tensor) -> Tensor:
    """(B, C, T) features, (B, T) mask -> (B, C) mean + max over the masked frames."""
    weights = mask[:, None, :].to(features.dtype)
    mean = (features * weights).sum(dim=-1) / weights.sum(dim=-1).clamp(min=1)
    peak = features.masked_fill(~mask[:, None, :], float("-inf")).amax(dim=-1)
    return mean + peak
