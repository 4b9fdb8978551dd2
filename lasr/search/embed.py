"""Embed audio collections with a trained dual encoder (the loop of :mod:`lasr.models.embedding`): in memory, or
into a resumable on-disk index."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from lasr.models.checkpoints import model_fingerprint
from lasr.models.dual_encoder import DualEncoder
from lasr.models.embedding import iter_audio_embeddings, progress_bar
from lasr.search.clips import DEFAULT_MAX_SECONDS, ClipRef, audio_batches, collection_digest
from lasr.search.index import EmbeddingIndex

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16
DEFAULT_SHARD_SIZE = 1024  # clips per shard: the work lost at most when a build is interrupted


def _progress(total: int, initial: int = 0) -> tqdm:
    return progress_bar(total, "embedding", "clip", initial)


def embed_refs(model: DualEncoder, refs: Sequence[ClipRef], max_seconds: float = DEFAULT_MAX_SECONDS,
               batch_size: int = DEFAULT_BATCH_SIZE, workers: int = 0,
               bar: tqdm | None = None) -> tuple[Tensor, list[int], list[tuple[int, str]]]:
    """Audio embeddings of ``refs`` (first ``max_seconds`` s of each clip).

    Returns:
        (embeddings (n_good, embed_dim) unit vectors, positions in ``refs`` of those rows,
        [(position, reason)] of the clips that could not be read, which are skipped).
    """
    rows, kept, failed = [], [], []
    own_bar = bar is None
    bar = _progress(len(refs)) if own_bar else bar
    batches = audio_batches(refs, model.audio_sample_rate, max_seconds, batch_size, workers)
    for batch, emb in iter_audio_embeddings(model, batches, bar):
        failed += batch["failed"]
        if batch["audio"] is not None:
            rows.append(emb)
            kept += batch["index"]
    if own_bar:
        bar.close()
    embeddings = torch.cat(rows) if rows else torch.empty((0, model.embed_dim))
    return embeddings, kept, failed


def build_index(model: DualEncoder, refs: Sequence[ClipRef], out: str | Path, checkpoint: str | Path,
                source: str | Path,
                max_seconds: float = DEFAULT_MAX_SECONDS, batch_size: int = DEFAULT_BATCH_SIZE,
                shard_size: int = DEFAULT_SHARD_SIZE, workers: int = 0, overwrite: bool = False) -> EmbeddingIndex:
    """Embed ``refs`` into the index folder ``out`` shard by shard; complete shards of an earlier, interrupted
    build with the same model, collection and settings are kept. Unreadable clips are recorded as failed."""
    out = Path(out)
    if overwrite and out.exists():
        EmbeddingIndex.open(out)  # refuse to delete a folder that is not an index
        shutil.rmtree(out)
    meta = {"embed_dim": model.embed_dim, **EmbeddingIndex.paths_meta(out, checkpoint, source),
            "model_fingerprint": model_fingerprint(model), "sample_rate": model.audio_sample_rate,
            "max_seconds": max_seconds,
            "collection_digest": collection_digest(refs), "count": len(refs), "shard_size": shard_size}
    index = EmbeddingIndex.create_or_resume(out, meta)
    done = index.done_shards()
    if done:
        log.info("resuming %s: %d of %d shards already complete", out, len(done), index.n_shards)
    todo = [n for n in range(index.n_shards) if n not in done]
    initial = len(refs) - sum(min(shard_size, len(refs) - n * shard_size) for n in todo)
    with _progress(len(refs), initial) as bar:
        for number in todo:
            part = refs[number * shard_size:(number + 1) * shard_size]
            embeddings, kept, failed = embed_refs(model, part, max_seconds, batch_size, workers, bar)
            index.write_shard(number, embeddings.numpy().astype(np.float32), [part[i].id for i in kept],
                              [part[i].path for i in kept], [[part[i].id, part[i].path, why] for i, why in failed])
    return index
