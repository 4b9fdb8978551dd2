"""Exact top-k similarity search over embeddings that arrive in chunks (bounded memory for any collection size)."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

DEFAULT_CHUNK_BYTES = 256 * 2**20  # float32 collection rows scored at once; fewer, larger chunks are faster


def default_chunk_rows(dim: int) -> int:
    """Rows of ``dim`` float32 values in :data:`DEFAULT_CHUNK_BYTES` (262 144 at 256-d, 65 536 at 1024-d)."""
    return max(1, DEFAULT_CHUNK_BYTES // (4 * dim))


def chunked_topk(queries: Tensor, chunks: Iterable[Tensor], k: int) -> tuple[Tensor, Tensor]:
    """Best ``k`` dot-product matches of every query over a collection given as consecutive row chunks.

    Args:
        queries: (Q, E) query embeddings (unit vectors for cosine similarity).
        chunks: (n_i, E) blocks of the collection in order; row numbers count across blocks.
        k: results per query (fewer when the collection is smaller).

    Returns:
        (scores, rows): both (Q, k') with k' = min(k, N), best first; ``rows`` are global row numbers (int64).
    """
    queries = queries.float()
    best_scores = queries.new_empty((queries.shape[0], 0))
    best_rows = torch.empty((queries.shape[0], 0), dtype=torch.long)
    offset = 0
    for chunk in chunks:
        chunk = torch.as_tensor(chunk).float()
        if chunk.shape[0] == 0:
            continue
        if chunk.shape[1] != queries.shape[1]:
            raise ValueError(f"collection embeddings have size {chunk.shape[1]}, queries {queries.shape[1]}")
        scores = queries @ chunk.T  # (Q, n)
        local = scores.topk(min(k, chunk.shape[0]), dim=1)  # merge only each chunk's best k
        merged_scores = torch.cat([best_scores, local.values], dim=1)
        merged_rows = torch.cat([best_rows, local.indices + offset], dim=1)
        top = merged_scores.topk(min(k, merged_scores.shape[1]), dim=1)
        best_scores, best_rows = top.values, merged_rows.gather(1, top.indices)
        offset += chunk.shape[0]
    return best_scores, best_rows


def split_rows(embeddings: Tensor, chunk_rows: int | None = None) -> Iterable[Tensor]:
    """(N, E) -> consecutive (<= chunk_rows, E) views (default :func:`default_chunk_rows`)."""
    chunk_rows = chunk_rows or default_chunk_rows(embeddings.shape[1])
    for start in range(0, embeddings.shape[0], chunk_rows):
        yield embeddings[start:start + chunk_rows]
