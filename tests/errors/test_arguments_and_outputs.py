"""Bad arguments and output locations are refused before any work, in one line with exit code 2."""

from __future__ import annotations

import csv
import json
import os
import stat

import numpy as np
import pytest
import soundfile as sf

from lasr.cli import main
from lasr.data.manifest import ClipRecord, write_manifest
from lasr.errors import DataError, LasrError
from lasr.search.index import EmbeddingIndex, EmbeddingIndexError
from lasr.search.search import read_queries
from lasr.models.run_config import absolute_paths, missing_paths
from lasr.utils.atomic import atomic_open, atomic_path


def _exit_code(argv) -> int:
    """Exit code of ``lasr argv``: argparse errors raise SystemExit, LasrErrors are returned."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("argv, message", [
    (["search", "--index", "i", "--text", "dog", "--k", "-3"], "argument --k: must be a positive integer, got -3"),
    (["search", "--index", "i", "--text", ""], "argument --text: must not be empty"),
    (["search", "--index", "i", "--text", "   "], "argument --text: must not be empty"),
    (["zeroshot", "--ckpt", "c", "--data", "d", "--n-prompts", "-1"], "argument --n-prompts: must be 0 or more"),
    (["embed", "--ckpt", "c", "--audio", "a", "--out", "o", "--batch-size", "-4"], "argument --batch-size"),
    (["teachers", "--ckpt", "c", "--data", "d", "--out", "o", "--batch-size", "0"], "argument --batch-size"),
    (["separate", "--ckpt", "c", "--audio", "a", "--text", "t", "--out", "o", "--window", "-1"], "argument --window"),
    (["augment", "paraphrase", "--data", "d", "--samples", "-2"], "argument --samples"),
    (["data", "demo", "--out", "o", "--n-development", "-5"], "argument --n-development"),
    (["zeroshot", "--ckpt", "c", "--data", "d", "--seed", "-1"], "argument --seed: must be 0 or more"),
])
def test_nonsense_values_are_refused_by_argparse(argv, message, capsys):
    assert _exit_code(argv) == 2
    assert message in _error_line(capsys)


@pytest.fixture()
def a_file(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("not a folder")
    return path


def test_output_under_a_regular_file_is_found_before_the_work(a_file, tmp_path, capsys):
    # the checkpoint does not exist: the output check must come first
    assert _exit_code(["embed", "--ckpt", str(tmp_path / "none.ckpt"), "--audio", str(tmp_path),
                       "--out", str(a_file / "index")]) == 2
    assert "is a file, not a folder" in _error_line(capsys)
    assert _exit_code(["data", "demo", "--out", str(a_file / "demo")]) == 2
    assert "is a file, not a folder" in _error_line(capsys)


def test_existing_folder_as_output_file_is_found_before_the_work(tmp_path, capsys):
    audio = tmp_path / "in.wav"
    sf.write(audio, np.zeros(1600, dtype=np.float32), 16000)
    (tmp_path / "out_dir").mkdir()
    assert _exit_code(["separate", "--ckpt", str(tmp_path / "none.ckpt"), "--audio", str(audio), "--text", "a dog",
                       "--out", str(tmp_path / "out_dir")]) == 2
    assert "is an existing folder" in _error_line(capsys)


@pytest.mark.parametrize("extra, message", [
    (["--device", "cuda:99"], "--device 'cuda:99': this machine has"),
    (["--device", "gpu-please"], "not a torch device"),
    (["--window", "2", "--overlap", "3"], "--overlap 3.0 s must be shorter than --window 2.0 s"),
])
def test_separate_device_and_window_are_checked_first(tmp_path, extra, message, capsys):
    assert _exit_code(["separate", "--ckpt", str(tmp_path / "none.ckpt"), "--audio", "a.wav", "--text", "a dog",
                       "--out", str(tmp_path / "o.wav"), *extra]) == 2
    assert message in _error_line(capsys)


def test_separate_batch_checks_every_output_before_loading_the_model(tmp_path, a_file, capsys):
    jobs = tmp_path / "jobs.csv"
    with open(jobs, "w", newline="") as handle:
        csv.writer(handle).writerows([["audio", "text", "out"], ["x.wav", "a dog", str(a_file / "x.wav")],
                                      ["y.wav", "a cat", str(tmp_path / "same.wav")],
                                      ["z.wav", "a cow", str(tmp_path / "same.wav")]])
    assert _exit_code(["separate", "--ckpt", str(tmp_path / "none.ckpt"), "--csv", str(jobs),
                       "--out", str(tmp_path / "outs")]) == 2
    err = capsys.readouterr().err
    assert "2 problems, nothing was separated" in err and "is a file" in err and "written by two jobs" in err


def test_embed_refuses_a_folder_that_is_not_an_index_before_loading(tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("x")
    assert _exit_code(["embed", "--ckpt", str(tmp_path / "none.ckpt"), "--audio", str(tmp_path),
                       "--out", str(tmp_path / "busy")]) == 2
    assert "not an embedding index" in _error_line(capsys)


def test_prepare_with_skip_missing_never_writes_an_empty_manifest(tmp_path, capsys):
    root = tmp_path / "clotho"
    root.mkdir()
    with open(root / "clotho_captions_evaluation.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name"] + [f"caption_{i}" for i in range(1, 6)])
        writer.writerow(["gone.wav"] + [f"a sound number {i}" for i in range(1, 6)])
    out = tmp_path / "manifests"
    assert _exit_code(["data", "prepare-clotho", "--root", str(root), "--out", str(out), "--skip-missing"]) == 2
    err = capsys.readouterr().err
    assert "no clips left for 'evaluation': all 1 listed audio file(s) are missing" in err
    assert not out.exists() or not list(out.glob("*.jsonl*"))


def test_empty_text_in_a_query_file_is_an_error_naming_the_row(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"text": "a dog"}\n{"text": " "}\n')
    with pytest.raises(DataError, match="q.jsonl, row 2: empty text query"):
        read_queries(path)


# ---- file modes -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_atomic_writes_get_the_mode_of_a_plain_open(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        record = ClipRecord(id="a", audio_path="/x/a.wav", duration=1.0, sample_rate=16000)
        write_manifest([record], tmp_path / "m.jsonl.gz")
        with atomic_path(tmp_path / "s.wav") as tmp:
            sf.write(tmp, np.zeros(160, dtype=np.float32), 16000, format="WAV")
        with atomic_open(tmp_path / "i.json") as handle:
            handle.write("{}")
        with open(tmp_path / "plain.txt", "w") as handle:
            handle.write("x")
    finally:
        os.umask(old)
    for name in ("m.jsonl.gz", "s.wav", "i.json", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_atomic_replace_keeps_the_existing_files_mode(tmp_path):
    path = tmp_path / "keep.json"
    path.write_text("old")
    path.chmod(0o664)
    with atomic_open(path) as handle:
        handle.write("new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o664 and path.read_text() == "new"


# ---- paths in indices and run configs -------------------------------------------------------------------------
def test_index_finds_its_checkpoint_from_another_folder_and_names_it_when_gone(tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "ckpt").mkdir(parents=True)
    (work / "ckpt" / "m.ckpt").write_bytes(b"x")
    monkeypatch.chdir(work)
    meta = {"embed_dim": 4, "model_fingerprint": "f", "sample_rate": 16000, "max_seconds": 1.0,
            "collection_digest": "d", "count": 0, "shard_size": 1,
            **EmbeddingIndex.paths_meta("index", "ckpt/m.ckpt", "audio")}
    EmbeddingIndex.create_or_resume("index", meta)
    stored = json.loads((work / "index" / "index.json").read_text())
    assert stored["checkpoint"] == str(work / "ckpt" / "m.ckpt") and stored["checkpoint_relative"] == "../ckpt/m.ckpt"
    monkeypatch.chdir(tmp_path)
    assert EmbeddingIndex.open(work / "index").checkpoint_path() == work / "ckpt" / "m.ckpt"
    moved = tmp_path / "moved"
    work.rename(moved)  # the whole tree moved: the path relative to the index still works
    assert EmbeddingIndex.open(moved / "index").checkpoint_path().resolve() == (moved / "ckpt" / "m.ckpt").resolve()
    (moved / "ckpt" / "m.ckpt").unlink()
    with pytest.raises(EmbeddingIndexError, match=f"checkpoint that built this index is gone \\(not at {work}"):
        EmbeddingIndex.open(moved / "index").checkpoint_path()


def test_stored_run_config_paths_are_absolute_and_missing_ones_are_named(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text("")
    monkeypatch.chdir(tmp_path)
    config = {"data": {"init_args": {"train": [{"path": "data/train.jsonl"}], "sample_rate": 16000,
                                     "missing": "data/nope.jsonl"}},
              "model": {"init_args": {"text": "minilm", "caption": "a dog. barks"}}}
    fixed = absolute_paths(config)
    assert fixed["data"]["init_args"]["train"][0]["path"] == str(tmp_path / "data" / "train.jsonl")
    assert fixed["data"]["init_args"]["missing"] == "data/nope.jsonl"  # not a file: left as typed
    assert fixed["model"] == config["model"]
    (tmp_path / "data" / "train.jsonl").unlink()
    assert missing_paths(fixed) == [str(tmp_path / "data" / "train.jsonl")]


def test_lasr_error_for_a_missing_init_checkpoint_names_the_absolute_path(tmp_path, monkeypatch, tiny_model_config):
    from lasr.tasks.retrieval import RetrievalTask
    from lasr.models.run_config import build_dual_encoder

    monkeypatch.chdir(tmp_path)
    with pytest.raises(LasrError, match=f"looked at {tmp_path}/gone.ckpt"):
        RetrievalTask(build_dual_encoder(tiny_model_config), init_from="gone.ckpt")
