"""Audio towers: waveform batches in, one embedding per clip out.

``PaSSTEncoder`` and ``CNNEncoder`` are imported lazily (``from lasr.models.audio import PaSSTEncoder`` works),
so importing this package does not import hear21passt/timm.
"""

from __future__ import annotations

import importlib

from torch import Tensor, nn


class AudioEncoder(nn.Module):
    """Base class of the audio towers.

    Subclasses set ``sample_rate`` (Hz expected by ``forward``) and ``output_dim`` in ``__init__``.

    Shape:
        wave: (B, S) float samples at ``sample_rate``, zero padded after each clip's end.
        duration: (B,) seconds of real audio in each row.
        Returns (B, output_dim).
    """

    sample_rate: int
    output_dim: int

    def forward(self, wave: Tensor, duration: Tensor) -> Tensor:
        raise NotImplementedError


def check_wave_batch(wave: Tensor, duration: Tensor) -> None:
    """Raise ValueError unless wave is (B, S) and duration is (B,)."""
    if wave.dim() != 2 or tuple(duration.shape) != (wave.shape[0],):
        raise ValueError(
            f"expected wave (batch, samples) and duration (batch,), got {tuple(wave.shape)} and {tuple(duration.shape)}"
        )


_LAZY = {
    "PaSSTEncoder": "lasr.models.audio.passt",
    "CNNEncoder": "lasr.models.audio.cnn",
    "BEATsEncoder": "lasr.models.audio.beats",
    "EATEncoder": "lasr.models.audio.eat",
}

__all__ = ["AudioEncoder", "check_wave_batch", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
