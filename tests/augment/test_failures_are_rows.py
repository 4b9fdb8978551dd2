"""Per-request failures are rows: a refusal, a non-UTF-8 body and a rate limit do not stop a job, a kill -9
loses only what was in flight, and nothing is paid twice on resume (counted at the server)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

from lasr.cli import main
from lasr.data.manifest import ClipRecord, write_manifest


def _manifest(path, clips=30):
    records = [ClipRecord(id=f"c{i}.wav", audio_path=f"/nonexistent/c{i}.wav", duration=5.0, sample_rate=16000,
                          captions=(f"a dog barks {i} times in a yard", f"rain falls {i} times on a roof"),
                          dataset="tiny") for i in range(clips)]
    write_manifest(records, path)
    return path


def _rows(store):
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT custom_id, status, rejection FROM results").fetchall()
        except sqlite3.OperationalError:  # the job is still creating its schema
            return []


def _args(manifest, server, store):
    return ["augment", "paraphrase", "--data", str(manifest), "--backend", "openai", "--base-url", server.url,
            "--model", "loopback", "--store", str(store), "--samples", "1", "--concurrency", "4", "--no-progress"]


def test_sixty_request_job_survives_refusal_bad_body_rate_limit_and_kill(server, tmp_path, capsys):
    manifest, store = _manifest(tmp_path / "m.jsonl"), tmp_path / "store.sqlite"
    server.latency_s, server.retry_after = 0.15, "1"
    server.faults.extend(["400", "badutf8", "429"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    job = subprocess.Popen([sys.executable, "-c", "import sys; from lasr.cli import main; sys.exit(main(sys.argv[1:]))",
                            *_args(manifest, server, store)], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job.poll() is None:
        if store.is_file() and len(_rows(store)) >= 20:
            break
        time.sleep(0.01)
    # hold the next answers, give the job time to store what it received, kill it with requests in flight
    server.paused.set()
    time.sleep(1.0)
    assert job.poll() is None and server.in_flight, "the job ended before it could be killed"
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    time.sleep(1.0)  # the kernel closes the dead job's sockets
    server.paused.clear()
    killed_at = len(_rows(store))
    assert 20 <= killed_at < 60
    time.sleep(0.5)  # the requests in flight at the kill reach the server and find no client

    assert main(_args(manifest, server, store)) == 0
    rows = _rows(store)
    assert len(rows) == 60
    failed = {r[2]: r[0] for r in rows if r[1] == "failed"}
    assert set(failed) == {"refused", "undecodable"} and sum(r[1] == "accepted" for r in rows) == 58
    assert max(server.answered.values()) == 1  # no answer delivered twice
    assert all(server.request_ids[cid] == 1 for cid in failed.values())  # failures are not re-sent on resume
    first_three = sorted(server.arrivals, key=lambda cid: server.arrivals[cid][0])[:3]
    limited = server.arrivals[first_three[2]]  # the third arrival was answered 429 with Retry-After: 1
    assert set(failed.values()) == set(first_three[:2]) and limited[1] - limited[0] >= 1.0

    # a rerun sends nothing; `retry --rejected refused` sends the refused one again on the next run
    sent = server.requests
    capsys.readouterr()
    assert main(_args(manifest, server, store)) == 0
    out = capsys.readouterr().out
    assert server.requests == sent and re.search(r"earlier failures skipped\s+2\n", out)
    assert main(["augment", "retry", "--store", str(store), "--rejected", "refused"]) == 0
    assert main(_args(manifest, server, store)) == 0
    assert server.requests == sent + 1 and server.request_ids[failed["refused"]] == 2
    assert {r[1] for r in _rows(store) if r[0] == failed["refused"]} == {"accepted"}


def test_summary_counts_each_failure_reason(server, tmp_path, capsys):
    manifest, store = _manifest(tmp_path / "m.jsonl", clips=3), tmp_path / "s.sqlite"
    server.faults.extend(["400", "badutf8"])
    assert main(_args(manifest, server, store)) == 0
    out = capsys.readouterr().out
    assert "failed: refused" in out and "failed: undecodable" in out and "accepted" in out
