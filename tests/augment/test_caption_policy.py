"""AugmentedCaptionPolicy: proportions over many draws, per-kind weights, evaluation, the DataModule path."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from lasr.data.caption_table import write_table
from lasr.data.captions import AugmentedCaptionPolicy
from lasr.data.manifest import ClipRecord

RECORD = ClipRecord(id="a.wav", audio_path="/a.wav", duration=1.0, sample_rate=16000,
                    captions=("a dog barks", "a cat meows"), dataset="t")


def _row(kind, text, slot=0, source="a dog barks", clip_key="t/a.wav"):
    return {"kind": kind, "clip_key": clip_key, "slot": slot, "source": source, "text": text, "custom_id": text,
            "model": "m", "template": "x@v1", "sample_index": 0, "extra": {}}


@pytest.fixture(params=["jsonl", "csv"])
def table(tmp_path, request):
    path = tmp_path / f"captions.{request.param}"
    write_table([_row("paraphrase", "p1"), _row("paraphrase", "p2"), _row("rewrite", "r1"),
                 _row("mix", "ignored mix caption"), _row("rewrite", "other slot", slot=1, source="a cat meows")],
                path)
    return path


def _draws(policy, n=20000, seed=0, slot=0):
    rng = np.random.default_rng(seed)
    return collections.Counter(policy.caption(RECORD, slot, rng) for _ in range(n))


def test_reclap_default_proportions(table):
    counts = _draws(AugmentedCaptionPolicy(str(table)))
    n = sum(counts.values())
    assert set(counts) == {"a dog barks", "p1", "p2", "r1"}  # the mix row is not a kind it serves
    assert counts["a dog barks"] / n == pytest.approx(0.4, abs=0.015)
    for variant in ("p1", "p2", "r1"):  # variant chosen uniformly: 0.6 / 3 each
        assert counts[variant] / n == pytest.approx(0.2, abs=0.015)


def test_kind_weights_and_p_original(table):
    policy = AugmentedCaptionPolicy(str(table), p_original=0.2, kind_weights={"paraphrase": 1, "rewrite": 3})
    counts = _draws(policy)
    n = sum(counts.values())
    assert counts["a dog barks"] / n == pytest.approx(0.2, abs=0.015)
    assert counts["r1"] / n == pytest.approx(0.8 * 0.75, abs=0.015)
    assert (counts["p1"] + counts["p2"]) / n == pytest.approx(0.8 * 0.25, abs=0.015)
    assert policy.augmented_fraction == pytest.approx(0.8, abs=0.015)


def test_reproducible_for_the_item_rng_and_original_in_evaluation(table):
    policy = AugmentedCaptionPolicy(str(table))
    assert _draws(policy, 200, seed=5) == _draws(policy, 200, seed=5)
    assert policy.caption(RECORD, 0, None) == "a dog barks"
    assert _draws(policy, 100, slot=1).keys() == {"a cat meows", "other slot"}


def test_text_match_survives_a_different_clip_key(tmp_path):
    path = tmp_path / "t.jsonl"
    write_table([_row("paraphrase", "p1", clip_key="old/key.wav", source="A dog barks!")], path)
    counts = _draws(AugmentedCaptionPolicy(str(path), p_original=0.0), 50)
    assert counts == {"p1": 50}


def test_missing_table_is_a_clear_error(tmp_path):
    from lasr.errors import DataError

    with pytest.raises(DataError, match="lasr augment export"):
        AugmentedCaptionPolicy(str(tmp_path / "nope.jsonl"))


def test_datamodule_serves_llm_captions(demo_corpus, tmp_path):
    from lasr.data.datamodule import AudioTextDataModule
    from lasr.data.manifest import read_manifest

    manifest = demo_corpus / "manifests" / "clotho_development.jsonl.gz"
    record = read_manifest(manifest)[0]
    path = tmp_path / "t.jsonl"
    write_table([_row("paraphrase", f"LLM caption {s}", slot=s, source=c, clip_key=record.key)
                 for s, c in enumerate(record.captions)], path)
    data = AudioTextDataModule(train=[str(manifest)], sample_rate=16000, train_seconds=1.0,
                               batch_size=4, num_workers=0, pin_memory=False,
                               caption_policy=AugmentedCaptionPolicy(str(path), p_original=0.0))
    data.setup("fit")
    dataset = data.datasets["train"]
    item = dataset[(0, 0)]
    assert item["caption"] == "LLM caption 0"


def test_kinds_describing_other_audio_cannot_be_variants(tmp_path):
    from lasr.data.captions import AugmentedCaptionPolicy

    table = tmp_path / "t.jsonl"
    table.write_text("")
    with pytest.raises(ValueError, match="describe other audio"):
        AugmentedCaptionPolicy(str(table), kinds=["paraphrase", "mix"])


def test_items_say_whether_their_caption_is_llm_written(tmp_path):
    from lasr.data.datasets import CaptionPairDataset, collate_pairs

    table = tmp_path / "t.jsonl"
    write_table([{"kind": "paraphrase", "clip_key": "d/a.wav", "slot": 0, "source": "a dog barks",
                  "text": "a hound yaps", "custom_id": "x", "model": "m", "template": "t", "sample_index": 0,
                  "extra": {}}], table)
    record = ClipRecord(id="a.wav", audio_path="x", duration=1.0, sample_rate=16000, captions=("a dog barks",),
                        dataset="d")
    policy = AugmentedCaptionPolicy(str(table), p_original=0.5, log_every=0)
    data = CaptionPairDataset([record], 16000, 1.0, policy)
    data.audio.load = lambda record, rng: (__import__("torch").zeros(16000), 1.0)
    items = [{**data._item(0, np.random.default_rng(seed)), "skipped": []} for seed in range(20)]
    assert {i["caption_augmented"] for i in items} == {True, False}
    assert all(i["caption_augmented"] == (i["caption"] == "a hound yaps") for i in items)
    assert collate_pairs(items)["caption_augmented"].dtype == __import__("torch").bool
