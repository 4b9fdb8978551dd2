"""Helpers shared by the Kaldi-fbank frontends of BEATs and EAT."""

from __future__ import annotations

import torch
from torch import Tensor


def real_samples_per_segment(
    duration: Tensor, counts: Tensor, segment_samples: int, sample_rate: int
) -> Tensor:
    """Samples of real audio in each segment cut by :func:`lasr.models.audio.segments.cut_segments`.

    Segment ``i`` of a clip of ``d`` seconds holds ``round(d * sample_rate) - i * segment_samples`` real samples,
    clipped to ``[0, segment_samples]``; the rest of it is zero padding.

    Shape:
        duration: (B,) seconds; counts: (B,) segments per clip. Returns (N,) int64, N = counts.sum(), in the
        clip-major order of ``cut_segments``.
    """
    counts = counts.to(torch.long)
    clip_samples = torch.round(duration.to(torch.float64) * sample_rate).long().to(counts.device)
    first_of_clip = torch.repeat_interleave(torch.cumsum(counts, dim=0) - counts, counts)  # (N,) row of segment 0
    index_in_clip = torch.arange(first_of_clip.numel(), device=counts.device) - first_of_clip
    real = torch.repeat_interleave(clip_samples, counts) - index_in_clip * segment_samples
    return real.clamp(0, segment_samples)


def kaldi_frames(num_samples: Tensor | int, window_samples: int, shift_samples: int) -> Tensor:
    """Frames Kaldi (``snip_edges=True``) computes from ``num_samples``: whole windows only, 0 if too short."""
    num_samples = torch.as_tensor(num_samples)
    frames = (num_samples - window_samples).div(shift_samples, rounding_mode="floor") + 1
    return frames.clamp(min=0)
