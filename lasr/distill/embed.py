"""Embed clips and caption strings with a trained dual encoder (eval mode, no gradients).

Clips are read like evaluation clips (deterministic crop from the start, zero padded), at the model's own sample
rate, so models with different audio encoders and rates can embed the same manifest.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from lasr.data.datasets import ClipDataset, collate_clips
from lasr.data.manifest import ClipRecord
from lasr.models.dual_encoder import DualEncoder
from lasr.utils.checks import check_device

DEFAULT_SECONDS = 30.0  # DCASE 2025 baseline crop when the model's config does not say


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


def _autocast(device: torch.device):
    """fp16 autocast on CUDA (as SALSA embeds its teachers); nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


@torch.no_grad()
def iter_clip_embeddings(
    model: DualEncoder, records: Sequence[ClipRecord], seconds: float, batch_size: int = 32,
    num_workers: int = 0, min_seconds: float = 0.0,
) -> Iterator[tuple[list[str], Tensor]]:
    """Yield (clip keys ``dataset/id``, (B, E) float32 unit vectors on CPU) batch by batch, in record order.

    A bad audio file raises :class:`lasr.errors.AudioError` naming it (no silent substitution: the keys must
    match the records).
    """
    device = next(model.parameters()).device
    dataset = ClipDataset(records, model.audio_sample_rate, seconds, min_seconds, strict=True)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_clips)
    for batch in loader:
        with _autocast(device):
            emb = model.encode_audio(batch["audio"].to(device), batch["duration"].to(device))
        keys = [f"{dataset_name}/{clip_id}" for dataset_name, clip_id in zip(batch["dataset"], batch["audio_id"])]
        yield keys, emb.float().cpu()


@torch.no_grad()
def embed_texts(model: DualEncoder, texts: Sequence[str], batch_size: int = 64) -> Tensor:
    """(T, E) float32 unit vectors on CPU for T caption strings (model's own text cleaning applies)."""
    device = next(model.parameters()).device
    parts = []
    for start in range(0, len(texts), batch_size):
        with _autocast(device):
            parts.append(model.encode_text(list(texts[start:start + batch_size])).float().cpu())
    if not parts:
        return torch.empty(0, model.embed_dim)
    return torch.cat(parts)


def embed_clips(model: DualEncoder, records: Sequence[ClipRecord], seconds: float, batch_size: int = 32,
                num_workers: int = 0) -> Tensor:
    """(N, E) float32 embeddings of all clips, in record order."""
    parts = [emb for _, emb in iter_clip_embeddings(model, records, seconds, batch_size, num_workers)]
    return torch.cat(parts) if parts else torch.empty(0, model.embed_dim)
