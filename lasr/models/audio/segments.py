"""Cut clips into fixed-length segments, embed only the segments that hold real audio, average back per clip.

Encoders pretrained on 10 s inputs (PaSST, BEATs, EAT) see a clip of up to 30 s as up to three 10 s segments.
The DCASE 2025 Task 6 baseline embeds all three for every clip and then keeps the first
``segments_per_clip(duration)`` of them; here only those segments are cut and run, which gives the same result
with less compute.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def segments_per_clip(duration: Tensor, segment_seconds: float, max_segments: int) -> Tensor:
    """Number of leading segments that a clip of ``duration`` seconds uses.

    The baseline rule with 10 s segments and 3 segments: d <= 10 -> 1, d <= 20 -> 2, otherwise 3.
    In general: 1 plus the number of boundaries ``k * segment_seconds`` (k = 1 .. max_segments - 1)
    lying strictly before ``d``; so at least 1 (also for d <= 0) and at most ``max_segments``.

    Shape:
        duration: (B,) seconds of real audio. Returns (B,) int64.
    """
    if max_segments < 1 or segment_seconds <= 0:
        raise ValueError(f"need max_segments >= 1 and segment_seconds > 0, got {max_segments}, {segment_seconds}")
    duration = torch.as_tensor(duration)
    boundaries = torch.arange(1, max_segments, device=duration.device, dtype=torch.float64) * segment_seconds
    beyond = duration.to(torch.float64).unsqueeze(-1) > boundaries  # (B, max_segments - 1)
    return 1 + beyond.sum(dim=-1)


def cut_segments(wave: Tensor, counts: Tensor, segment_samples: int) -> tuple[Tensor, Tensor]:
    """Flatten the first ``counts[b]`` segments of every clip into one batch.

    Segment ``i`` of clip ``b`` is ``wave[b, i * segment_samples : (i + 1) * segment_samples]``, zero-padded to
    ``segment_samples`` when the wave tensor is shorter; samples after the last used segment are ignored.

    Shape:
        wave: (B, S) samples; counts: (B,) from :func:`segments_per_clip`.
        Returns segments (N, segment_samples) with N = counts.sum(), clip-major order, and owner (N,) int64:
        the clip index ``b`` of each segment.
    """
    if wave.dim() != 2:
        raise ValueError(f"wave must have shape (batch, samples), got {tuple(wave.shape)}")
    counts = counts.to(device=wave.device, dtype=torch.long)
    batch, length = wave.shape
    used = int(counts.max()) if batch else 0
    needed = used * segment_samples
    wave = F.pad(wave, (0, needed - length)) if length < needed else wave[:, :needed]
    grid = wave.reshape(batch, used, segment_samples)
    keep = torch.arange(used, device=wave.device) < counts.unsqueeze(-1)  # (B, used)
    owner = torch.repeat_interleave(torch.arange(batch, device=wave.device), counts)
    return grid[keep], owner


def average_segments(embeddings: Tensor, owner: Tensor, batch_size: int) -> Tensor:
    """Mean of the segment embeddings of each clip (differentiable).

    Shape:
        embeddings: (N, D); owner: (N,) clip index in [0, batch_size). Returns (batch_size, D).
    """
    owner = owner.to(embeddings.device)
    total = embeddings.new_zeros(batch_size, embeddings.shape[-1]).index_add(0, owner, embeddings)
    counts = torch.bincount(owner, minlength=batch_size).clamp(min=1).to(embeddings.dtype)
    return total / counts.unsqueeze(-1)
