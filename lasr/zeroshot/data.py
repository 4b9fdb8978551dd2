"""Labelled evaluation sets for zero-shot classification: a manifest, or a corpus folder in a known layout."""

from __future__ import annotations

from pathlib import Path

from lasr.data.manifest import ClipRecord, read_manifest
from lasr.data.recipes.esc50 import META_CANDIDATES, prepare_esc50
from lasr.data.recipes.fsd50k import GROUND_TRUTH, prepare_fsd50k
from lasr.data.recipes.urbansound8k import META as US8K_META
from lasr.data.recipes.urbansound8k import prepare_urbansound8k
from lasr.errors import DataError
from lasr.search.clips import is_manifest

FSD50K_EVAL_SPLIT = "eval"  # zero-shot FSD50K numbers are reported on the evaluation set


def load_labelled(source: str | Path, skip_missing: bool = False) -> list[ClipRecord]:
    """Records of a manifest (``.jsonl[.gz]``) or of a folder in ESC-50 / Kitchen20, UrbanSound8K or FSD50K
    layout (detected from its metadata files; FSD50K gives its ``eval`` split). Every record needs a label."""
    source = Path(source)
    if source.is_file() and is_manifest(source):
        records = read_manifest(source)
    elif source.is_dir():
        if (source / US8K_META).is_file():
            groups, _ = prepare_urbansound8k(source, skip_missing=skip_missing)
        elif (source / GROUND_TRUTH["eval"]).is_file():
            groups, _ = prepare_fsd50k(source, splits=[FSD50K_EVAL_SPLIT], skip_missing=skip_missing)
        elif any((source / name).is_file() for name in META_CANDIDATES):
            groups, _ = prepare_esc50(source, skip_missing=skip_missing)
        else:
            raise DataError(f"unknown layout: expected {US8K_META}, {GROUND_TRUTH['eval']} or one of "
                            f"{', '.join(META_CANDIDATES)} (or pass a manifest)", source)
        records = [r for group in groups.values() for r in group]
    else:
        raise DataError("not a corpus folder nor a manifest (.jsonl/.jsonl.gz)", source)
    unlabelled = [r.id for r in records if not r.labels]
    if unlabelled:
        raise DataError(f"{len(unlabelled)} clip(s) without labels, e.g. {unlabelled[:3]}", source)
    if not records:
        raise DataError("no clips", source)
    return records
