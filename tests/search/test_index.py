"""Embed/search plumbing with a constructed model: round trip, skipped files, resume, model mismatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lasr.search.clips import list_collection
from lasr.search.embed import build_index
from lasr.search.index import EmbeddingIndex, EmbeddingIndexError
from lasr.search.search import Query, encode_queries, search_index
from lasr.search.topk import chunked_topk, split_rows
from lasr.models.checkpoints import model_fingerprint

from .toy import N_BANDS, toy_model, write_tones


@pytest.mark.parametrize("chunk_rows", [1, 3, 7, 1000])
def test_chunked_topk_equals_full_topk(chunk_rows):
    gen = torch.Generator().manual_seed(0)
    collection, queries = torch.randn(50, 8, generator=gen), torch.randn(4, 8, generator=gen)
    scores, rows = chunked_topk(queries, split_rows(collection, chunk_rows), k=5)
    expected = (queries @ collection.T).topk(5, dim=1)
    assert torch.allclose(scores, expected.values)
    assert torch.equal(rows, expected.indices)


def test_chunked_topk_with_fewer_rows_than_k():
    scores, rows = chunked_topk(torch.eye(2), [torch.eye(2)], k=10)
    assert rows.tolist() == [[0, 1], [1, 0]]


@pytest.fixture()
def tone_index(tmp_path):
    write_tones(tmp_path / "tones")
    model = toy_model()
    refs = list_collection(tmp_path / "tones")
    index = build_index(model, refs, tmp_path / "index", checkpoint="toy", source="tones", shard_size=3,
                        batch_size=2)
    return model, refs, index


def test_round_trip_text_and_example_queries(tone_index, tmp_path):
    model, refs, index = tone_index
    assert index.complete and index.n_shards == 3  # 9 files in shards of 3
    queries = [Query(text=f"a tone in band {b}") for b in range(N_BANDS)]
    queries.append(Query(audio=str(tmp_path / "tones" / "tone_5.wav")))
    hits = search_index(index, encode_queries(model, queries, max_seconds=10.0), k=3, chunk_rows=2)
    assert [h[0].id for h in hits] == [f"tone_{b}.wav" for b in range(N_BANDS)] + ["tone_5.wav"]
    assert hits[-1][0].score == pytest.approx(1.0, abs=1e-5)
    assert all(h[0].score > h[1].score for h in hits)


def test_unreadable_file_is_skipped_and_listed(tone_index):
    _, refs, index = tone_index
    shards = list(index.shards())
    assert sum(len(s.ids) for s in shards) == N_BANDS
    failed = [f for s in shards for f in s.failed]
    assert [f[0] for f in failed] == ["broken.wav"] and "unreadable" in failed[0][2]


def test_resume_after_interruption_reuses_finished_shards(tmp_path):
    write_tones(tmp_path / "tones")
    refs = list_collection(tmp_path / "tones")
    model = toy_model()
    reference = build_index(model, refs, tmp_path / "ref", "toy", "tones", shard_size=3, batch_size=3)

    calls = {"n": 0}
    encode = model.encode_audio

    def flaky(wave, duration):
        calls["n"] += 1
        if calls["n"] == 2:  # second shard: simulate Ctrl-C / a killed job
            raise KeyboardInterrupt
        return encode(wave, duration)

    model.encode_audio = flaky
    with pytest.raises(KeyboardInterrupt):
        build_index(model, refs, tmp_path / "idx", "toy", "tones", shard_size=3, batch_size=3)
    partial = EmbeddingIndex.open(tmp_path / "idx")
    assert partial.done_shards() == {0} and not partial.complete
    assert not list((tmp_path / "idx").glob(".*.tmp"))  # no half-written files left behind
    calls["n"] = 10
    resumed = build_index(model, refs, tmp_path / "idx", "toy", "tones", shard_size=3, batch_size=3)
    assert calls["n"] == 12  # only shards 1 and 2 were embedded again
    for a, b in zip(resumed.shards(), reference.shards()):
        assert a.ids == b.ids and np.allclose(a.embeddings, b.embeddings)


def test_index_refuses_other_model_or_collection(tone_index, tmp_path):
    model, refs, index = tone_index
    index.check_model(model_fingerprint(model), N_BANDS, "toy")
    other = toy_model()
    with torch.no_grad():
        other.audio_projection.weight.mul_(2.0)
    with pytest.raises(EmbeddingIndexError, match="another model"):
        index.check_model(model_fingerprint(other), N_BANDS, "other.ckpt")
    with pytest.raises(EmbeddingIndexError, match="1024-d"):
        index.check_model(model_fingerprint(model), 1024, "big.ckpt")
    with pytest.raises(EmbeddingIndexError, match="collection_digest"):
        build_index(model, refs[:4], tmp_path / "index", "toy", "tones", shard_size=3)
