"""Precision/recall of the LLM reply filter on labelled replies, printed per set:

* ``tuned``: tests/augment/fixtures/replies.jsonl (155 replies; the filter's rules were tuned on it);
* ``held-out``: tests/augment/fixtures/replies_heldout.jsonl (73 replies written later, without looking at the
  rules' details, to measure how the rules carry over);
* ``fresh``: replies_fresh.jsonl (25), written after the held-out errors were seen but before the rules were
  changed for them (list markers, emphasised labels, "Of course! Here you go:"); measured before and after;
* ``fresh-2``: replies_fresh2.jsonl (26), written after that change, to measure it on unseen replies.

Each fixture row: ``source`` caption, ``raw`` reply, ``label`` accept|reject, ``category`` and, for accepted
rows, the ``text`` the table must receive. Run:
    .venv/bin/python benchmarks/reply_filter.py
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from lasr.augment.filters import judge
from lasr.augment.prompts import Template
from lasr.augment.requests import Sampling, make_request

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "augment" / "fixtures"
FIXTURE = FIXTURES / "replies.jsonl"
SETS = {"tuned": FIXTURE, "held-out": FIXTURES / "replies_heldout.jsonl", "fresh": FIXTURES / "replies_fresh.jsonl",
        "fresh-2": FIXTURES / "replies_fresh2.jsonl"}


def judge_fixture(path: Path = FIXTURE) -> list[dict]:
    """Every fixture row with ``decision`` (accept|reject), ``reason`` and ``parsed`` text added."""
    template = Template.load("paraphrase")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows:
        request = make_request(kind="paraphrase", stage="paraphrase", model="fixture", template=template,
                               fields={"source": row["source"]}, sampling=Sampling(), sample_index=0)
        row["parsed"], row["reason"] = judge(row["raw"], "stop", request)
        row["decision"] = "accept" if row["reason"] is None else "reject"
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"{'class':<8} {'precision':>9} {'recall':>7} {'support':>7}"]
    for cls in ("accept", "reject"):
        tp = sum(r["decision"] == cls and r["label"] == cls for r in rows)
        predicted, actual = sum(r["decision"] == cls for r in rows), sum(r["label"] == cls for r in rows)
        lines.append(f"{cls:<8} {tp / max(predicted, 1):>9.3f} {tp / max(actual, 1):>7.3f} {actual:>7}")
    exact = sum(r["decision"] == r["label"] and (r["label"] == "reject" or r["parsed"] == r.get("text")) for r in rows)
    lines.append(f"exact (decision right and, when accepted, the caption text exactly as labelled): {exact}/{len(rows)}")
    lines.append("")
    lines.append(f"{'category':<22} {'rows':>4} {'correct':>7}  reasons")
    for category in sorted({r["category"] for r in rows}):
        group = [r for r in rows if r["category"] == category]
        correct = sum(r["decision"] == r["label"] and (r["label"] == "reject" or r["parsed"] == r.get("text"))
                      for r in group)
        reasons = Counter(r["reason"] or "accepted" for r in group)
        lines.append(f"{category:<22} {len(group):>4} {correct:>7}  {dict(reasons)}")
    return "\n".join(lines)


def wrong_rows(rows: list[dict]) -> list[dict]:
    """Rows judged against their label, or accepted with other text than the table must receive."""
    return [r for r in rows if r["decision"] != r["label"] or (r["label"] == "accept" and r["parsed"] != r["text"])]


def main() -> None:
    for name, path in SETS.items():
        rows = judge_fixture(path)
        print(f"== {name}: {path.name} ({len(rows)} replies)")
        print(table(rows))
        for r in wrong_rows(rows):
            print(f"WRONG {r['category']}: {r['raw'][:70]!r} -> {r['decision']} ({r['reason']}) {r['parsed'][:60]!r}")
        print()


if __name__ == "__main__":
    main()
