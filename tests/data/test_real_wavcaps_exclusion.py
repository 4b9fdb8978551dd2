"""prepare-wavcaps removes the DCASE 2025 excluded Freesound ids, read from the official list in ../shared."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from lasr.cli import main
from lasr.data.manifest import read_manifest
from lasr.data.recipes.wavcaps import read_exclusion_list


def test_official_exclusion_list_removes_listed_freesound_clips_mp3(shared_data, tmp_path):
    official = shared_data / "clotho_sample" / "dcase2025_task6_excluded_freesound_ids.csv"
    excluded = read_exclusion_list(official)
    assert len(excluded) == 3080 and "Not found" in excluded  # 3,079 ids + the "Not found" row, as strings
    listed = sorted(i for i in excluded if i.isdigit())[:3]
    kept = [str(i) for i in range(10_000_000, 10_000_004) if str(i) not in excluded]
    root = tmp_path / "WavCaps"
    items = [{"id": i, "caption": f"Sound number {i}.", "duration": 1.0} for i in listed + kept]
    (root / "json_files" / "FreeSound").mkdir(parents=True)
    (root / "json_files" / "FreeSound" / "fsd_final.json").write_text(json.dumps({"data": items}))
    (root / "audio" / "FreeSound").mkdir(parents=True)
    tone = (0.1 * np.sin(np.arange(32000) / 5.0)).astype("float32")
    for item in items:  # the baseline's WavCaps conversion is MP3
        sf.write(root / "audio" / "FreeSound" / f"{item['id']}.mp3", tone, 32000, format="MP3")
    out = tmp_path / "manifests"
    assert main(["data", "prepare-wavcaps", "--root", str(root), "--out", str(out), "--sources", "FreeSound",
                 "--exclude-csv", str(official), "--audio-ext", "mp3"]) == 0
    records = read_manifest(out / "wavcaps_freesound.jsonl.gz")
    assert [r.id for r in records] == kept
    assert all(r.audio_path.endswith(".mp3") and r.duration > 0.9 for r in records)
