"""The reply filter on 155 labelled replies: no garbage or non-English reply accepted, no good caption
rejected, wrapped captions (labels, preambles, chat markers, think blocks) cleaned to the exact caption."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "reply_filter.py"


def test_every_labelled_reply_is_judged_as_labelled():
    spec = importlib.util.spec_from_file_location("reply_filter", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.judge_fixture()
    assert len(rows) >= 150 and {r["category"] for r in rows} >= {"good", "garbage", "loop", "off_topic",
                                                                  "other_language", "wrapped"}
    wrong = [(r["raw"][:60], r["reason"], r["parsed"][:60]) for r in rows
             if r["decision"] != r["label"] or (r["label"] == "accept" and r["parsed"] != r["text"])]
    assert not wrong
