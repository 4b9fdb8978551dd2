"""Query an embedding index by text or by example audio; exact top-k in chunks."""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch import Tensor

from lasr.data.audio import load_clip
from lasr.errors import DataError
from lasr.models.dual_encoder import DualEncoder
from lasr.models.embedding import embed_texts, iter_audio_embeddings
from lasr.search.ann import FaissSearcher, SearchParams
from lasr.search.index import EmbeddingIndex
from lasr.search.topk import chunked_topk, default_chunk_rows


@dataclass(frozen=True)
class Query:
    """A text query or an example audio file (exactly one of the two)."""

    text: str | None = None
    audio: str | None = None

    def __str__(self) -> str:
        return self.text if self.text is not None else f"<audio {self.audio}>"


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float  # cosine similarity in [-1, 1]
    id: str
    path: str


def read_queries(path: str | Path) -> list[Query]:
    """A ``.jsonl`` file of ``{"text": ...}`` / ``{"audio": ...}`` lines, or any other file with one text query
    per non-empty line."""
    path = Path(path)
    if not path.is_file():
        raise DataError("queries file not found", path)
    queries = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if path.suffix != ".jsonl":
            queries.append(Query(text=line.strip()))
            continue
        try:
            item = json.loads(line)
            query = Query(text=item.get("text"), audio=item.get("audio"))
        except (json.JSONDecodeError, AttributeError) as err:
            raise DataError(f"invalid query line ({err})", path, row) from None
        if (query.text is None) == (query.audio is None):
            raise DataError('a query line needs exactly one of "text" or "audio"', path, row)
        if query.text is not None and not str(query.text).strip():
            raise DataError("empty text query", path, row)
        queries.append(query)
    if not queries:
        raise DataError("no queries in the file", path)
    return queries


def encode_queries(model: DualEncoder, queries: list[Query], max_seconds: float) -> Tensor:
    """(Q, embed_dim) unit vectors in query order; example audio uses the index's window (first ``max_seconds``
    s). An unreadable example file raises (a query is never skipped)."""
    rows: list[Tensor | None] = [None] * len(queries)
    texts = [i for i, query in enumerate(queries) if query.text is not None]
    for i, emb in zip(texts, embed_texts(model, [queries[i].text for i in texts])):
        rows[i] = emb

    def audio_batches():
        for i, query in enumerate(queries):
            if query.text is None:
                wave, duration = load_clip(query.audio, model.audio_sample_rate, max_seconds)
                yield {"position": i, "audio": wave[None], "duration": torch.tensor([duration])}

    for batch, emb in iter_audio_embeddings(model, audio_batches()):
        rows[batch["position"]] = emb[0]
    return torch.stack(rows)


def _chunks(index: EmbeddingIndex, ids: list[str], paths: list[str], chunk_rows: int) -> Iterator[Tensor]:
    for shard in index.shards():
        ids += shard.ids
        paths += shard.paths
        for start in range(0, len(shard.ids), chunk_rows):
            with warnings.catch_warnings():  # read-only memory map: torch warns, but nothing writes to it
                warnings.simplefilter("ignore", UserWarning)
                chunk = torch.from_numpy(shard.embeddings[start:start + chunk_rows])
            yield chunk


def search_index(index: EmbeddingIndex, queries: Tensor, k: int = 10,
                 chunk_rows: int | None = None) -> list[list[Hit]]:
    """Top ``k`` clips of ``index`` for each of the (Q, embed_dim) ``queries``, streaming ``chunk_rows`` rows at
    a time from the memory-mapped shards (default :func:`~lasr.search.topk.default_chunk_rows`)."""
    chunk_rows = chunk_rows or default_chunk_rows(index.meta["embed_dim"])
    ids: list[str] = []
    paths: list[str] = []
    scores, rows = chunked_topk(queries, _chunks(index, ids, paths, chunk_rows), k)
    return [[Hit(rank + 1, float(s), ids[r], paths[r]) for rank, (s, r) in enumerate(zip(qs.tolist(), qr.tolist()))]
            for qs, qr in zip(scores, rows)]


def search_faiss_index(index: EmbeddingIndex, queries: Tensor, k: int, kind: str,
                       params: SearchParams = SearchParams()) -> list[list[Hit]]:
    """Top ``k`` clips of ``index`` for each of the (Q, embed_dim) ``queries`` through its faiss ``kind`` index
    (built by ``lasr embed --faiss``); scores are exact cosines of the candidates found."""
    searcher = FaissSearcher(index, kind)
    scores, rows = searcher.search(queries, k, params)
    return [[Hit(rank + 1, float(s), searcher.ids[r], searcher.paths[r])
             for rank, (s, r) in enumerate(zip(qs.tolist(), qr.tolist())) if r >= 0] for qs, qr in zip(scores, rows)]


def hits_to_json(queries: list[Query], hits: list[list[Hit]]) -> str:
    return json.dumps([{"query": asdict(q), "results": [asdict(h) for h in hs]} for q, hs in zip(queries, hits)],
                      indent=1)
