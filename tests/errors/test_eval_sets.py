"""Evaluation sets are read exactly as their manifests list them, or the run stops at setup naming every file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from lasr.data.audio import check_audio, load_clip
from lasr.data.datamodule import AudioTextDataModule
from lasr.data.datasets import CaptionPairDataset
from lasr.data.manifest import ClipRecord, write_manifest
from lasr.data.verify import EvaluationSetError, verify_eval_records
from lasr.errors import AudioError, DataError, LasrError

SR = 16000


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def _record(path, seconds=2.0, captions=("a hiss",)) -> ClipRecord:
    frames = int(seconds * SR)
    return ClipRecord(id=path.name, audio_path=str(path), duration=frames / SR, sample_rate=SR, captions=captions,
                      num_frames=frames, channels=1, dataset="t")


def _cut(path, keep: float) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.fixture()
def clips(tmp_path):
    """Five 2 s clips as prepared; then the files are changed the ways a shared disk changes them."""
    paths = {name: tmp_path / f"{name}.{ext}" for name, ext in
             [("good", "wav"), ("good_flac", "flac"), ("replaced", "wav"), ("cut_wav", "wav"), ("cut_flac", "flac"),
              ("deleted", "wav"), ("silent", "wav")]}
    for n, path in enumerate(paths.values()):
        sf.write(path, _noise(2.0, n), SR)
    records = [_record(p) for p in paths.values()]
    sf.write(paths["replaced"], _noise(0.03), SR)  # a 0.03 s file where the manifest says 2 s
    _cut(paths["cut_wav"], 0.5)
    _cut(paths["cut_flac"], 0.9)  # FLAC headers keep the original length: only reading finds the cut
    paths["deleted"].unlink()
    sf.write(paths["silent"], np.zeros(2 * SR, dtype=np.float32), SR)
    return paths, records


def test_header_check_finds_every_changed_file_and_passes_good_ones(clips):
    paths, records = clips
    assert check_audio(paths["good"], 2 * SR, SR) is None
    assert check_audio(paths["good_flac"], 2 * SR, SR) is None
    with pytest.raises(EvaluationSetError) as info:
        verify_eval_records(records, "test")
    problems = info.value.problems
    assert len(problems) == 4  # silent is only found by a full read
    text = "\n".join(problems)
    for name in ("replaced.wav", "cut_wav.wav", "cut_flac.flac", "deleted.wav"):
        assert name in text
    assert "audio file not found" in text and "480 frames" in text
    assert "4 of 7 clip(s)" in str(info.value)


def test_full_check_also_finds_silent_files(clips):
    paths, records = clips
    with pytest.raises(EvaluationSetError) as info:
        verify_eval_records(records, "val", mode="full")
    assert len(info.value.problems) == 5 and any("silent.wav: audio is silent" in p for p in info.value.problems)


def test_length_tolerance(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, _noise(2.0), SR)
    record = _record(path, seconds=2.0 + 0.01)  # manifest 10 ms longer than the file
    verify_eval_records([record], "test", tolerance_seconds=0.05)
    with pytest.raises(EvaluationSetError):
        verify_eval_records([record], "test", tolerance_seconds=0.001)


def test_datamodule_stops_at_setup_before_any_step(clips, tmp_path):
    paths, records = clips
    write_manifest(records[:1], tmp_path / "train.jsonl")
    write_manifest(records, tmp_path / "test.jsonl")
    dm = AudioTextDataModule(train=[str(tmp_path / "train.jsonl")], test=[str(tmp_path / "test.jsonl")],
                             sample_rate=SR, num_workers=0, pin_memory=False)
    with pytest.raises(EvaluationSetError, match="test set: 4 of 7"):
        dm.setup("test")
    assert "test" not in dm.datasets
    with pytest.raises(LasrError, match="eval_check"):
        AudioTextDataModule(eval_check="quick")


def test_training_keeps_skipping_with_the_true_reason_once_per_file(clips):
    paths, records = clips
    bad = [r for r in records if r.id == "deleted.wav"][0]
    good = [r for r in records if r.id == "good.wav"][0]
    five = ("one", "two", "three", "four", "five")
    dataset = CaptionPairDataset([bad.__class__(**{**bad.__dict__, "captions": five}), good], SR, 1.0)
    item = dataset[0]  # the bad clip's five captions come first: five attempts, one file
    assert item["audio_id"] == "good.wav"
    assert len(item["skipped"]) == 1
    path, reason = item["skipped"][0]
    assert path.endswith("deleted.wav") and "audio file not found" in reason and "System error" not in reason


def test_training_read_of_a_file_shorter_than_its_manifest_is_a_bad_item(clips):
    paths, records = clips
    replaced = [r for r in records if r.id == "replaced.wav"][0]
    from lasr.data.audio import AudioInfo

    info = AudioInfo(SR, replaced.num_frames, 1)
    with pytest.raises(AudioError, match="expected"):
        load_clip(replaced.audio_path, SR, max_seconds=None, info=info)


def test_empty_training_manifest_is_an_error_naming_it(tmp_path):
    write_manifest([], tmp_path / "train.jsonl")
    dm = AudioTextDataModule(train=[str(tmp_path / "train.jsonl")], sample_rate=SR, num_workers=0)
    with pytest.raises(DataError, match="train.jsonl: the manifest lists no clips"):
        dm.setup("fit")


@pytest.mark.parametrize("key", ["batch_size", "eval_batch_size", "num_workers", "train_seconds"])
def test_negative_sizes_are_refused_by_name(key):
    with pytest.raises(LasrError, match=f"data.{key}=-2"):
        AudioTextDataModule(**{key: -2})


def test_lasr_validate_stops_at_setup_naming_the_cut_clip(demo_corpus, tmp_path, capsys):
    """Through the CLI: a validation clip cut after prepare stops `lasr validate` before its first step."""
    import shutil
    from pathlib import Path

    import yaml

    from lasr.cli import main
    from lasr.data.manifest import read_manifest

    records = read_manifest(demo_corpus / "manifests" / "clotho_validation.jsonl.gz")[:3]
    copies = []
    for record in records:
        target = tmp_path / Path(record.audio_path).name
        shutil.copy(record.audio_path, target)
        copies.append(ClipRecord(**{**record.__dict__, "audio_path": str(target)}))
    _cut(Path(copies[1].audio_path), 0.2)
    write_manifest(copies, tmp_path / "val.jsonl")
    config = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs/demo/stage1_demo.yaml").read_text())
    config["trainer"].update(default_root_dir=str(tmp_path), logger=False, callbacks=[])
    config["model"]["init_args"]["model"]["init_args"]["audio_encoder"]["init_args"]["channels"] = [4, 8]
    config["data"]["init_args"].update(train=None, test=None, test_relevance=None, num_workers=0,
                                       val=[{"path": str(tmp_path / "val.jsonl")}])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["validate", "--config", str(tmp_path / "c.yaml")]) == 2
    err = capsys.readouterr().err
    assert "val set: 1 of 3 clip(s) cannot be read as the manifest lists them" in err
    assert Path(copies[1].audio_path).name in err and "Traceback" not in err
