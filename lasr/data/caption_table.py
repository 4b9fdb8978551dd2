"""The caption table: LLM variants of captions that :class:`lasr.data.captions.AugmentedCaptionPolicy` serves
(written by ``lasr augment export``).

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
from pathlib import Path

from lasr.data.text import caption_identity_key
from lasr.errors import DataError
from lasr.utils.atomic import atomic_open

COLUMNS = ["kind", "clip_key", "slot", "source", "text", "custom_id", "model", "template", "sample_index", "extra"]


normalise = caption_identity_key  # identity and duplicate checks: one rule for lasr (lasr.data.text)


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
