import numpy as np
import pytest
import soundfile as sf
import torch

from lasr.data import audio as audio_mod
from lasr.data.audio import load_clip, probe_audio
from lasr.data.datasets import CaptionPairDataset, ClipDataset, clip_key, collate_clips, collate_pairs
from lasr.data.manifest import ClipRecord, read_manifest, write_manifest
from lasr.errors import AudioError, DataError


def _tone(seconds, sr, freq=440.0, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1) if channels == 2 else x


@pytest.fixture()
def clips(tmp_path):
    paths = {}
    for name, seconds, sr, ch in [("short", 2.0, 22050, 1), ("long", 40.0, 16000, 2), ("mid", 5.0, 16000, 1)]:
        paths[name] = tmp_path / f"{name}.wav"
        sf.write(paths[name], _tone(seconds, sr, channels=ch), sr)
    paths["silent"] = tmp_path / "silent.wav"
    sf.write(paths["silent"], np.zeros(16000, dtype=np.float32), 16000)
    paths["corrupt"] = tmp_path / "corrupt.wav"
    paths["corrupt"].write_bytes(b"RIFF....not really a wav file" * 10)
    paths["missing"] = tmp_path / "missing.wav"
    return paths


def _record(path, captions=("a tone", "a beep"), id=None):
    info = probe_audio(path) if path.exists() and path.name != "corrupt.wav" else None
    return ClipRecord(id=id or path.stem, audio_path=str(path), duration=info.duration if info else 1.0,
                      sample_rate=info.sample_rate if info else 16000, captions=tuple(captions), dataset="t")


def test_load_clip_resamples_downmixes_and_keeps_true_duration(clips):
    wave, duration = load_clip(clips["short"], 16000, max_seconds=10.0)
    assert wave.shape == (32000,) and duration == pytest.approx(2.0)
    stereo, _ = load_clip(clips["long"], 16000, max_seconds=1.0)
    assert float(stereo.abs().max()) == pytest.approx(0.375, rel=0.01)  # mean of x (peak 0.5) and x/2


def test_long_file_reads_only_the_window(clips, monkeypatch):
    requested = []
    original = audio_mod.sf.SoundFile.read

    def spy(self, frames=-1, **kwargs):
        requested.append(frames)
        return original(self, frames=frames, **kwargs)

    monkeypatch.setattr(audio_mod.sf.SoundFile, "read", spy)
    wave, duration = load_clip(clips["long"], 16000, max_seconds=10.0, rng=np.random.default_rng(0))
    assert requested == [160000] and wave.shape == (160000,) and duration == pytest.approx(10.0)


@pytest.mark.parametrize("name,match", [("silent", "silent"), ("corrupt", "unreadable"), ("missing", "not found")])
def test_bad_audio_names_the_file(clips, name, match):
    with pytest.raises(AudioError, match=match) as info:
        load_clip(clips[name], 16000)
    assert str(clips[name]) in str(info.value)


def test_too_short_clip_is_an_error(clips):
    with pytest.raises(AudioError, match="shorter than the minimum"):
        load_clip(clips["short"], 16000, min_seconds=3.0)


def test_pair_dataset_flattens_pads_and_crops_reproducibly(clips):
    records = [_record(clips["short"]), _record(clips["long"], captions=("long tone",))]
    ds = CaptionPairDataset(records, sample_rate=16000, max_seconds=8.0, seed=5)
    assert len(ds) == 3
    item = ds[(2, 0)]
    assert item["audio"].shape == (128000,) and item["duration"] == pytest.approx(8.0)
    assert item["caption"] == "long tone" and item["caption_id"] == "long#0"
    assert torch.equal(ds[(2, 0)]["audio"], item["audio"])
    assert ds[0]["duration"] == pytest.approx(2.0)  # short clip: true duration, zero padded
    assert float(ds[0]["audio"][40000:].abs().max()) == 0.0
    batch = collate_pairs([ds[(i, 0)] for i in range(3)])
    assert batch["audio"].shape == (3, 128000) and batch["audio_key"].dtype == torch.long
    assert batch["audio_key"][0] == batch["audio_key"][1] != batch["audio_key"][2]


def test_random_crop_changes_with_epoch(clips):
    ds = CaptionPairDataset([_record(clips["long"], captions=("x",))], 16000, 5.0, seed=0)
    crops = {ds[(0, epoch)]["audio"][:100].sum().item() for epoch in range(5)}
    assert len(crops) > 1


def test_bad_items_are_replaced_and_reported_unless_strict(clips):
    records = [_record(clips["corrupt"], captions=("x",), id="bad"), _record(clips["mid"])]
    ds = CaptionPairDataset(records, 16000, 4.0)
    item = ds[0]
    assert item["audio_id"] == "mid"
    assert len(item["skipped"]) == 1 and "corrupt.wav" in item["skipped"][0][0]
    strict = CaptionPairDataset(records, 16000, 4.0, strict=True)
    with pytest.raises(AudioError, match="corrupt.wav"):
        strict[0]


def test_clip_dataset_flattens_captions_with_owner_and_slot(clips):
    records = [_record(clips["mid"], captions=("a", "b", "c")), _record(clips["short"], captions=("d",))]
    ds = ClipDataset(records, 16000, 6.0)
    batch = collate_clips([ds[0], ds[1]])
    assert batch["audio"].shape == (2, 96000)
    assert batch["captions"] == ["a", "b", "c", "d"]
    assert batch["text_clip_index"].tolist() == [0, 0, 0, 1] and batch["text_slot"].tolist() == [0, 1, 2, 0]


def test_manifest_round_trip_and_errors(tmp_path, clips):
    records = [_record(clips["mid"]), _record(clips["short"], captions=("ü caption",))]
    for name in ("m.jsonl", "m.jsonl.gz"):
        assert write_manifest(records, tmp_path / name) == 2
        assert read_manifest(tmp_path / name) == records
    assert clip_key(records[0]) == clip_key(read_manifest(tmp_path / "m.jsonl")[0])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "audio_path": "x", "duration": 1, "sample_rate": 1}\n{"id": "a", "oops": 1}\n')
    with pytest.raises(DataError, match=r"bad.jsonl, row 2: invalid manifest record: unknown manifest keys \['oops'\]"):
        read_manifest(bad)
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "a", "audio_path": "x", "duration": 1, "sample_rate": 1}\n' * 2)
    with pytest.raises(DataError, match="row 2: duplicate clip"):
        read_manifest(dup)
