"""The augmented training dataset: caption order, truthfulness, bad input, determinism, LLM plans, collate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lasr.augment.audio.dataset import (AudioAugmentConfig, AugmentedAudioTextDataModule, AugmentedPairDataset,
                                        collate_augmented)
from lasr.data.datasets import clip_key
from lasr.data.manifest import write_manifest

from .conftest import RATE, TONES

OFF = dict(p_gain=0.0, p_pitch=0.0, p_speed=0.0, p_crop=0.0, p_concat=0.0, p_mix=0.0)


def dominant_hz(wave: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(wave.double() * torch.hann_window(wave.shape[-1], dtype=torch.float64)).abs()
    return float(spectrum.argmax()) * RATE / wave.shape[-1]


def dataset(records, seconds=2.0, **config) -> AugmentedPairDataset:
    return AugmentedPairDataset(records, RATE, seconds, seed=3, config=AudioAugmentConfig(**{**OFF, **config}))


def test_concatenation_order_matches_caption_order(tone_records):
    # 2 s tones fill their clips: a part is never cut, so only the parts that fit whole are concatenated
    data = dataset(tone_records, seconds=5.0, p_concat=1.0, concat_clips=(2, 3))
    for index in range(len(data)):
        item = data[(index, 0)]
        said = [int(w) for w in item["caption"].replace(",", " ").split() if w.isdigit()]
        assert len(said) == 2
        part = 2 * RATE
        heard = [round(dominant_hz(item["audio"][i * part : (i + 1) * part])) for i in range(len(said))]
        assert heard == said, item["caption"]
        assert item["hard_negative"] is not None and item["hard_negative"] != item["caption"]
        assert len(item["source_keys"]) == len(said) and item["audio_key"] not in item["source_keys"]


def test_gain_caption_is_truthful_about_the_level(tone_records):
    data = dataset(tone_records, p_gain=1.0)
    for index in range(len(data)):
        item = data[(index, 1)]
        source = data._load(tone_records[index], 2.0, None)
        change = 20 * math.log10(item["audio"].pow(2).mean().sqrt() / source.pow(2).mean().sqrt())
        if item["caption"].startswith("Loud"):
            assert change >= 3.0 - 1e-3
        elif item["caption"].startswith("Faint"):
            assert change <= -3.0 + 1e-3
        else:
            assert abs(change) < 3.0 and item["audio_key"] == clip_key(tone_records[index])


def test_full_scale_clip_cannot_be_called_loud(awkward_records):
    data = dataset([awkward_records[6]], p_gain=1.0, gain_db=(6.0, 10.0))
    captions = {data[(0, epoch)]["caption"] for epoch in range(12)}
    assert not any(c.startswith("Loud") for c in captions)
    assert any(c.startswith("Faint") for c in captions)


def test_no_nan_inf_or_clipping_over_many_random_draws(awkward_records):
    config = dict(p_gain=0.7, p_pitch=0.5, p_speed=0.5, p_crop=0.5, p_concat=0.35, p_mix=0.5, gain_db=(3.0, 20.0),
                  min_part_seconds=0.2)
    data = dataset(awkward_records, seconds=2.5, **config)
    kinds = set()
    for draw in range(40):
        item = data[(draw % len(data), draw // len(data))]
        assert torch.isfinite(item["audio"]).all()
        assert item["audio"].abs().max() <= 1.0
        assert 0 < item["duration"] <= 2.5
        kinds.add(item["augment"].split(":")[0])
    assert {"concat", "mix"} <= kinds


def test_draws_are_deterministic_for_seed_epoch_and_index(tone_records):
    data = dataset(tone_records, p_gain=0.5, p_pitch=0.5, p_speed=0.5, p_concat=0.3, p_mix=0.3)
    for key in [(0, 0), (3, 5), (5, 2)]:
        a, b = data[key], data[key]
        assert torch.equal(a["audio"], b["audio"]) and a["caption"] == b["caption"]
        assert a["hard_negative"] == b["hard_negative"] and a["audio_key"] == b["audio_key"]
    assert any(data[(0, e)]["caption"] != data[(0, 0)]["caption"] for e in range(1, 8))
    evaluation = data[0]  # no epoch: the untransformed item
    assert evaluation["caption"] == "A tone at 300 hertz." and "hard_negative" not in evaluation


def test_llm_plans_are_served_with_both_source_ids(tone_records, tmp_path):
    a, b = tone_records[0], tone_records[3]
    rows = [
        {"kind": "mix", "clip_key": a.key, "slot": 0, "source": "", "text": "A low hum under a bright whistle.",
         "extra": {"clip_key_b": b.key, "slot_b": 0, "mix": {"snr_db": 2.0, "offset_fraction": 0.0}}},
        {"kind": "modifiers", "clip_key": b.key, "slot": 0, "source": "", "text": "A much louder whistle.",
         "extra": {"clips": [{"clip_key": b.key, "slot": 0, "ops": {"gain_db": 6.0}}], "combine": "single"}},
        {"kind": "mix", "clip_key": a.key, "slot": 0, "source": "", "text": "Unknown partner.",
         "extra": {"clip_key_b": "tones/missing.wav", "slot_b": 0, "mix": {"snr_db": 0.0}}},
    ]
    table = tmp_path / "captions.jsonl"
    table.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert len(dataset(tone_records, llm_table=str(table), p_llm=1.0).plans) == 1  # default: modifiers only
    data = dataset(tone_records, llm_table=str(table), llm_kinds=["mix", "modifiers"], p_llm=1.0)
    assert len(data.plans) == 2 and data.plans.dropped == 1
    mixed = data[(0, 0)]
    assert mixed["caption"] == rows[0]["text"] and mixed["source_keys"] == [clip_key(a), clip_key(b)]
    assert mixed["audio_key"] not in mixed["source_keys"] and mixed["hard_negative"] is None
    louder = data[(3, 0)]
    assert louder["caption"] == rows[1]["text"] and louder["hard_negative"] == "A much quieter whistle."
    batch = collate_augmented([mixed, louder])
    assert batch["hard_negatives"] == [None, "A much quieter whistle."] and batch["audio"].shape == (2, 2 * RATE)


def test_datamodule_takes_the_augment_block(tone_records, tmp_path):
    manifest = tmp_path / "train.jsonl"
    write_manifest(tone_records, manifest)
    module = AugmentedAudioTextDataModule(augment=AudioAugmentConfig(p_concat=1.0, hard_negatives=False),
                                          train=[str(manifest)], sample_rate=RATE, train_seconds=6.0,
                                          batch_size=3, num_workers=0, pin_memory=False)
    module.setup("fit")
    batch = next(iter(module.train_dataloader()))
    assert batch["audio"].shape == (3, 6 * RATE) and "hard_negatives" not in batch
    assert all(len(keys) >= 2 for keys in batch["source_keys"])


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="unknown transforms"):
        AudioAugmentConfig(transforms=["reverb"])
    with pytest.raises(ValueError, match="p_mix"):
        AudioAugmentConfig(p_mix=1.5)


def test_mixture_level_words_follow_the_drawn_ratio(tone_records):
    data = dataset(tone_records, p_mix=1.0, mix_ratio_db=(4.0, 5.0))
    item = data[(0, 0)]
    first, second = item["caption"].rstrip(".").split(" while ")
    assert first.startswith("Loud: ") and second.startswith("faint: ")
    assert item["hard_negative"] is not None and item["hard_negative"] != item["caption"]
