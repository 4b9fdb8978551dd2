"""faiss indexes beside an embedding index: flat equals the exact search, approximate ones find the true
neighbours on clustered data and report true cosines, stale or missing files are clear errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("faiss")

from lasr.search.ann import FaissSearcher, FaissSpec, SearchParams, build_faiss, read_faiss  # noqa: E402
from lasr.search.index import EmbeddingIndex, EmbeddingIndexError  # noqa: E402
from lasr.search.topk import chunked_topk, split_rows  # noqa: E402

DIM, CLIPS, SHARD = 32, 3000, 1000


def _clustered(rows: int, seed: int, centres: np.ndarray) -> np.ndarray:
    """Unit vectors near random cluster centres, like embeddings of clips of a few hundred kinds of sound."""
    rng = np.random.default_rng(seed)
    picked = centres[rng.integers(0, len(centres), rows)]
    vectors = picked + 0.35 * rng.standard_normal((rows, centres.shape[1])) / np.sqrt(centres.shape[1])
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered_index(tmp_path_factory):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((200, DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = _clustered(CLIPS, 1, centres)
    root = tmp_path_factory.mktemp("ann") / "index"
    meta = {"embed_dim": DIM, "count": CLIPS, "shard_size": SHARD, "model_fingerprint": "x", "checkpoint": "x",
            "sample_rate": 8000, "max_seconds": 1.0, "source": "synthetic", "collection_digest": "d"}
    index = EmbeddingIndex.create_or_resume(root, meta)
    for number, start in enumerate(range(0, CLIPS, SHARD)):
        ids = [f"clip{i}" for i in range(start, start + SHARD)]
        index.write_shard(number, vectors[start:start + SHARD], ids, ids, [])
    queries = torch.from_numpy(_clustered(50, 2, centres))
    return EmbeddingIndex.open(root), torch.from_numpy(vectors), queries


def _exact(vectors, queries, k):
    return chunked_topk(queries, split_rows(vectors, 700), k)


def test_flat_faiss_equals_the_exact_search(clustered_index):
    index, vectors, queries = clustered_index
    build_faiss(index, FaissSpec(kind="flat"))
    scores, rows = FaissSearcher(EmbeddingIndex.open(index.root), "flat").search(queries, 10)
    expected_scores, expected_rows = _exact(vectors, queries, 10)
    assert torch.equal(rows, expected_rows)
    assert torch.allclose(scores, expected_scores, atol=1e-5)


@pytest.mark.parametrize("spec", [FaissSpec(kind="hnsw", hnsw_m=16), FaissSpec(kind="ivfpq", nlist=32, pq_m=8)])
def test_approximate_indexes_recall_the_true_neighbours_with_true_scores(clustered_index, spec):
    index, vectors, queries = clustered_index
    build_faiss(index, spec)
    reopened = EmbeddingIndex.open(index.root)
    assert reopened.meta["faiss"][spec.kind]["count"] == CLIPS
    scores, rows = FaissSearcher(reopened, spec.kind).search(queries, 10, SearchParams(ef_search=64, nprobe=8))
    _, expected_rows = _exact(vectors, queries, 10)
    recall = np.mean([len(set(got) & set(want)) / 10 for got, want in zip(rows.tolist(), expected_rows.tolist())])
    assert recall >= 0.9, recall
    true_scores = (vectors[rows] * queries[:, None, :]).sum(-1)
    assert torch.allclose(scores, true_scores, atol=1e-5)  # re-scored exactly, best first
    assert torch.all(scores[:, :-1] >= scores[:, 1:])


def test_a_missing_or_stale_faiss_index_is_a_clear_error(clustered_index, tmp_path):
    shared, vectors, _ = clustered_index
    shutil.copytree(shared.root, tmp_path / "copy")
    index = EmbeddingIndex.open(tmp_path / "copy")
    with pytest.raises(EmbeddingIndexError, match="no faiss 'nosuch' index here"):
        read_faiss(index, "nosuch")
    build_faiss(index, FaissSpec(kind="flat"))
    reopened = EmbeddingIndex.open(index.root)
    ids = [f"extra{i}" for i in range(5)]
    reopened.meta["count"] = CLIPS + 5
    reopened.write_shard(CLIPS // SHARD, vectors[:5].numpy(), ids, ids, [])
    with pytest.raises(EmbeddingIndexError, match="holds 3000 rows but the shards hold 3005"):
        read_faiss(reopened, "flat")
