"""Precision/recall of the LLM reply filter on labelled replies (tests/augment/fixtures/replies.jsonl).

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

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "augment" / "fixtures" / "replies.jsonl"


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
    lines.append("")
    lines.append(f"{'category':<22} {'rows':>4} {'correct':>7}  reasons")
    for category in sorted({r["category"] for r in rows}):
        group = [r for r in rows if r["category"] == category]
        correct = sum(r["decision"] == r["label"] and (r["label"] == "reject" or r["parsed"] == r.get("text"))
                      for r in group)
        reasons = Counter(r["reason"] or "accepted" for r in group)
        lines.append(f"{category:<22} {len(group):>4} {correct:>7}  {dict(reasons)}")
    return "\n".join(lines)


def main() -> None:
    rows = judge_fixture()
    print(table(rows))
    wrong = [r for r in rows if r["decision"] != r["label"] or (r["label"] == "accept" and r["parsed"] != r["text"])]
    for r in wrong:
        print(f"WRONG {r['category']}: {r['raw'][:70]!r} -> {r['decision']} ({r['reason']}) {r['parsed'][:60]!r}")


if __name__ == "__main__":
    main()
