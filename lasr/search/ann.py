"""faiss indexes over a finished embedding index: exact ``flat``, approximate ``hnsw`` and ``ivfpq``.

The faiss index lives in the index folder beside the shards (``faiss-<kind>.index``, written atomically) and
its settings in ``index.json`` under ``"faiss"``; faiss row ``r`` is row ``r`` of the shards read in order, the
numbering the exact search uses too.  Approximate candidates are re-scored exactly from the memory-mapped
shards (``rerank`` x k of them), so the scores printed are true cosines and only the candidate set is
approximate.  Inner product on unit vectors throughout (cosine similarity).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lasr.errors import DataError
from lasr.search.index import META_NAME, EmbeddingIndex, EmbeddingIndexError, Shard
from lasr.utils.atomic import atomic_open, atomic_path

KINDS = ("flat", "hnsw", "ivfpq")
ADD_ROWS = 65_536  # rows handed to faiss at once while building


@dataclass(frozen=True)
class FaissSpec:
    """What to build. faiss' own defaults where it has them; the rest are common starting points.

    Args:
        kind: ``flat`` (exact), ``hnsw`` (graph) or ``ivfpq`` (inverted lists of product-quantised codes).
        hnsw_m: neighbours per node of the HNSW graph.
        ef_construction: HNSW candidate list while building.
        nlist: IVF cells (default: about sqrt(N), at least 1).
        pq_m: PQ sub-quantisers (must divide the embedding size; default: size / 16, i.e. 4 bytes per 64 dims).
        pq_bits: bits per sub-quantiser code.
        train_rows: rows sampled to train IVF-PQ (default: min(N, 40 * max(nlist, 2**pq_bits)): faiss wants
            >= 39 rows per IVF cell and per PQ centroid).
    """

    kind: str = "hnsw"
    hnsw_m: int = 32
    ef_construction: int = 40  # faiss' default
    nlist: int | None = None
    pq_m: int | None = None
    pq_bits: int = 8
    train_rows: int | None = None


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        raise DataError("faiss is not installed: pip install faiss-cpu (or faiss-gpu)") from None
    return faiss


def faiss_path(index: EmbeddingIndex, kind: str) -> Path:
    return index.root / f"faiss-{kind}.index"


class _ShardRows:
    """The complete shards' rows as one numbering (row r of shard i is row offsets[i] + r), never concatenated."""

    def __init__(self, shards: list[Shard], root: Path):
        self.pieces = [shard.embeddings for shard in shards]  # memory-mapped (n_i, D) float32
        if not self.pieces:
            raise EmbeddingIndexError("the index has no complete shard", root)
        self.offsets = np.cumsum([0] + [len(piece) for piece in self.pieces])
        self.count = int(self.offsets[-1])

    def take(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), D) float32 copies of the given global rows (any order)."""
        shard = np.searchsorted(self.offsets, rows, side="right") - 1
        out = np.empty((len(rows), self.pieces[0].shape[1]), dtype=np.float32)
        for number in np.unique(shard):
            here = shard == number
            out[here] = self.pieces[number][rows[here] - self.offsets[number]]
        return out

    def chunks(self, size: int):
        for piece in self.pieces:
            for start in range(0, len(piece), size):
                yield np.ascontiguousarray(piece[start:start + size], dtype=np.float32)


def _make_index(spec: FaissSpec, dim: int, count: int):
    faiss = _faiss()
    if spec.kind == "flat":
        return faiss.IndexFlatIP(dim), {}
    if spec.kind == "hnsw":
        built = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        built.hnsw.efConstruction = spec.ef_construction
        return built, {"hnsw_m": spec.hnsw_m, "ef_construction": spec.ef_construction}
    if spec.kind == "ivfpq":
        nlist = spec.nlist or max(1, int(count**0.5))
        pq_m = spec.pq_m or max(1, dim // 16)
        if dim % pq_m:
            raise DataError(f"pq_m {pq_m} does not divide the embedding size {dim}")
        # faiss' Python constructor keeps a reference to the quantizer, so it lives as long as the index
        built = faiss.IndexIVFPQ(faiss.IndexFlatIP(dim), dim, nlist, pq_m, spec.pq_bits, faiss.METRIC_INNER_PRODUCT)
        return built, {"nlist": nlist, "pq_m": pq_m, "pq_bits": spec.pq_bits}
    raise DataError(f"unknown faiss index kind {spec.kind!r}; choose one of {', '.join(KINDS)}")


def build_faiss(index: EmbeddingIndex, spec: FaissSpec, seed: int = 0) -> Path:
    """Build ``spec`` over every complete shard of ``index``; write it and record it in ``index.json``."""
    faiss = _faiss()
    if not index.complete:
        raise EmbeddingIndexError(f"the index is incomplete ({len(index.done_shards())} of {index.n_shards} "
                                  "shards); finish it with `lasr embed` before building a faiss index", index.root)
    rows = _ShardRows(list(index.shards()), index.root)
    built, params = _make_index(spec, index.meta["embed_dim"], rows.count)
    if spec.kind == "ivfpq":
        n_train = min(rows.count, spec.train_rows or 40 * max(params["nlist"], 2 ** params["pq_bits"]))
        if n_train < params["nlist"]:
            raise DataError(f"{n_train} rows cannot train {params['nlist']} IVF cells; lower nlist")
        sample = np.random.default_rng(seed).choice(rows.count, n_train, replace=False)
        built.train(rows.take(np.sort(sample)))
    for chunk in rows.chunks(ADD_ROWS):
        built.add(chunk)
    target = faiss_path(index, spec.kind)
    with atomic_path(target) as tmp:
        faiss.write_index(built, str(tmp))
    entries = dict(index.meta.get("faiss", {}))
    entries[spec.kind] = {"file": target.name, "count": rows.count, **params}
    index.meta["faiss"] = entries
    with atomic_open(index.root / META_NAME, "w", encoding="utf-8") as handle:
        json.dump(index.meta, handle, indent=1)
    return target


def read_faiss(index: EmbeddingIndex, kind: str, count: int | None = None):
    """The faiss index of ``kind`` recorded in ``index.json``, checked against the shards' row count
    (``count``, or read from the shards' ``.json`` when not given)."""
    entry = index.meta.get("faiss", {}).get(kind)
    if entry is None:
        built = ", ".join(index.meta.get("faiss", {})) or "none"
        raise EmbeddingIndexError(f"no faiss {kind!r} index here (built: {built}); build it with "
                                  f"`lasr embed ... --faiss {kind}`", index.root)
    path = index.root / entry["file"]
    if not path.is_file():
        raise EmbeddingIndexError(f"faiss index file is missing: {path}", index.root)
    built = _faiss().read_index(str(path))
    if count is None:
        count = sum(len(info["ids"]) for info in index.shard_infos())
    if built.ntotal != count:
        raise EmbeddingIndexError(f"faiss index holds {built.ntotal} rows but the shards hold {count}; rebuild it "
                                  f"with `lasr embed ... --faiss {kind}`", path)
    return built


@dataclass(frozen=True)
class SearchParams:
    """Query-time knobs: HNSW ``ef_search``, IVF ``nprobe``, candidates re-scored per result (``rerank``).
    Starting points, not tuned: raise them for recall, lower them for speed."""

    ef_search: int = 64
    nprobe: int = 16
    rerank: int = 4


class FaissSearcher:
    """Queries one faiss index of an embedding index; approximate candidates are re-scored from the shards.

    The shards are listed once, when the searcher is made: ``ids`` and ``paths`` (one per faiss row) and the
    memory maps serve every query after that.
    """

    def __init__(self, index: EmbeddingIndex, kind: str):
        self.index, self.kind = index, kind
        shards = list(index.shards())
        self.ids = [clip_id for shard in shards for clip_id in shard.ids]
        self.paths = [path for shard in shards for path in shard.paths]
        self.built = read_faiss(index, kind, count=len(self.ids))
        self.exact = isinstance(self.built, _faiss().IndexFlat)
        self.rows = None if self.exact else _ShardRows(shards, index.root)

    def search(self, queries: Tensor, k: int, params: SearchParams = SearchParams()) -> tuple[Tensor, Tensor]:
        """Top ``k`` (scores, rows) of each of the (Q, D) ``queries``, best first, rows counted across shards;
        ``-inf`` / ``-1`` pad where the index holds fewer than ``k`` rows."""
        if hasattr(self.built, "hnsw"):
            self.built.hnsw.efSearch = max(params.ef_search, k * params.rerank)
        if hasattr(self.built, "nprobe"):
            self.built.nprobe = params.nprobe
        queries = queries.float()
        n_candidates = min(self.built.ntotal, k if self.exact else k * params.rerank)
        scores, rows = self.built.search(np.ascontiguousarray(queries.numpy()), n_candidates)
        if self.exact:
            return torch.from_numpy(scores), torch.from_numpy(rows)
        return self._rerank(queries, torch.from_numpy(rows), k)

    def _rerank(self, queries: Tensor, candidates: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """Exact scores of the candidate rows (Q, C) (-1 = none), and the best ``k`` of them."""
        valid = candidates >= 0
        vectors = torch.from_numpy(self.rows.take(candidates.clamp(min=0).reshape(-1).numpy()))
        scores = (vectors.view(*candidates.shape, -1) * queries[:, None, :]).sum(-1)
        scores = scores.masked_fill(~valid, float("-inf"))
        top = scores.topk(min(k, candidates.shape[1]), dim=1)
        return top.values, candidates.gather(1, top.indices)
