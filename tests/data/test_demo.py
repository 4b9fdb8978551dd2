"""The procedurally generated demo corpus: determinism, exact layout, truthful captions, relevance, audio sanity."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasr.data.demo import EVENT_TYPES, NOUNS, describes, make_demo
from lasr.errors import DataError

SMALL = dict(n_development=12, n_validation=4, n_evaluation=16, esc50_per_class_per_fold=2, n_sources=6)
CAPTION_HEADER = ["file_name", "caption_1", "caption_2", "caption_3", "caption_4", "caption_5"]
SPLITS = ("development", "validation", "evaluation")
ESC50_NAME = re.compile(r"^([1-5])-(\d+)-([ABC])-(\d+)\.wav$")


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, dict, float]:
    out = tmp_path_factory.mktemp("demo") / "corpus"
    started = time.perf_counter()
    summary = make_demo(out, seed=3, **SMALL)
    return out, summary, time.perf_counter() - started


@pytest.fixture(scope="module")
def metadata(corpus) -> dict:
    return json.loads((corpus[0] / "clotho" / "demo_metadata.json").read_text(encoding="utf-8"))


def test_same_seed_gives_identical_bytes_other_seed_differs(corpus, tmp_path):
    root, _, _ = corpus
    again, other = tmp_path / "again", tmp_path / "other"
    make_demo(again, seed=3, **SMALL)
    make_demo(other, seed=4, **SMALL)
    reference = _hashes(root)
    assert len(reference) > 100 and reference == _hashes(again)
    differing = {name for name, digest in _hashes(other).items() if reference.get(name) != digest}
    wavs = [n for n in reference if n.endswith(".wav")]
    assert set(wavs) <= differing  # every clip changes with the seed
    assert "clotho/clotho_captions_development.csv" in differing


def test_layout_headers_and_counts(corpus):
    root, summary, _ = corpus
    counts = {"development": 12, "validation": 4, "evaluation": 16}
    for split, count in counts.items():
        header, rows = _rows(root / "clotho" / f"clotho_captions_{split}.csv")
        assert header == CAPTION_HEADER and len(rows) == count
        wavs = sorted(p.name for p in (root / "clotho" / f"clotho_audio_{split}").glob("*.wav"))
        assert wavs == sorted(r["file_name"] for r in rows)
    assert _rows(root / "clotho" / "metadata_eval.csv")[0] == ["query", "audio_filenames"]
    assert _rows(root / "esc50" / "meta" / "esc50.csv")[0] == [
        "filename", "fold", "target", "category", "esc10", "src_file", "take"]
    assert _rows(root / "sources" / "sources.csv")[0] == ["file_name", "label", "caption"]
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert "seed 3" in readme and "CC0" in readme and "synthetic" in readme
    assert summary["counts"] == {**counts, "esc50": 10 * 5 * 2, "sources": 6}
    assert summary["reused"] is False and Path(summary["paths"]["relevance"]).is_file()


def test_five_distinct_truthful_captions_per_clip(corpus, metadata):
    root = corpus[0]
    for split in SPLITS:
        _, rows = _rows(root / "clotho" / f"clotho_captions_{split}.csv")
        texts = [row[f"caption_{k}"] for row in rows for k in range(1, 6)]
        assert len(set(texts)) == len(texts)  # distinct within a clip and across the split
        assert all(8 <= len(t.split()) <= 20 for t in texts)
        by_name = {c["file_name"]: c for c in metadata["splits"][split]}
        for row in rows:
            clip = by_name[row["file_name"]]
            assert [c["text"] for c in clip["captions"]] == [row[f"caption_{k}"] for k in range(1, 6)]
            for caption in clip["captions"]:
                assert describes(caption["mentions"], clip)
                for mention in caption["mentions"]:  # every event is named by one of its type's nouns
                    assert any(noun in caption["text"].lower() for noun in NOUNS[mention["type"]])


def test_relevance_file_parses_and_is_exact(corpus, metadata):
    root = corpus[0]
    _, rows = _rows(root / "clotho" / "metadata_eval.csv")
    _, captions = _rows(root / "clotho" / "clotho_captions_evaluation.csv")
    owner = {row[f"caption_{k}"]: row["file_name"] for row in captions for k in range(1, 6)}
    clips = metadata["splits"]["evaluation"]
    mentions = {c["text"]: c["mentions"] for clip in clips for c in clip["captions"]}
    assert len(rows) == 16 and len({r["query"] for r in rows}) == 16
    sizes = []
    for row in rows:
        relevant = ast.literal_eval(row["audio_filenames"])
        assert isinstance(relevant, list) and row["audio_filenames"].startswith("['")
        assert row["query"] in owner and relevant[0] == owner[row["query"]]
        assert len(set(relevant)) == len(relevant) and set(relevant) <= set(owner.values())
        # exact: a clip is listed iff the query's mentions are true of it
        truth = {c["file_name"] for c in clips if describes(mentions[row["query"]], c)}
        assert set(relevant) == truth
        sizes.append(len(relevant))
    assert max(sizes) >= 2  # several clips share what some caption says


def test_describes_rejects_a_false_attribute_and_a_wrong_structure(metadata):
    clip = metadata["splits"]["development"][0]
    event = clip["events"][0]
    wrong = {"loud": "quiet", "quiet": "loud"}[event["attributes"]["loudness"]]
    mentions = [{"role": e["role"], "type": e["type"], "attributes": {}} for e in clip["events"]]
    assert describes(mentions, clip)
    mentions[0]["attributes"] = {"loudness": wrong}
    assert not describes(mentions, clip)
    assert not describes([{"role": "nonexistent", "type": event["type"], "attributes": {}}], clip)


def test_event_timing_matches_structure(metadata):
    for split in SPLITS:
        for clip in metadata["splits"][split]:
            events = {e["role"]: e for e in clip["events"]}
            assert all(0 <= e["onset"] < e["offset"] <= clip["duration"] for e in clip["events"])
            if clip["structure"] == "sequence":
                assert events["first"]["offset"] < events["second"]["onset"]
            elif clip["structure"] == "overlap":
                fg, bg = events["foreground"], events["background"]
                assert bg["onset"] < fg["onset"] and fg["offset"] < bg["offset"]


def test_esc50_names_match_csv(corpus):
    root = corpus[0]
    _, rows = _rows(root / "esc50" / "meta" / "esc50.csv")
    assert sorted(p.name for p in (root / "esc50" / "audio").glob("*.wav")) == sorted(r["filename"] for r in rows)
    for row in rows:
        fold, src, take, target = ESC50_NAME.match(row["filename"]).groups()
        assert (row["fold"], row["src_file"], row["take"], row["target"]) == (fold, src, take, target)
        assert row["category"] == EVENT_TYPES[int(target)] and row["esc10"] in ("True", "False")
    per_class_fold = {(r["category"], r["fold"]) for r in rows}
    assert len(per_class_fold) == 10 * 5 and len({r["category"] for r in rows}) == 10


def test_sources_are_labelled_single_events(corpus):
    root = corpus[0]
    _, rows = _rows(root / "sources" / "sources.csv")
    assert len(rows) == 6 and all(r["label"] in EVENT_TYPES and r["caption"].strip() for r in rows)
    assert all((root / "sources" / r["file_name"]).is_file() for r in rows)


def test_every_wav_is_pcm16_not_silent_and_below_peak_limit(corpus, metadata):
    root = corpus[0]
    durations = {c["file_name"]: c["duration"] for s in SPLITS for c in metadata["splits"][s]}
    wavs = sorted(root.rglob("*.wav"))
    assert len(wavs) == 12 + 4 + 16 + 100 + 6
    for path in wavs:
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        audio, _ = sf.read(str(path), dtype="float32")
        peak = float(np.abs(audio).max())
        assert np.isfinite(audio).all() and 0.01 < peak <= 0.99, path
        if path.name in durations:
            assert abs(info.frames - durations[path.name] * 16000) <= 1


def test_rerun_same_arguments_is_a_fast_noop(corpus):
    root = corpus[0]
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    started = time.perf_counter()
    summary = make_demo(root, seed=3, **SMALL)
    assert summary["reused"] is True and time.perf_counter() - started < 1.0
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before


def test_other_arguments_replace_the_corpus_and_keep_foreign_files(tmp_path):
    out = tmp_path / "demo"
    make_demo(out, seed=0, **SMALL)
    (out / "manifests").mkdir()
    (out / "manifests" / "keep.txt").write_text("x")
    summary = make_demo(out, seed=1, **{**SMALL, "n_development": 5})
    assert summary["reused"] is False and summary["counts"]["development"] == 5
    assert len(list((out / "clotho" / "clotho_audio_development").glob("*.wav"))) == 5
    assert (out / "manifests" / "keep.txt").read_text() == "x"
    assert not [p for p in out.iterdir() if p.name.startswith(".demo-tmp-")]


def test_refuses_to_replace_foreign_folders_unless_overwrite(tmp_path):
    out = tmp_path / "data"
    (out / "clotho").mkdir(parents=True)
    (out / "clotho" / "mine.csv").write_text("not a demo")
    with pytest.raises(DataError, match="clotho"):
        make_demo(out, seed=0, **SMALL)
    assert (out / "clotho" / "mine.csv").is_file()
    make_demo(out, seed=0, overwrite=True, **SMALL)
    assert not (out / "clotho" / "mine.csv").exists() and (out / "clotho" / "metadata_eval.csv").is_file()


@pytest.mark.parametrize("bad", [{"n_evaluation": 0}, {"sample_rate": 4000}, {"clip_seconds": (2.0, 3.0)}])
def test_bad_arguments_raise_data_error(tmp_path, bad):
    with pytest.raises(DataError):
        make_demo(tmp_path / "x", **{**SMALL, **bad})


def test_event_types_are_separable_by_simple_spectral_features(corpus):
    """Learnability smoke test: nearest class centroid on log-spectrum statistics, leave-one-fold-out."""
    root = corpus[0]
    _, rows = _rows(root / "esc50" / "meta" / "esc50.csv")

    def features(path: Path, n_fft: int = 512, n_bands: int = 24) -> np.ndarray:
        audio, _ = sf.read(str(path), dtype="float64")
        frames = audio[: len(audio) // n_fft * n_fft].reshape(-1, n_fft) * np.hanning(n_fft)
        power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        edges = np.unique(np.geomspace(2, n_fft // 2, n_bands + 1).astype(int))  # log-spaced bands
        bands = np.log(np.add.reduceat(power, edges[:-1], axis=1) + 1e-10)  # (frames, bands)
        loudest = bands.max(axis=1)
        active = loudest > np.median(loudest) + 3
        a = bands[active] if active.sum() > 2 else bands
        weights = np.exp(a - a.max(axis=1, keepdims=True))
        centroid = (weights * np.arange(a.shape[1])).sum(1) / weights.sum(1)
        slope = np.polyfit(np.arange(len(centroid)), centroid, 1)[0] if len(centroid) > 2 else 0.0
        return np.concatenate([a.mean(0), a.std(0), [10 * slope, np.abs(np.diff(a, axis=0)).mean()]])

    x = np.stack([features(root / "esc50" / "audio" / r["filename"]) for r in rows])
    y = np.array([int(r["target"]) for r in rows])
    folds = np.array([int(r["fold"]) for r in rows])
    correct = 0
    for fold in range(1, 6):
        train, test = folds != fold, folds == fold
        z = (x - x[train].mean(0)) / (x[train].std(0) + 1e-6)
        centroids = np.stack([z[train & (y == c)].mean(0) for c in range(10)])
        guess = np.argmin(((z[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        correct += int((guess == y[test]).sum())
    assert correct / len(y) > 0.5  # chance is 0.1; 0.74 for seed 3 when written
