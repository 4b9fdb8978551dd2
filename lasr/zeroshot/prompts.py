"""Class prompts for zero-shot classification: the ReCLAP template, or N prompts per class from a prompt table.

Prompt table file (what the LLM ``class-prompts`` step exports), one prompt per row, any number per label:

* JSON lines (``.jsonl``, ``.jsonl.gz``): ``{"label": "dog_bark", "prompt": "A dog barks sharply ..."}``
  (other keys are ignored);
* CSV (``.csv``) with a header containing ``label,prompt`` (other columns are ignored);
* the caption table of ``lasr augment export`` (JSONL or CSV with a ``kind`` column): rows of kind
  ``class-prompts`` are used (label = ``extra.label``, prompt = ``text``), all other kinds are skipped.

Labels are matched case-insensitively with ``_`` and ``-`` read as spaces, so ``Dog_bark`` in the table
matches ``dog-bark`` in the data. Duplicate prompts of a label count once.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lasr.errors import DataError, LasrError

DEFAULT_TEMPLATE = "This is a sound of {label}."  # ReCLAP / LAION-CLAP zero-shot template
TEMPLATE_MODE = "template"
PROMPT_COLUMNS = ("label", "prompt")


def label_text(label: str) -> str:
    """How a label is written inside the template: ``_`` becomes a space (ReCLAP protocol)."""
    return label.replace("_", " ")


def label_key(label: str) -> str:
    """Matching key between data labels and prompt-table labels."""
    return re.sub(r"\s+", " ", re.sub(r"[_-]", " ", label)).strip().lower()


EXPORT_KIND = "class-prompts"  # rows of this kind in a `lasr augment export` table are class prompts


def _label_and_prompt(fields: object) -> tuple[object, object] | None:
    """(label, prompt) of a row, or ``None`` for an augment-export row of another kind."""
    if not isinstance(fields, dict):
        return None, None
    if "kind" not in fields:
        return fields.get("label"), fields.get("prompt")
    if fields["kind"] != EXPORT_KIND:
        return None
    extra = fields.get("extra") or {}
    if isinstance(extra, str):  # CSV export stores it as JSON text
        try:
            extra = json.loads(extra)
        except json.JSONDecodeError:
            extra = {}
    return (extra.get("label") if isinstance(extra, dict) else None) or fields.get("source"), fields.get("text")


def _rows(path: Path) -> list[tuple[int, dict]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    if path.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text, newline=""))
        missing = [c for c in PROMPT_COLUMNS if c not in (reader.fieldnames or [])]
        if missing and "kind" not in (reader.fieldnames or []):
            raise DataError(f"prompt CSV needs the columns {list(PROMPT_COLUMNS)}; missing {missing}", path, 1)
        return [(row, fields) for row, fields in enumerate(reader, start=2)]
    rows = []
    for row, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append((row, json.loads(line)))
            except json.JSONDecodeError as err:
                raise DataError(f"invalid JSON ({err})", path, row) from None
    return rows


def read_prompt_table(path: str | Path) -> dict[str, list[str]]:
    """``label_key -> prompts`` (file order, duplicates removed) from a ``.jsonl[.gz]`` or ``.csv`` table."""
    path = Path(path)
    if not path.is_file():
        raise DataError("prompt file not found", path)
    table: dict[str, list[str]] = {}
    for row, fields in _rows(path):
        pair = _label_and_prompt(fields)
        if pair is None:
            continue
        label, prompt = pair
        if not isinstance(label, str) or not isinstance(prompt, str) or not label.strip() or not prompt.strip():
            raise DataError('each row needs a non-empty "label" and "prompt" (or kind/text/extra.label of an '
                            'augment export)', path, row)
        prompts = table.setdefault(label_key(label), [])
        if prompt.strip() not in prompts:
            prompts.append(prompt.strip())
    if not table:
        raise DataError("prompt file has no class prompts", path)
    return table


@dataclass(frozen=True)
class ClassPrompts:
    """Prompts of every class, flattened: ``texts[i]`` belongs to class ``owner[i]`` (index into ``labels``)."""

    labels: tuple[str, ...]
    texts: tuple[str, ...]
    owner: tuple[int, ...]
    fallback: tuple[str, ...] = ()  # labels missing from the table that used the template instead

    def of(self, label: str) -> list[str]:
        index = self.labels.index(label)
        return [t for t, o in zip(self.texts, self.owner) if o == index]


def template_prompts(labels: Sequence[str], template: str = DEFAULT_TEMPLATE) -> ClassPrompts:
    """One prompt per class: ``template`` filled with :func:`label_text`."""
    return ClassPrompts(tuple(labels), tuple(template.format(label=label_text(x)) for x in labels),
                        tuple(range(len(labels))))


def _label_rng(seed: int, label: str) -> np.random.Generator:
    # per-label stream: a class's sample does not depend on which other classes are evaluated
    digest = hashlib.blake2b(label_key(label).encode(), digest_size=8).digest()
    return np.random.default_rng([seed, int.from_bytes(digest, "little")])


def sample_prompts(table: dict[str, list[str]], labels: Sequence[str], n_prompts: int, seed: int = 0,
                   template: str = DEFAULT_TEMPLATE) -> ClassPrompts:
    """``n_prompts`` prompts per class drawn without replacement from ``table`` (all when fewer, or when
    ``n_prompts == 0``), reproducibly for ``seed`` and independent of the table's row order. Labels missing
    from the table get the template and are listed in ``fallback``."""
    if n_prompts < 0:
        raise LasrError(f"n_prompts must be 0 (all) or more, got {n_prompts}")
    texts, owner, fallback = [], [], []
    for index, label in enumerate(labels):
        pool = sorted(table.get(label_key(label), []))
        if not pool:
            fallback.append(label)
            chosen = [template.format(label=label_text(label))]
        elif 0 < n_prompts < len(pool):
            chosen = [pool[i] for i in sorted(_label_rng(seed, label).choice(len(pool), n_prompts, replace=False))]
        else:
            chosen = pool
        texts += chosen
        owner += [index] * len(chosen)
    return ClassPrompts(tuple(labels), tuple(texts), tuple(owner), tuple(fallback))
