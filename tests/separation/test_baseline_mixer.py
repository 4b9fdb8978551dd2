"""The reference mixer switch (``mixer: baseline``) and caption-less training clips."""

from __future__ import annotations

import math

import pytest
import torch

from lasr.data.manifest import ClipRecord
from lasr.data.mixtures import BaselineMixtureCollate, MixtureTrainDataset, SeparationDataModule, baseline_mix
from lasr.errors import DataError


def energy(x: torch.Tensor) -> float:
    return float(x.double().pow(2).mean())


def test_interferer_is_the_next_batch_item_at_minus_the_second_gain():
    torch.manual_seed(0)
    segments = torch.randn(3, 8000) * torch.tensor([[0.01], [0.02], [0.005]])
    mixtures, targets = baseline_mix(segments, torch.tensor([4.0, -7.0, 0.0]), torch.tensor([-3.0, 5.0, 10.0]))
    assert torch.allclose(targets, segments)  # no peak above 1: targets untouched
    for n in range(3):
        noise = (mixtures[n] - targets[n]).double()
        nxt = segments[(n + 1) % 3].double()
        assert abs(float(torch.nn.functional.cosine_similarity(noise, nxt, dim=0)) - 1) < 1e-9  # item n+1
        snr = 10 * math.log10(energy(targets[n]) / energy(noise))
        assert snr == pytest.approx(-[-3.0, 5.0, 10.0][n], abs=1e-4)  # the second gain sets the level


def test_energy_ratio_clamp_as_the_reference():
    quiet = torch.full((1, 1000), 0.001)  # 60 dB below the other item
    loud = torch.full((1, 1000), 1.0)
    mixtures, targets = baseline_mix(torch.cat([quiet, loud]), torch.zeros(2), torch.zeros(2))
    # quiet target, loud interferer. Step 1: ratio sqrt(1 / 1e-6) = 1000, clamped to 50 -> 0.02.
    # Step 2: ratio 0.02 / 0.001 = 20 (inside the clamp) -> 0.001.
    assert float((mixtures[0] - targets[0]).abs().mean()) == pytest.approx(0.001, rel=1e-5)
    # loud target, quiet interferer. Step 1: ratio 0.001, clamped to 0.02 -> 0.05. Step 2: ratio 0.05 -> 1.0;
    # the mixture peaks at 2, so target and mixture are scaled by 0.9 / 2.
    assert float((mixtures[1] - targets[1]).abs().mean()) == pytest.approx(0.45, rel=1e-4)
    assert float(mixtures[1].abs().max()) == pytest.approx(0.9, rel=1e-6)


def _records(tmp_path, n=4, captions=True):
    import numpy as np
    import soundfile as sf

    out = []
    for i in range(n):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, (0.1 * np.random.default_rng(i).standard_normal(8000)).astype("float32"), 16000)
        out.append(ClipRecord(id=path.name, audio_path=str(path), duration=0.5, sample_rate=16000,
                              captions=(f"sound {i}",) if captions or i else (), dataset="t"))
    return out


def test_baseline_datamodule_mixes_in_the_collate(tmp_path):
    records = _records(tmp_path)
    data = SeparationDataModule(mixer="baseline", sample_rate=16000, train_seconds=0.25, batch_size=4,
                                num_workers=0, pin_memory=False)
    assert isinstance(data.train_collate, BaselineMixtureCollate)
    dataset = data.build_train_dataset(records)
    items = [dataset[i] for i in range(4)]
    assert all("mixture" not in item and len(item["gains_db"]) == 2 for item in items)
    assert all(float(g).is_integer() and -10 <= g <= 10 for item in items for g in item["gains_db"])
    batch = data.train_collate(items)
    assert batch["mixture"].shape == (4, 4000) and batch["interferer_id"] == ["c1.wav", "c2.wav", "c3.wav", "c0.wav"]
    with pytest.raises(ValueError, match="mixer"):
        SeparationDataModule(mixer="nearest")


def test_caption_less_training_clips_are_an_error(tmp_path):
    with pytest.raises(DataError, match="1 of 4 training clips have no caption"):
        MixtureTrainDataset(_records(tmp_path, captions=False), 16000, 0.25)


def test_demo_clips_carry_their_event_types_so_mixtures_never_share_one(demo_corpus):
    import json

    from lasr.data.manifest import read_manifest
    from lasr.data.mixtures import plan_mixtures

    records = read_manifest(demo_corpus / "manifests" / "clotho_validation.jsonl.gz")
    metadata = json.loads((demo_corpus / "clotho" / "demo_metadata.json").read_text())["splits"]["validation"]
    truth = {clip["file_name"]: {e["type"] for e in clip["events"]} for clip in metadata}
    assert all(r.labels and set(r.labels) == truth[r.id] for r in records)
    by_path = {r.audio_path: r for r in records}
    for spec in plan_mixtures(records):
        assert not set(by_path[spec.source].labels) & set(by_path[spec.noise].labels)
