"""AISTAT's LLM mix as added data (``data.added`` with LLMMixPairs) on the demo corpus: the pairs come on top of the
manifest items at their own weight, captions are the stored LLM composites verbatim, audio is the two clips mixed."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lasr.augment.audio.llm_mix import LLMMixPairs
from lasr.augment.kinds import choose_mix_pairs
from lasr.data.audio import load_clip
from lasr.data.datamodule import AudioTextDataModule
from lasr.data.manifest import read_manifest
from lasr.errors import DataError, LasrError

RATE = 16000
SECONDS = 12.0  # longer than every demo clip: windows are the whole clips, so the expected mixture is exact


@pytest.fixture(scope="module")
def corpus(demo_corpus):
    manifest = demo_corpus / "manifests" / "clotho_development.jsonl.gz"
    return str(manifest), read_manifest(manifest)


def composite(pair: dict, sample: int) -> str:
    # unusual characters on purpose: the table's text must reach the batch byte for byte
    return f"Mixture nº{pair['pair_index']}/{sample} — “{pair['caption'][:20]}” & {pair['caption_b'][:12]}… "


def write_table(path, records, pairs: int, seed: int, skip: set[int] = frozenset(), samples: int = 2) -> list[dict]:
    """A caption table like `lasr augment mix --pairs N --seed S` + export: every chosen pair but ``skip``."""
    chosen = choose_mix_pairs(records, pairs, seed)
    rows = [{"kind": "mix", "clip_key": p["clip_key"], "slot": p["slot"], "source": p["caption"],
             "text": composite(p, i), "extra": {"clip_key_b": p["clip_key_b"], "slot_b": p["slot_b"],
                                                  "mix": p["mix"], "pair_index": p["pair_index"]}}
            for p in chosen if p["pair_index"] not in skip for i in range(samples)]
    rows.append({"kind": "paraphrase", "clip_key": chosen[0]["clip_key"], "slot": 0, "source": "x", "text": "Other."})
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    return chosen


def module(manifest: str, added, **kwargs) -> AudioTextDataModule:
    dm = AudioTextDataModule(train=[manifest], added=added, sample_rate=RATE, train_seconds=SECONDS, batch_size=8,
                             num_workers=0, pin_memory=False, seed=5, **kwargs)
    dm.setup("fit")
    return dm


def test_added_pairs_come_at_their_weight_with_verbatim_captions(corpus, tmp_path):
    manifest, records = corpus
    table = tmp_path / "mix.jsonl"
    chosen = write_table(table, records, pairs=10, seed=3, skip={2, 7})
    added = LLMMixPairs(str(table), pairs=10, weight=2.0, seed=3)
    dm = module(manifest, [added])
    base = sum(len(r.captions) for r in records)
    assert added.missing == 2 and len(dm.datasets["train"]) == base + 8
    sampler = dm.train_dataloader().sampler
    indices = [i for i, _ in sampler]
    assert sum(i >= base for i in indices) == 16 and sum(i < base for i in indices) == base  # weight 2 vs 1
    stored = {r: p for p in chosen if p["pair_index"] not in {2, 7} for r in (composite(p, 0), composite(p, 1))}
    mixed = plain = 0
    for batch in dm.train_dataloader():
        for caption, augmented, caption_id in zip(batch["caption"], batch["caption_augmented"], batch["caption_id"]):
            if augmented:
                mixed += 1
                pair = stored[caption]  # verbatim: the lookup is by the exact string
                assert caption_id.startswith(pair["clip_key"].split("/", 1)[1])
            else:
                plain += 1
                assert "Mixture" not in caption
    assert mixed + plain == len(indices) // 8 * 8 and 16 - 8 <= mixed <= 16  # drop_last drops < one batch


def test_added_item_audio_is_the_two_clips_mixed_at_the_stored_ratio(corpus, tmp_path):
    manifest, records = corpus
    table = tmp_path / "mix.jsonl"
    write_table(table, records, pairs=4, seed=1)
    dm = module(manifest, [LLMMixPairs(str(table), pairs=4, seed=1)])
    train = dm.datasets["train"]
    by_key = {r.key: r for r in records}
    base = sum(len(r.captions) for r in records)
    for pair in train.parts[1].pairs:
        item = train[(base + train.parts[1].pairs.index(pair), 0)]
        a, b = (load_clip(by_key[k].audio_path, RATE)[0].double() for k in (pair["clip_key"], pair["clip_key_b"]))
        longer, shorter = (a, b) if len(a) >= len(b) else (b, a)
        start = int(round((len(longer) - len(shorter)) * pair["mix"]["offset_fraction"]))
        placed = [torch.zeros(len(longer), dtype=torch.float64) for _ in range(2)]
        placed[0][:], placed[1][start:start + len(shorter)] = longer, shorter
        first, second = (placed[0], placed[1]) if len(a) >= len(b) else (placed[1], placed[0])
        heard = item["audio"][: len(longer)].double()
        assert item["audio"][len(longer):].abs().max() == 0  # padding only after the mixture
        # least squares: heard = c_a * a + c_b * b exactly (peak limiting scales both alike)
        basis = torch.stack([first, second], 1)
        coef = torch.linalg.lstsq(basis, heard[:, None]).solution[:, 0]
        assert torch.allclose(basis @ coef, heard, atol=1e-5)
        if pair["mix"]["natural_levels"]:
            assert float(coef[0]) == pytest.approx(float(coef[1]), rel=1e-4)
        else:
            ratio_db = 10 * np.log10(float(coef[0] ** 2 * a.pow(2).mean()) / float(coef[1] ** 2 * b.pow(2).mean()))
            assert ratio_db == pytest.approx(pair["mix"]["snr_db"], abs=0.01)
        assert item["caption_augmented"] and item["audio_key"] not in item["source_keys"]


def test_pairs_are_stable_across_rebuilds(corpus, tmp_path):
    # every DDP rank runs this same setup: nothing in it depends on the rank or on the worker
    manifest, records = corpus
    table = tmp_path / "mix.jsonl"
    write_table(table, records, pairs=6, seed=9)
    one, two = (module(manifest, [LLMMixPairs(str(table), pairs=6, seed=9)]) for _ in range(2))
    assert one.datasets["train"].parts[1].pairs == two.datasets["train"].parts[1].pairs
    last = len(one.datasets["train"]) - 1
    a, b = one.datasets["train"][(last, 3)], two.datasets["train"][(last, 3)]
    assert a["caption"] == b["caption"] and torch.equal(a["audio"], b["audio"])
    other = LLMMixPairs(str(table), pairs=6, seed=10)
    assert choose_mix_pairs(records, 6, 10) != choose_mix_pairs(records, 6, 9)  # the seed decides the pairs
    with pytest.raises(DataError):
        module(manifest, [other])  # ... and a table written with another seed has none of them


def test_a_table_without_the_drawn_pairs_fails_at_setup(corpus, tmp_path):
    manifest, records = corpus
    table = tmp_path / "mix.jsonl"
    write_table(table, records, pairs=5, seed=1)
    with pytest.raises(DataError, match="none of the 5 mix pairs drawn with seed 2"):
        module(manifest, [LLMMixPairs(str(table), pairs=5, seed=2)])
    with pytest.raises(DataError, match="not found"):
        module(manifest, [LLMMixPairs(str(tmp_path / "absent.jsonl"), pairs=5)])
    problems = LLMMixPairs.preflight_problems({"table": str(tmp_path / "absent.jsonl"), "pairs": 5, "seed": 1})
    assert len(problems) == 1 and "lasr augment mix --pairs 5 --seed 1" in problems[0]


def test_precomputed_teachers_refuse_added_mixes_at_setup(corpus, tmp_path):
    from lasr.tasks.terms import Distillation

    manifest, records = corpus
    table = tmp_path / "mix.jsonl"
    write_table(table, records, pairs=3, seed=0)
    dm = module(manifest, [LLMMixPairs(str(table), pairs=3, seed=0)])
    term = Distillation(teacher_embeddings=[str(tmp_path / "teachers")])
    with pytest.raises(ValueError, match="data.added serves mixed items.*online_teachers"):
        term.setup(SimpleNamespace(datamodule=dm), model=None)
    assert dm.added_changes_audio and not module(manifest, [LLMMixPairs(str(table), 3, weight=0.0)]).added_changes_audio


def test_separation_module_refuses_added_sets(tmp_path):
    from lasr.data.mixtures import SeparationDataModule

    with pytest.raises(LasrError, match="serves no added training sets"):
        SeparationDataModule(added=[LLMMixPairs(str(tmp_path / "t.jsonl"))])


def test_the_augmented_module_serves_added_pairs_with_no_hard_negative(corpus, tmp_path):
    from lasr.augment.audio.dataset import AudioAugmentConfig, AugmentedAudioTextDataModule

    manifest, records = corpus
    table = tmp_path / "mix.jsonl"
    write_table(table, records, pairs=4, seed=2)
    off = dict(p_gain=0.0, p_pitch=0.0, p_speed=0.0, p_crop=0.0, p_concat=0.0, p_mix=0.0)
    dm = AugmentedAudioTextDataModule(augment=AudioAugmentConfig(**off, hard_negatives=True), train=[manifest],
                                      added=[LLMMixPairs(str(table), pairs=4, seed=2)], sample_rate=RATE,
                                      train_seconds=SECONDS, batch_size=4, num_workers=0, pin_memory=False)
    dm.setup("fit")
    base = len(dm.datasets["train"]) - 4
    batch = dm.train_collate([dm.datasets["train"][(base + i, 0)] for i in range(4)])
    assert batch["hard_negatives"] == [None] * 4 and batch["augment"] == ["llm-mix:added"] * 4
    assert all(len(keys) == 2 for keys in batch["source_keys"])
