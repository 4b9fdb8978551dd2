"""Export accepted store rows as the caption table the DataModule's :class:`AugmentedCaptionPolicy` reads.

Format: JSONL (``.jsonl`` / ``.jsonl.gz``) or CSV (``.csv``), one row per accepted, de-duplicated output, written
atomically. Columns (JSONL keys):

* ``kind``: paraphrase | rewrite | backtranslate | mix | modifiers | class-prompts | class-description;
* ``clip_key`` (``dataset/id``, as ``ClipRecord.key``) and ``slot`` (caption index) of the source caption
  (empty for class prompts); ``source``: the source caption (or label); ``text``: the LLM output;
* ``custom_id``, ``model``, ``template``, ``sample_index``: provenance;
* ``extra``: kind-specific fields - backtranslate ``language``, ``pivot``; mix ``clip_key_b``, ``slot_b``,
  ``mix`` {``snr_db``, ``offset_fraction``}, ``pair_index``; modifiers ``clips`` [{``clip_key``, ``slot``,
  ``ops`` {``gain_db``, ``pitch_semitones``, ``speed``, ``crop_fraction``}}], ``combine`` (single | concat |
  mix), ``mix`` {``snr_db``}; class prompts ``label``, ``description``. In CSV ``extra`` is a JSON string.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from lasr.augment.filters import normalise
from lasr.augment.store import Row, Store
from lasr.utils.atomic import atomic_open

FINAL_STAGES = {"paraphrase": "paraphrase", "rewrite": "rewrite", "backtranslate": "from_pivot", "mix": "mix",
                "modifiers": "modifiers", "class-prompts": "captions"}
COLUMNS = ["kind", "clip_key", "slot", "source", "text", "custom_id", "model", "template", "sample_index", "extra"]
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


def write_table(rows: list[dict], path: str | Path) -> None:
    """Write ``rows`` atomically as JSONL(.gz) or CSV (chosen by the suffix)."""
    path = Path(path)
    if path.suffix == ".csv":
        with atomic_open(path, newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            writer.writeheader()
            for row in rows:
                writer.writerow({**row, "extra": json.dumps(row["extra"], sort_keys=True)})
        return
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    with atomic_open(path, "wb") as handle:
        handle.write(gzip.compress(data, mtime=0) if path.name.endswith(".gz") else data)


def read_table(path: str | Path) -> list[dict]:
    """Read a caption table written by :func:`write_table`."""
    from lasr.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError("caption table not found (run `lasr augment export`)", path)
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        for n, row in enumerate(rows, 2):
            try:
                row["slot"], row["sample_index"] = int(row["slot"]), int(row["sample_index"])
                row["extra"] = json.loads(row["extra"] or "{}")
            except (ValueError, KeyError) as err:
                raise DataError(f"bad caption table row ({err})", path, n) from err
        return rows
    opener = gzip.open if path.name.endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as err:
                    raise DataError(f"bad caption table line ({err})", path, n) from err
    return rows


def export(store: Store, path: str | Path, kinds: Iterable[str] | None = None, model: str | None = None,
           fidelity: tuple[float, float] | None = None, all_provenances: bool = False) -> Counter:
    """Collect and write the caption table; returns the counts."""
    rows, counts = collect(store, kinds, model, fidelity, all_provenances)
    write_table(rows, path)
    return counts
