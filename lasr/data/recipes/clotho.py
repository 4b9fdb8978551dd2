"""Clotho v2.1 (Drossos et al., ICASSP 2020; zenodo 4783391): 15-30 s Freesound clips, five captions each.

Official layout under ``root``::

    clotho_captions_{split}.csv      file_name,caption_1,...,caption_5   (extra columns are ignored)
    clotho_metadata_{split}.csv      optional, ISO-8859-1, with a ``license`` column
    clotho_audio_{split}/<file_name> (``{split}/<file_name>`` is accepted too)

Splits: ``development`` (DCASE development-training), ``validation`` and ``evaluation`` (DCASE
development-testing). Writes ``out_dir/clotho_{split}.jsonl.gz``; clip id = file name, dataset ``clotho``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from lasr.data.recipes.common import (
    DEFAULT_MIN_SECONDS,
    DEFAULT_PROBE_WORKERS,
    AudioLocator,
    PendingClip,
    PreparedCorpus,
    ProblemLog,
    audio_folders,
    nonempty_text,
    probe_and_finish,
    read_csv,
)
from lasr.errors import DataError

CLOTHO_SPLITS = ("development", "validation", "evaluation")
OFFICIAL_CLIPS = {"development": 3839, "validation": 1045, "evaluation": 1045}  # Clotho v2.1
CAPTION_COLUMNS = tuple(f"caption_{i}" for i in range(1, 6))
METADATA_ENCODING = "iso-8859-1"  # the official metadata CSVs are Latin-1, the caption CSVs UTF-8
AUDIO_FOLDERS = ("clotho_audio_{split}", "{split}")


def captions_csv(root: Path, split: str) -> Path:
    return root / f"clotho_captions_{split}.csv"


def _resolve_splits(root: Path, splits: Sequence[str] | None) -> list[str]:
    """Requested splits, or every official split whose captions CSV exists; none at all is an error."""
    if splits:
        return list(splits)
    found = [split for split in CLOTHO_SPLITS if captions_csv(root, split).is_file()]
    if not found:
        expected = ", ".join(captions_csv(root, split).name for split in CLOTHO_SPLITS)
        raise DataError(f"no Clotho caption CSV found (expected one of: {expected})", root)
    return found


def _read_metadata(root: Path, split: str, problems: ProblemLog) -> dict[str, dict[str, str]]:
    """file_name -> metadata row from the optional ``clotho_metadata_{split}.csv`` (empty if absent)."""
    path = root / f"clotho_metadata_{split}.csv"
    if not path.is_file():
        return {}
    table = read_csv(path, ["file_name", "license"], problems, METADATA_ENCODING)
    return {} if table is None else {fields["file_name"].strip(): fields for _, fields in table.rows}


def _read_split(
    root: Path, split: str, encoding: str, folders: Sequence[str], dataset: str, problems: ProblemLog
) -> list[PendingClip]:
    path = captions_csv(root, split)
    table = read_csv(path, ["file_name", *CAPTION_COLUMNS], problems, encoding)
    if table is None:
        return []
    metadata = _read_metadata(root, split, problems)
    locator = AudioLocator(audio_folders(root, folders, split=split))
    pending = []
    for row, fields in table.rows:
        name = nonempty_text(fields["file_name"], "file_name", path, row, problems)
        captions = [nonempty_text(fields[column], column, path, row, problems) for column in CAPTION_COLUMNS]
        if name is None:
            continue
        # a clip with a bad caption is still probed so that one run reports all of its problems
        meta = metadata.get(name, {})
        extra = {"sound_id": meta["sound_id"].strip()} if meta.get("sound_id", "").strip() else {}
        record_fields = dict(
            captions=tuple(caption or "" for caption in captions),
            split=split,
            dataset=dataset,
            license=meta.get("license", "").strip(),
            extra=extra,
        )
        audio = locator.find([name]) or locator.expected(name)
        pending.append(PendingClip(name, audio, path, row, record_fields))
    return pending


def prepare_clotho(
    root: str | Path,
    out_dir: str | Path | None = None,
    splits: Sequence[str] | None = None,
    encoding: str = "utf-8",
    audio_dir: str | None = None,
    dataset: str = "clotho",
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
) -> PreparedCorpus:
    """Validate Clotho and write one manifest per split.

    Args:
        root: folder with the official CSVs (and, by default, the audio folders).
        out_dir: where to write ``clotho_{split}.jsonl.gz``; ``None`` validates only.
        splits: splits to prepare; ``None`` means every official split whose captions CSV exists.
        encoding: encoding of the caption CSVs (the official ones are UTF-8).
        audio_dir: audio folder template overriding the defaults; may contain ``{split}``; relative to ``root``.
        min_seconds: clips shorter than this (seconds) are problems.
        skip_missing: skip (and report) clips whose audio file is missing instead of failing.
        workers: threads probing audio headers.

    Returns:
        (records per split, report). Split sizes that differ from the official v2.1 sizes are a note, not an
        error (subsets are fine).

    Raises:
        DataError: listing every problem found (file and row each).
    """
    root = Path(root)
    problems = ProblemLog()
    folders = [audio_dir] if audio_dir else list(AUDIO_FOLDERS)
    pending = {
        split: _read_split(root, split, encoding, folders, dataset, problems) for split in _resolve_splits(root, splits)
    }
    records, report = probe_and_finish(
        dataset, pending, problems, out_dir, lambda split: f"{dataset}_{split}.jsonl.gz",
        min_seconds=min_seconds, skip_missing=skip_missing, workers=workers,
    )
    for split, group in records.items():
        official = OFFICIAL_CLIPS.get(split)
        if official is not None and len(group) != official:
            report.notes.append(f"{split}: {len(group):,} clips, the official v2.1 split has {official:,} (a subset?)")
    return records, report
