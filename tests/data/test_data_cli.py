"""``lasr data`` through the real dispatcher: exit codes, messages on stderr, manifests read back."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasr.cli import main
from lasr.data.manifest import read_manifest

SR = 8000  # Hz


def _wav(path: Path, seconds: float = 0.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(1).uniform(-0.5, 0.5, int(seconds * SR)).astype("float32"), SR)


def _clotho(root: Path, names=("a.wav", "b.wav")) -> Path:
    header = ["file_name"] + [f"caption_{i}" for i in range(1, 6)]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "clotho_captions_evaluation.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[n] + [f"{n} caption {i}" for i in range(5)] for n in names])
    for name in names:
        _wav(root / "clotho_audio_evaluation" / name)
    return root


def test_prepare_clotho_cli_writes_a_readable_manifest(tmp_path, capsys):
    root = _clotho(tmp_path / "clotho")
    code = main(["data", "prepare-clotho", "--root", str(root), "--out", str(tmp_path / "out"),
                 "--splits", "evaluation", "--workers", "2"])
    assert code == 0
    records = read_manifest(tmp_path / "out" / "clotho_evaluation.jsonl.gz")
    assert [r.id for r in records] == ["a.wav", "b.wav"] and all(len(r.captions) == 5 for r in records)
    out = capsys.readouterr().out
    assert "clotho evaluation: 2 clips, 10 captions" in out and "1,045" in out


def test_failing_prepare_exits_2_with_file_and_row_on_stderr(tmp_path, capsys):
    root = _clotho(tmp_path / "clotho")
    (root / "clotho_audio_evaluation" / "b.wav").write_bytes(b"not a wav file at all")
    code = main(["data", "prepare-clotho", "--root", str(root), "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "clotho_captions_evaluation.csv, row 3" in err and "unreadable audio" in err
    assert not (tmp_path / "out").exists()


def test_skip_missing_flag(tmp_path, capsys):
    root = _clotho(tmp_path / "clotho")
    (root / "clotho_audio_evaluation" / "a.wav").unlink()
    assert main(["data", "prepare-clotho", "--root", str(root), "--out", str(tmp_path / "out")]) == 2
    assert "audio file not found" in capsys.readouterr().err
    assert main(["data", "prepare-clotho", "--root", str(root), "--out", str(tmp_path / "out"), "--skip-missing"]) == 0
    assert "skipped 1 clip(s)" in capsys.readouterr().out
    assert len(read_manifest(tmp_path / "out" / "clotho_evaluation.jsonl.gz")) == 1


def test_min_seconds_option(tmp_path, capsys):
    root = _clotho(tmp_path / "clotho")
    code = main(["data", "prepare-clotho", "--root", str(root), "--out", str(tmp_path / "out"), "--min-seconds", "1"])
    assert code == 2
    assert "shorter than the minimum 1.0 s" in capsys.readouterr().err


def test_prepare_esc50_and_info(tmp_path, capsys):
    root = tmp_path / "esc50"
    rows = [["1-10-A-0.wav", "1", "0", "dog", "True", "10", "A"], ["2-11-A-1.wav", "2", "1", "cat", "False", "11", "A"]]
    (root / "meta").mkdir(parents=True)
    with open(root / "meta" / "esc50.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        writer.writerows(rows)
    for row in rows:
        _wav(root / "audio" / row[0], seconds=1.0)
    assert main(["data", "prepare-esc50", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "out" / "esc50.jsonl.gz")]) == 0
    out = capsys.readouterr().out
    assert "clips 2" in out and "distinct labels 2" in out and "esc50: 2" in out
    assert "min 1.00, mean 1.00, max 1.00" in out


def test_info_on_clotho_manifest(tmp_path, capsys):
    root = _clotho(tmp_path / "clotho", names=("a.wav", "b.wav", "c.wav"))
    assert main(["data", "prepare-clotho", "--root", str(root), "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "out" / "clotho_evaluation.jsonl.gz")]) == 0
    out = capsys.readouterr().out
    assert "clips 3, captions 15" in out and "captions per clip  5: 3" in out and "evaluation: 3" in out


def test_info_on_missing_manifest_exits_2(tmp_path, capsys):
    assert main(["data", "info", str(tmp_path / "nope.jsonl.gz")]) == 2
    assert "manifest not found" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("lasr.data.demo") is None, reason="lasr.data.demo not written yet")
def test_demo_builds_corpus_and_manifests(tmp_path, capsys):
    out = tmp_path / "demo"
    code = main(["data", "demo", "--out", str(out), "--seed", "0", "--n-development", "6",
                 "--n-validation", "3", "--n-evaluation", "3"])
    assert code == 0, capsys.readouterr().err
    manifests = out / "manifests"
    for split, count in (("development", 6), ("validation", 3), ("evaluation", 3)):
        records = read_manifest(manifests / f"clotho_{split}.jsonl.gz")
        assert len(records) == count and all(len(r.captions) == 5 for r in records)
    esc50 = read_manifest(manifests / "esc50.jsonl.gz")
    assert esc50 and all(r.fold in range(1, 6) and len(r.labels) == 1 for r in esc50)
    sources = read_manifest(manifests / "sources.jsonl.gz")
    assert sources and all(len(r.captions) == 1 and len(r.labels) == 1 for r in sources)
