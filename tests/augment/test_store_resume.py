"""The store survives SIGKILL mid-run: on resume nothing is lost and nothing is duplicated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from lasr.cli import main
from lasr.data.manifest import ClipRecord, write_manifest

N_CLIPS, CONCURRENCY = 100, 4


def _count(store: Path) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def test_sigkill_mid_run_then_resume_loses_and_duplicates_nothing(server, tmp_path):
    manifest = tmp_path / "m.jsonl"
    write_manifest([ClipRecord(id=f"c{i}", audio_path="/x.wav", duration=1.0, sample_rate=16000,
                               captions=(f"a dog barks {i} times", f"rain falls for {i} minutes"), dataset="t")
                    for i in range(N_CLIPS)], manifest)
    server.latency_s = 0.03
    store = tmp_path / "store.sqlite"
    args = ["augment", "paraphrase", "--data", str(manifest), "--backend", "openai", "--base-url", server.url,
            "--model", "loopback", "--store", str(store), "--samples", "1", "--concurrency", str(CONCURRENCY),
            "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen([sys.executable, "-m", "lasr.cli", *args], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 40
    while _count(store) < 30 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    assert child.returncode == -signal.SIGKILL, child.stderr.read().decode()[-2000:]
    done_before = _count(store)
    assert 30 <= done_before < 2 * N_CLIPS
    sent_before = server.requests
    assert sent_before - done_before <= CONCURRENCY  # only requests in flight were lost

    assert main(args) == 0
    with sqlite3.connect(store) as db:
        ids = [row[0] for row in db.execute("SELECT custom_id FROM results WHERE status = 'accepted'")]
    assert len(ids) == len(set(ids)) == 2 * N_CLIPS
    assert server.requests - sent_before == 2 * N_CLIPS - done_before  # resume sends only what is missing
    resent = [cid for cid, n in server.request_ids.items() if n > 1]
    assert len(resent) <= CONCURRENCY
