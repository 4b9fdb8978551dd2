"""The reply filter on its labelled replies: 155 it was tuned on, 73 held out, and two fresh sets (25 + 26):
no garbage or non-English reply accepted, no good caption rejected, wrapped captions (labels, list markers,
preambles, chat markers, think blocks) cleaned to the exact caption."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "reply_filter.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("reply_filter", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.parametrize("name,least", [("tuned", 150), ("held-out", 60), ("fresh", 20), ("fresh-2", 20)])
def test_every_labelled_reply_is_judged_as_labelled(name, least):
    bench = load_bench()
    rows = bench.judge_fixture(bench.SETS[name])
    assert len(rows) >= least and {r["category"] for r in rows} >= {"good", "garbage", "loop", "other_language",
                                                                    "wrapped"}
    assert not [(r["raw"][:60], r["reason"], r["parsed"][:60]) for r in bench.wrong_rows(rows)]


def test_held_out_replies_are_new():
    def raws(path: Path) -> set[str]:
        return {json.loads(line)["raw"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}

    sets = load_bench().SETS
    seen = raws(sets["tuned"])
    for name in ("held-out", "fresh", "fresh-2"):
        new = raws(sets[name])
        assert not seen & new, name
        seen |= new
