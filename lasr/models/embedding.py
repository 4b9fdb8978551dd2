"""The one embedding loop: clips and caption strings through a trained dual encoder (eval, no gradients).

Every tool that embeds with a dual encoder uses it: ``lasr teachers`` and ``lasr ensemble`` (manifest clips),
``lasr embed`` / ``lasr zeroshot`` and search by example audio (collections whose unreadable clips are skipped;
their batches come from :func:`lasr.search.clips.audio_batches`). Batches are moved to the model's device and run
under fp16 autocast on CUDA (as SALSA embeds its teachers); results are (B, E) float32 unit vectors on the CPU.
Progress goes to a tqdm bar given by the caller (:func:`progress_bar`); resumable shards are the callers' (teacher
store, search index), each shard one call of this loop.

Manifest clips are read like evaluation clips (deterministic crop from the start, zero padded), at the model's
own sample rate, so models with different audio encoders and rates can embed the same manifest.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from lasr.data.checks import check_device
from lasr.data.datasets import ClipDataset, collate_clips
from lasr.data.manifest import ClipRecord
from lasr.models.dual_encoder import DualEncoder
from lasr.utils.progress import progress

DEFAULT_SECONDS = 30.0  # DCASE 2025 baseline crop when the model's config does not say
TEXT_BATCH_SIZE = 64


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return check_device(device)


def _autocast(device: torch.device):
    """fp16 autocast on CUDA; nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _device(model: DualEncoder) -> torch.device:
    return next(model.parameters()).device


def progress_bar(total: int, desc: str = "embedding", unit: str = "item", initial: int = 0,
                 enabled: bool | None = None) -> tqdm:
    """A tqdm bar on stderr (:func:`lasr.utils.progress.progress`): live on a terminal, periodic plain lines
    in a log; ``enabled=False`` silences it."""
    return progress(total=total, desc=desc, unit=unit, initial=initial, enabled=enabled is not False)


@torch.no_grad()
def iter_audio_embeddings(model: DualEncoder, batches: Iterable[dict[str, Any]],
                          bar: tqdm | None = None) -> Iterator[tuple[dict[str, Any], Tensor]]:
    """Yield ``(batch, (B, E) float32 unit vectors on CPU)`` for each batch, in order.

    Args:
        batches: dicts with ``audio`` (B, S) at ``model.audio_sample_rate`` Hz (or ``None``: nothing readable in
            this batch, yields a (0, E) tensor) and ``duration`` (B,) seconds; an optional ``failed`` list
            (clips skipped by the reader) is counted by the bar too.
        bar: progress bar advanced by the clips of each batch.
    """
    device = _device(model)
    for batch in batches:
        if batch["audio"] is None:
            emb = torch.empty(0, model.embed_dim)
        else:
            with _autocast(device):
                emb = model.encode_audio(batch["audio"].to(device), batch["duration"].to(device))
            emb = emb.float().cpu()
        if bar is not None:
            bar.update(emb.shape[0] + len(batch.get("failed") or ()))
        yield batch, emb


def clip_batches(records: Sequence[ClipRecord], sample_rate: int, seconds: float, batch_size: int = 32,
                 num_workers: int = 0, min_seconds: float = 0.0) -> DataLoader:
    """Batches of manifest clips in record order (crop from the start, zero padded). A bad audio file raises
    :class:`lasr.errors.AudioError` naming it (no silent substitution: the keys must match the records)."""
    dataset = ClipDataset(records, sample_rate, seconds, min_seconds, strict=True)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_clips)


def iter_clip_embeddings(
    model: DualEncoder, records: Sequence[ClipRecord], seconds: float, batch_size: int = 32,
    num_workers: int = 0, min_seconds: float = 0.0, bar: tqdm | None = None,
) -> Iterator[tuple[list[str], Tensor]]:
    """Yield (clip keys ``dataset/id``, (B, E) float32 unit vectors on CPU) batch by batch, in record order."""
    batches = clip_batches(records, model.audio_sample_rate, seconds, batch_size, num_workers, min_seconds)
    for batch, emb in iter_audio_embeddings(model, batches, bar):
        yield [f"{name}/{clip_id}" for name, clip_id in zip(batch["dataset"], batch["audio_id"])], emb


def embed_clips(model: DualEncoder, records: Sequence[ClipRecord], seconds: float, batch_size: int = 32,
                num_workers: int = 0, bar: tqdm | None = None) -> Tensor:
    """(N, E) float32 embeddings of all clips, in record order."""
    parts = [emb for _, emb in iter_clip_embeddings(model, records, seconds, batch_size, num_workers, bar=bar)]
    return torch.cat(parts) if parts else torch.empty(0, model.embed_dim)


@torch.no_grad()
def embed_texts(model: DualEncoder, texts: Sequence[str], batch_size: int = TEXT_BATCH_SIZE,
                bar: tqdm | None = None) -> Tensor:
    """(T, E) float32 unit vectors on CPU for T caption strings (model's own text cleaning applies)."""
    device = _device(model)
    parts = []
    for start in range(0, len(texts), batch_size):
        with _autocast(device):
            parts.append(model.encode_text(list(texts[start:start + batch_size])).float().cpu())
        if bar is not None:
            bar.update(parts[-1].shape[0])
    if not parts:
        return torch.empty(0, model.embed_dim)
    return torch.cat(parts)
