"""Export accepted store rows as the caption table the DataModule's :class:`AugmentedCaptionPolicy` reads.

The table's format (columns, JSONL/CSV) and its reader/writer live with the data: :mod:`lasr.data.caption_table`.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from lasr.augment.store import Row, Store
from lasr.data.caption_table import normalise, write_table

FINAL_STAGES = {"paraphrase": "paraphrase", "rewrite": "rewrite", "backtranslate": "from_pivot", "mix": "mix",
                "modifiers": "modifiers", "class-prompts": "captions"}
_CORE_META = {"clip_key", "slot", "original"}


def table_row(row: Row, kind: str) -> dict[str, Any]:
    source = row.meta.get("original", row.source)
    return {"kind": kind, "clip_key": row.meta.get("clip_key", ""), "slot": row.meta.get("slot", -1),
            "source": source, "text": row.text, "custom_id": row.custom_id, "model": row.model,
            "template": row.template, "sample_index": row.sample_index,
            "extra": {k: v for k, v in row.meta.items() if k not in _CORE_META}}


def apply_fidelity(rows: list[dict], band: tuple[float, float], counts: Counter) -> list[dict]:
    """Keep paraphrase/rewrite/backtranslate rows whose MiniLM cosine to the source lies in ``band``
    (inclusive); others pass. Counts ``fidelity_low`` / ``fidelity_high``; stores the score in ``extra``."""
    from lasr.augment.filters import FIDELITY_KINDS, fidelity_scores

    checked = [i for i, row in enumerate(rows) if row["kind"] in FIDELITY_KINDS]
    scores = fidelity_scores([rows[i]["source"] for i in checked], [rows[i]["text"] for i in checked])
    drop = set()
    for i, score in zip(checked, scores):
        rows[i]["extra"]["fidelity"] = round(float(score), 4)
        if score < band[0] or score > band[1]:
            drop.add(i)
            counts["fidelity_low" if score < band[0] else "fidelity_high"] += 1
            counts[rows[i]["kind"]] -= 1
    return [row for i, row in enumerate(rows) if i not in drop]


def current_rows(rows: list[Row], model: str | None = None) -> tuple[list[Row], int]:
    """The rows of one provenance (model, template id@version, sampling): those of ``model`` if given, and
    among them the provenance of the most recently written row (the current setting). Returns
    ``(rows, left_out)`` with the number of rows of other provenances left out."""
    pool = [row for row in rows if model is None or row.model == model]
    if not pool:
        return [], len(rows)
    current = max(pool, key=lambda row: row.updated).provenance
    kept = [row for row in pool if row.provenance == current]
    return kept, len(rows) - len(kept)


def stable_order(row: Row) -> tuple:
    """Sort key of table rows independent of the order answers arrived in."""
    meta = row.meta
    return (str(meta.get("clip_key", "")), int(meta.get("slot", -1)), str(meta.get("label", "")),
            int(meta.get("pair_index", -1)), int(meta.get("example_index", -1)), str(meta.get("language", "")),
            row.sample_index, row.custom_id)


def collect(store: Store, kinds: Iterable[str] | None = None, model: str | None = None,
            fidelity: tuple[float, float] | None = None,
            all_provenances: bool = False) -> tuple[list[dict], Counter]:
    """Table rows of the final stage of each kind (plus class descriptions), of one provenance per kind and
    stage (see :func:`current_rows`; ``all_provenances`` keeps every row of ``model``), in a stable order,
    exact duplicates (normalised text, per kind and source) removed, optionally filtered by
    :func:`apply_fidelity`. Returns ``(rows, counts)`` with per-kind counts and ``duplicate`` / ``fidelity_*``
    / ``older_provenance`` drops."""
    rows, seen, counts = [], set(), Counter()
    wanted = list(kinds or FINAL_STAGES)
    for kind in wanted:
        stages = [(FINAL_STAGES[kind], kind)]
        if kind == "class-prompts":
            stages.append(("descriptions", "class-description"))
        for stage, out_kind in stages:
            found = list(store.rows(kind, stage))
            if all_provenances:
                selected = [row for row in found if model is None or row.model == model]
            else:
                selected, left_out = current_rows(found, model)
                if left_out:
                    counts["older_provenance"] += left_out
            for row in sorted(selected, key=stable_order):
                item = table_row(row, out_kind)
                key = (out_kind, item["clip_key"], item["slot"], item["extra"].get("label"),
                       item["extra"].get("pair_index"), item["extra"].get("example_index"), normalise(row.text))
                if key in seen:
                    counts["duplicate"] += 1
                    continue
                seen.add(key)
                rows.append(item)
                counts[out_kind] += 1
    if fidelity is not None:
        rows = apply_fidelity(rows, fidelity, counts)
    return rows, counts


def export(store: Store, path: str | Path, kinds: Iterable[str] | None = None, model: str | None = None,
           fidelity: tuple[float, float] | None = None, all_provenances: bool = False) -> Counter:
    """Collect and write the caption table; returns the counts."""
    rows, counts = collect(store, kinds, model, fidelity, all_provenances)
    write_table(rows, path)
    return counts
