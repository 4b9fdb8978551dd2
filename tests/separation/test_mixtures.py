"""Mixing: exact SNR, peak protection, silence, interferer rules, evaluation CSVs, the separation DataModule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from lasr.data.manifest import ClipRecord, read_manifest
from lasr.cli import main
from lasr.data.mixtures import (
    MixtureEvalDataset,
    MixtureTrainDataset,
    SeparationDataModule,
    compatible,
    draw_snr,
    mix_at_snr,
    plan_mixtures,
    power,
    read_mixture_csv,
    write_mixture_csv,
)
from lasr.errors import AudioError, DataError


def snr_of(mixture: torch.Tensor, target: torch.Tensor) -> float:
    return 10 * math.log10(power(target) / power(mixture - target))


@pytest.mark.parametrize("snr", [-10.0, -3.0, 0.0, 7.0, 10.0, 14.5])
def test_mixtures_hit_the_drawn_snr(snr):
    torch.manual_seed(int(snr * 10) + 100)
    target, interferer = 0.1 * torch.randn(16000), 0.7 * torch.randn(16000)
    mixture, scaled_target = mix_at_snr(target, interferer, snr)
    assert abs(snr_of(mixture, scaled_target) - snr) < 0.01


def test_peak_protection_scales_target_and_mixture_and_keeps_the_snr():
    torch.manual_seed(5)
    target, interferer = 0.8 * torch.randn(8000), torch.randn(8000)
    mixture, scaled = mix_at_snr(target, interferer, -5.0)
    assert float(mixture.abs().max()) == pytest.approx(0.9, abs=1e-6)
    assert abs(snr_of(mixture, scaled) + 5.0) < 0.01
    assert float(scaled.abs().max()) < float(target.abs().max())


def test_silent_segments_raise_in_training_and_drop_the_noise_in_evaluation():
    signal, silent = torch.randn(4000) * 0.1, torch.zeros(4000)
    for a, b in ((silent, signal), (signal, silent)):
        with pytest.raises(AudioError, match="silent"):
            mix_at_snr(a, b, 0.0)
        mixture, target = mix_at_snr(a, b, 0.0, allow_silent=True)
        assert torch.equal(mixture, target) and torch.isfinite(mixture).all()


def test_snr_draws_are_uniform_integers_in_range_as_the_reference():
    rng = np.random.default_rng(0)
    draws = [draw_snr(rng, -10, 10, True) for _ in range(4000)]
    assert set(draws) == set(float(v) for v in range(-10, 11))
    continuous = [draw_snr(rng, -10, 10, False) for _ in range(200)]
    assert all(-10 <= v <= 10 for v in continuous) and len(set(continuous)) == 200


def record(key: str, captions=("a dog barks",), labels=()) -> ClipRecord:
    return ClipRecord(id=key, audio_path=f"/x/{key}.wav", duration=1.0, sample_rate=16000, captions=tuple(captions),
                      labels=tuple(labels), dataset="t")


def test_interferer_rules_caption_and_labels():
    dog = record("dog", ["a dog barks"], ["dog"])
    assert not compatible(dog, dog, "a dog barks")
    assert not compatible(dog, record("dog2", ["A dog  barks"], ["animal"]), "a dog barks")  # same caption text
    assert not compatible(dog, record("dog3", ["barking"], ["dog", "pet"]), "a dog barks")  # shared class
    assert compatible(dog, record("car", ["a car passes"], ["car"]), "a dog barks")
    assert compatible(dog, record("unlabelled", ["a car passes"]), "a dog barks")


def write_wave(path: Path, wave: np.ndarray, rate: int = 16000) -> str:
    sf.write(path, wave.astype(np.float32), rate)
    return str(path)


def test_eval_dataset_mixes_exactly_as_the_dcase_evaluator(tmp_path):
    rng = np.random.default_rng(1)
    source = 0.5 * rng.standard_normal(16000)
    noise = 0.9 * rng.standard_normal(16000)
    write_wave(tmp_path / "s1.wav", source)
    write_wave(tmp_path / "n1.wav", noise)
    csv_path = tmp_path / "val.csv"
    csv_path.write_text("source,noise,snr,caption\ns1,n1,-4,a beep\n")
    specs = read_mixture_csv(csv_path)  # DCASE ids resolve to <dir>/<id>.wav
    item = MixtureEvalDataset(specs, 16000)[0]
    s, n = sf.read(tmp_path / "s1.wav", dtype="float32")[0], sf.read(tmp_path / "n1.wav", dtype="float32")[0]
    n = n * np.sqrt((np.mean(s ** 2) / 10 ** (-4 / 10)) / np.mean(n ** 2))  # the evaluator's formula
    mix = s + n
    peak = np.max(np.abs(mix))
    if peak > 1:
        s, mix = s * 0.9 / peak, mix * 0.9 / peak
    assert np.allclose(item["mixture"].numpy(), mix, atol=1e-5)
    assert np.allclose(item["target"].numpy(), s, atol=1e-5)
    assert abs(snr_of(item["mixture"], item["target"]) + 4) < 0.01


def test_mixture_csv_errors_name_file_and_row(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("source,noise,snr,caption\na,b,loud,x\n")
    with pytest.raises(DataError, match=r"bad.csv, row 2: snr 'loud'"):
        read_mixture_csv(bad)
    bad.write_text("source,noise,snr,caption\na,b,3,  \n")
    with pytest.raises(DataError, match="row 2: empty caption"):
        read_mixture_csv(bad)
    missing = tmp_path / "missing.csv"
    missing.write_text("source,noise,snr,caption\nnope,nada,3,a dog\n")
    with pytest.raises(DataError, match="row 2"):
        MixtureEvalDataset(read_mixture_csv(missing), 16000)[0]


def test_planned_csv_is_deterministic_and_round_trips(demo_corpus, tmp_path):
    manifest = demo_corpus / "manifests" / "clotho_validation.jsonl.gz"
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["data", "mixtures", str(manifest), "--out", str(first), "--seed", "3"]) == 0
    assert main(["data", "mixtures", str(manifest), "--out", str(second), "--seed", "3"]) == 0
    assert first.read_text() == second.read_text()
    specs = read_mixture_csv(first)
    records = read_manifest(manifest)
    assert len(specs) == len(records)
    assert all(-15 <= s.snr <= 15 and float(s.snr).is_integer() and s.source != s.noise for s in specs)
    by_path = {r.audio_path: r for r in records}
    assert all(s.caption in by_path[s.source].captions for s in specs)
    assert [(s.source, s.noise, s.snr, s.caption) for s in specs] == [
        (s.source, s.noise, s.snr, s.caption) for s in plan_mixtures(records, seed=3)]
    write_mixture_csv(specs, tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text() == first.read_text()


def test_train_items_are_reproducible_and_respect_labels(demo_corpus):
    records = read_manifest(demo_corpus / "manifests" / "sources.jsonl.gz")
    dataset = MixtureTrainDataset(records, 16000, 1.0, seed=4)
    a, b, c = dataset[(3, 0)], dataset[(3, 0)], dataset[(3, 1)]
    assert torch.equal(a["mixture"], b["mixture"]) and a["interferer_id"] == b["interferer_id"]
    assert not torch.equal(a["mixture"], c["mixture"])
    by_id = {r.id: r for r in records}
    for index in range(len(dataset)):
        item = dataset[(index, 2)]
        target, other = by_id[item["target_id"]], by_id[item["interferer_id"]]
        assert not set(target.labels) & set(other.labels)
        assert item["mixture"].shape == (16000,) and -10 <= item["snr_db"] <= 10
        assert abs(snr_of(item["mixture"], item["target"]) - item["snr_db"]) < 0.01


def test_datamodule_serves_mixture_batches_and_query_strings(demo_corpus, tmp_path):
    manifests = demo_corpus / "manifests"
    dm = SeparationDataModule(train=[str(manifests / "sources.jsonl.gz"), str(manifests / "clotho_development.jsonl.gz")],
                              val=[str(manifests / "clotho_validation.jsonl.gz")], sample_rate=16000,
                              train_seconds=1.0, eval_seconds=3.0, batch_size=4, eval_batch_size=3, num_workers=0,
                              pin_memory=False, mixture_csv_dir=str(tmp_path))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["mixture"].shape == batch["target"].shape == (4, 16000) and len(batch["caption"]) == 4
    sources = read_manifest(manifests / "sources.jsonl.gz")
    assert dm._train_parts[0] == sum(len(r.captions) for r in sources)  # one target item per caption
    assert sum(dm._train_parts) == len(dm.datasets["train"])
    val = next(iter(dm.val_dataloader()))
    assert val["mixture"].shape[0] == 3 and val["length"].max() <= 3 * 16000
    assert (tmp_path / "val_mixtures.csv").is_file()
    strings = dm.query_strings()
    assert set(batch["caption"]) <= strings and set(val["caption"]) <= strings
    assert len(dm.eval_records("val")) == len(read_manifest(manifests / "clotho_validation.jsonl.gz"))


def test_silence_level_redraws_background_only_crops(tmp_path):
    """A clip that is mostly quiet background with one short event: with ``silence_db`` the crops hold the event."""
    rng = np.random.default_rng(6)
    records = []
    for i in range(4):
        wave = 1e-4 * rng.standard_normal(16000 * 6)  # -80 dB background
        start = 16000 * (1 + i)
        wave[start: start + 8000] += 0.3 * np.sin(np.arange(8000) * 0.05 * (i + 1))
        path = write_wave(tmp_path / f"e{i}.wav", wave)
        records.append(ClipRecord(id=f"e{i}", audio_path=path, duration=6.0, sample_rate=16000,
                                  captions=(f"event {i}",), labels=(f"c{i}",)))
    strict_level = MixtureTrainDataset(records, 16000, 1.0, silence_db=-40.0, crop_tries=50)
    default_level = MixtureTrainDataset(records, 16000, 1.0)
    levels = [10 * math.log10(power(strict_level[(i % 4, e)]["target"]) + 1e-20) for e in range(5) for i in range(4)]
    assert min(levels) > -40.0 - 1  # peak protection may only lower a crop slightly
    quiet = [power(default_level[(i % 4, e)]["target"]) < 1e-6 for e in range(5) for i in range(4)]
    assert any(quiet)  # without the level, background-only crops are served as targets


class VariantPolicy:
    """Caption policy with LLM variants in the AugmentedCaptionPolicy shape (``{kind: [texts]}``)."""

    def caption(self, record, slot, rng):
        return record.captions[slot] if rng is None or rng.random() < 0.5 else f"{record.captions[slot]} (variant)"

    def variants(self, record, slot):
        return {"paraphrase": [f"{record.captions[slot]} (variant)"]}


def test_query_strings_include_caption_policy_variants(demo_corpus):
    dm = SeparationDataModule(train=[str(demo_corpus / "manifests" / "sources.jsonl.gz")], sample_rate=16000,
                              train_seconds=1.0, batch_size=4, num_workers=0, pin_memory=False,
                              caption_policy=VariantPolicy())
    dm.setup("fit")
    strings = dm.query_strings()
    served = {dm.datasets["train"][(i, 0)]["caption"] for i in range(len(dm.datasets["train"]))}
    assert served <= strings and any(s.endswith("(variant)") for s in served)
