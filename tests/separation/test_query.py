"""Frozen query encoders (MiniLM, CLAP text tower, retrieval checkpoint) and the caption embedding cache."""

from __future__ import annotations

import logging

import pytest
import torch
import yaml

from lasr.errors import DataError
from lasr.models.separation.query import (
    ClapTextQuery,
    HFTextQuery,
    QueryEmbeddingCache,
    RetrievalTextQuery,
    build_query_encoder,
)

TINY_CLAP = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
             "projection_dim": 24, "vocab_size": 300, "max_position_embeddings": 80}


@pytest.fixture(scope="module")
def minilm() -> HFTextQuery:
    return HFTextQuery("minilm", projection_dim=None)


def test_minilm_query_is_frozen_normalised_and_semantic(minilm):
    vectors = minilm(["a dog barks loudly", "a dog is barking", "a siren wails in the distance"])
    assert vectors.shape == (3, 384) and minilm.output_dim == 384
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(3), atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2  # real MiniLM weights
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.training  # stays in eval mode (no dropout) whatever the trainer asks
    with pytest.raises(DataError, match="empty text query"):
        minilm(["a dog", "   "])


def test_projection_to_the_separator_condition_size_is_fixed_and_seeded():
    a = HFTextQuery("minilm", projection_dim=512, projection_seed=1)
    b = build_query_encoder(a.spec())
    assert a.output_dim == 512 and a.spec()["init_args"]["projection_dim"] == 512
    assert torch.allclose(a(["a car horn"]), b(["a car horn"]))
    assert a.fingerprint() == b.fingerprint() != HFTextQuery("minilm", projection_dim=512, projection_seed=2).fingerprint()


def test_clap_without_local_weights_warns_and_gives_random_512d_like_embeddings(caplog):
    with caplog.at_level(logging.WARNING, logger="lasr.models.separation.query"):
        clap = ClapTextQuery(None, allow_random_init=True, random_config=TINY_CLAP)
    assert "RANDOM" in caplog.text
    vectors = clap(["a dog barks", "rain on a roof"])
    assert vectors.shape == (2, 24) and torch.isfinite(vectors).all()
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-5)
    from transformers import ClapTextConfig

    assert ClapTextConfig().projection_dim == 512  # the default (real) tower gives the reference's 512-d queries


def test_clap_local_path_only(tmp_path):
    with pytest.raises(Exception, match="not available locally"):
        ClapTextQuery(str(tmp_path / "no-such-model"))


def test_cache_embeds_each_string_once_and_reuses_the_file(minilm, tmp_path, caplog):
    path = tmp_path / "cache.pt"
    calls = []
    original = minilm._embed
    minilm._embed = lambda captions: (calls.append(list(captions)), original(captions))[1]
    try:
        cache = QueryEmbeddingCache(minilm, path, batch_size=2)
        assert cache.add(["a dog", "a cat", "a dog", "", "a bird"]) == 3
        assert sum(len(c) for c in calls) == 3 and max(len(c) for c in calls) == 2
        looked_up = cache.lookup(["a cat", "a dog", "a cat"])
        assert sum(len(c) for c in calls) == 3  # lookups never run the encoder
        assert torch.allclose(looked_up[0], original(["a cat"])[0] / original(["a cat"])[0].norm(), atol=1e-5)
        with caplog.at_level(logging.WARNING):
            cache.lookup(["an unseen caption"])
        assert "not pre-computed" in caplog.text and sum(len(c) for c in calls) == 4
        reloaded = QueryEmbeddingCache(minilm, path)
        assert len(reloaded) == 4 and torch.equal(reloaded.lookup(["a dog"]), cache.lookup(["a dog"]))
        assert sum(len(c) for c in calls) == 4
    finally:
        minilm._embed = original
    other = QueryEmbeddingCache(HFTextQuery("minilm", projection_dim=16), path)
    assert len(other) == 0  # another encoder: the file's vectors are not reused


def test_retrieval_checkpoint_text_tower(tmp_path):
    from lasr.models.audio.cnn import CNNEncoder
    from lasr.models.dual_encoder import DualEncoder
    from lasr.models.text import HFTextEncoder

    torch.manual_seed(0)
    dual = DualEncoder(CNNEncoder(channels=(8,)), HFTextEncoder("minilm", pooling="mean"), embed_dim=32)
    ckpt = tmp_path / "retrieval.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in dual.state_dict().items()}}, ckpt)
    config = {"model": {"class_path": "lasr.tasks.RetrievalTask", "init_args": {"model": {
        "class_path": "lasr.models.dual_encoder.DualEncoder", "init_args": {
            "embed_dim": 32,
            "audio_encoder": {"class_path": "lasr.models.audio.cnn.CNNEncoder", "init_args": {"channels": [8]}},
            "text_encoder": {"class_path": "lasr.models.text.HFTextEncoder",
                             "init_args": {"name_or_path": "minilm", "pooling": "mean"}}}}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    query = RetrievalTextQuery(str(ckpt), str(tmp_path / "config.yaml"))
    assert query.output_dim == 32 and not hasattr(query, "audio_encoder")
    dual.eval()
    with torch.no_grad():
        expected = dual.encode_text(["a kettle whistles"])
    assert torch.allclose(query(["a kettle whistles"]), expected, atol=1e-5)


def test_weights_fingerprint_does_not_depend_on_the_thread_count():
    # a float sum of the weights changed with torch's thread count, so a model trained with 2 threads was refused
    # by `lasr separate` run with 1
    query = HFTextQuery("minilm")
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = query.weights_fingerprint()
        torch.set_num_threads(2)
        assert query.weights_fingerprint() == one
    finally:
        torch.set_num_threads(threads)
