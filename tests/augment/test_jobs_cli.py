"""Every kind through ``lasr augment`` against the loopback server: store, resume, retries, export, batch files."""

from __future__ import annotations

import itertools
import json
import sqlite3

import pytest

from lasr.data.caption_table import read_table
from lasr.cli import main
from lasr.data.manifest import read_manifest


def _run(kind, manifest, server, store, *extra):
    return main(["augment", kind, "--data", str(manifest), "--backend", "openai", "--base-url", server.url,
                 "--model", "loopback", "--store", str(store), "--no-progress", *extra])


def _rows(store):
    with sqlite3.connect(store) as db:
        return db.execute("SELECT custom_id, kind, stage, status, attempts, rejection FROM results").fetchall()


@pytest.mark.parametrize("kind, extra, expected", [
    ("paraphrase", ["--samples", "2"], 24),
    ("rewrite", ["--samples", "3", "--limit", "4"], 12),
    ("backtranslate", ["--languages", "German,Spanish", "--slots", "1"], 12 + 12),
    ("mix", ["--pairs", "5", "--samples", "1", "--slots", "1"], 5),
    ("modifiers", ["--pairs", "7", "--samples", "1"], 7),
    ("class-prompts", ["--descriptions", "2", "--captions-per-description", "2"], 6 * 2 + 6 * 2 * 2),
])
def test_each_kind_runs_resumes_and_exports(kind, extra, expected, tiny_manifest, server, tmp_path, capsys):
    counter = itertools.count()
    server.answer = lambda messages, body: f"In this recording, {messages[-1]['content'][:60]} again {next(counter)}."
    store = tmp_path / "store.sqlite"
    assert _run(kind, tiny_manifest, server, store, *extra) == 0
    rows = _rows(store)
    assert len(rows) == expected and all(r[3] == "accepted" for r in rows)
    sent = server.requests
    assert _run(kind, tiny_manifest, server, store, *extra) == 0  # resume: everything is a cache hit
    assert server.requests == sent
    assert f"cache hits                  {expected}" in capsys.readouterr().out
    out = tmp_path / "captions.jsonl"
    assert main(["augment", "export", "--store", str(store), "--out", str(out)]) == 0
    table = read_table(out)
    assert table and all(row["text"] for row in table)
    if kind == "mix":
        assert all(row["extra"]["clip_key_b"] != row["clip_key"] and "snr_db" in row["extra"]["mix"] for row in table)
    if kind == "modifiers":
        assert all(row["extra"]["clips"] and row["extra"]["combine"] in ("single", "concat", "mix") for row in table)
    if kind == "backtranslate":
        assert {row["extra"]["language"] for row in table} == {"German", "Spanish"}
        assert all(row["source"] in {r.captions[0] for r in read_manifest(tiny_manifest)} for row in table)
    if kind == "class-prompts":
        assert {row["kind"] for row in table} == {"class-prompts", "class-description"}


def test_rejected_outputs_are_retried_then_given_up(tiny_manifest, server, tmp_path, capsys):
    # first round: refusal, refusal, good; second round (retries): too short, good
    answers = iter(["Sure, here is a caption", "Sure, here is a caption", "A dog is yapping outdoors as rain falls.",
                    "dog", "A dog is barking outdoors as rain falls."])
    server.answer = lambda messages, body: next(answers)
    store = tmp_path / "s.sqlite"
    assert _run("paraphrase", tiny_manifest, server, store, "--samples", "1", "--limit", "3",
                "--concurrency", "1", "--max-attempts", "2") == 0
    rows = _rows(store)
    assert sorted((r[4], r[3], r[5] or "") for r in rows) == [
        (1, "accepted", ""), (2, "accepted", ""), (2, "rejected", "too_short")]
    out = capsys.readouterr().out
    assert "rejected: empty" in out and "rejected: too_short" in out and "rejected (out of attempts)  1" in out
    # a request out of attempts stays rejected and is not re-sent
    server.answer = lambda messages, body: "x"
    assert _run("paraphrase", tiny_manifest, server, store, "--samples", "1", "--limit", "3",
                "--max-attempts", "1") == 0
    assert len(_rows(store)) == 3


def test_truncated_output_is_rejected_and_retried(tiny_manifest, server, tmp_path):
    server.faults.append("length")
    store = tmp_path / "s.sqlite"
    assert _run("paraphrase", tiny_manifest, server, store, "--samples", "1", "--limit", "1") == 0
    (row,) = _rows(store)
    assert row[3] == "accepted" and row[4] == 2


def test_template_with_missing_placeholder_fails_before_any_request(tiny_manifest, server, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nversion: 1\ninstruction: Rewrite in {style}.\ninput: '{source}'\nexamples: []\n")
    code = _run("paraphrase", tiny_manifest, server, tmp_path / "s.sqlite", "--template", f"paraphrase={bad}")
    assert code == 2 and "['style']" in capsys.readouterr().err
    assert server.requests == 0


def test_batch_api_export_then_import(tiny_manifest, tmp_path, capsys):
    store, requests_out, results = tmp_path / "s.sqlite", tmp_path / "req.jsonl", tmp_path / "res.jsonl"
    base = ["augment", "paraphrase", "--data", str(tiny_manifest), "--backend", "batch", "--model", "gpt-x",
            "--store", str(store), "--batch-out", str(requests_out), "--samples", "1", "--limit", "4", "--no-progress"]
    assert main(base) == 0
    lines = [json.loads(line) for line in requests_out.read_text().splitlines()]
    assert len(lines) == 4 and lines[0]["url"] == "/v1/chat/completions" and lines[0]["body"]["model"] == "gpt-x"
    # the provider answers out of order; one request failed
    answers = []
    for i, line in enumerate(reversed(lines)):
        body = {"choices": [{"message": {"role": "assistant", "content": f"In this recording, {line['body']['messages'][-1]['content']} {i}."},
                             "finish_reason": "stop"}], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
        response = {"status_code": 500 if i == 0 else 200, "body": body}
        answers.append({"id": f"b{i}", "custom_id": line["custom_id"], "response": response, "error": None})
    results.write_text("".join(json.dumps(a) + "\n" for a in answers))
    assert main(base + ["--batch-in", str(results)]) == 0
    rows = _rows(store)
    assert sum(r[3] == "accepted" for r in rows) == 3
    retry = [json.loads(line) for line in requests_out.read_text().splitlines()]
    assert len(retry) == 1 and retry[0]["custom_id"].endswith(".1")  # the failed one goes out again
