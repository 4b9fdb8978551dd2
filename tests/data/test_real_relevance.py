"""The official DCASE 2025 relevance file resolves against the real Clotho evaluation captions, verbatim.

Runs ``lasr data prepare-clotho`` on the real caption CSV (CP949, as stored in ../shared) with placeholder
audio (tiny WAVs named as the CSV lists them), then resolves ``metadata_eval.csv`` the way the test step does.
"""

from __future__ import annotations

import csv

import numpy as np
import soundfile as sf

from lasr.cli import main
from lasr.data.manifest import read_manifest
from lasr.metrics.retrieval import load_relevance_csv, resolve_relevance_for_records

CLOTHO_ENCODING = "cp949"  # the copy in ../shared carries Korean columns (see its README)


def _placeholder_clotho(sample, root):
    """``root`` with the real evaluation caption CSV and one 0.2 s noise WAV per listed file."""
    root.mkdir()
    csv_path = sample / "clotho_captions_evaluation.csv"
    (root / csv_path.name).write_bytes(csv_path.read_bytes())
    audio = root / "clotho_audio_evaluation"
    audio.mkdir()
    with open(csv_path, encoding=CLOTHO_ENCODING, newline="") as handle:
        names = [row["file_name"] for row in csv.DictReader(handle)]
    noise = (np.random.default_rng(0).standard_normal(1600) * 0.01).astype("float32")
    for name in names:
        sf.write(audio / name, noise, 8000, subtype="PCM_16")
    return names


def test_official_relevance_resolves_against_prepared_clotho(shared_data, tmp_path):
    sample = shared_data / "clotho_sample"
    names = _placeholder_clotho(sample, tmp_path / "clotho")
    out = tmp_path / "manifests"
    code = main(["data", "prepare-clotho", "--root", str(tmp_path / "clotho"), "--out", str(out),
                 "--splits", "evaluation", "--encoding", CLOTHO_ENCODING])
    assert code == 0
    records = read_manifest(out / "clotho_evaluation.jsonl.gz")
    assert len(records) == len(names) == 1045
    trailing = [c for r in records for c in r.captions if c != c.strip()]
    assert "A train coming down the track with cars passing by on the side of it, " in trailing

    table = load_relevance_csv(sample / "metadata_eval.csv")
    clips = list(range(len(records)))
    text_clip = [c for c in clips for _ in records[c].captions]
    text_slot = [s for c in clips for s in range(len(records[c].captions))]
    query_rows, relevant = resolve_relevance_for_records(table, records, clips, text_clip, text_slot)
    assert len(query_rows) == 1037
    assert sum(len(r) for r in relevant) == 3116
    captions = [records[c].captions[s] for c, s in zip(text_clip, text_slot)]
    assert [captions[row] for row in query_rows] == list(table)  # each query found as its verbatim caption
