"""`lasr embed` shows its progress in a log file (no terminal): plain lines with count, rate and ETA."""

from __future__ import annotations

from lasr.search.clips import list_collection
from lasr.search.embed import build_index

from .toy import toy_model, write_tones


def test_embedding_progress_reaches_a_log(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LASR_PROGRESS_INTERVAL", "0")
    write_tones(tmp_path / "tones")
    refs = list_collection(tmp_path / "tones")
    build_index(toy_model(), refs, tmp_path / "index", checkpoint="toy", source="tones", shard_size=3, batch_size=2)
    err = capsys.readouterr().err  # pytest's capture is not a terminal, like a log file
    lines = [line for line in err.splitlines() if line.startswith("embedding:")]
    assert "\r" not in err and len(lines) >= 3
    assert f"{len(refs)}/{len(refs)}" in lines[-1] and "clip/s" in lines[-1]
