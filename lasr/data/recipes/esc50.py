"""ESC-50 (Piczak, ACM MM 2015) and Kitchen20 (Moreaux et al., CBMI 2019): 5 s labelled clips in folds.

ESC-50 layout under ``root``: ``audio/{fold}-{src}-{take}-{target}.wav`` and ``meta/esc50.csv`` with
``filename,fold,target,category,esc10,src_file,take``; the file name prefix equals the fold (1-5).

Kitchen20 layout (as published, and as in ``shared/data/kitchen20_subset``): ``kitchen20.csv`` with
``,Unnamed: 0,category,fold,orig_idx,path,take,target,usr_id`` where ``path`` is relative to ``root``
(``audio/{fold-1}-{freesound id}-{take}-{target}.wav``): the file prefix is 0-based, the CSV fold 1-based.

The metadata CSV is taken from ``meta`` or found among :data:`META_CANDIDATES`; its header tells the format.
An optional subset list (``subset.csv`` with a ``file_name`` column, or ``subset``) restricts the rows to the
clips it lists; otherwise every listed file must exist unless ``skip_missing``.
Records: id = file name, labels = (category,), fold = the CSV fold (1-based), no split.
Writes ``out_dir/<dataset>.jsonl.gz`` (dataset ``esc50``, or ``kitchen20`` when that format is detected).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lasr.data.recipes.common import (
    DEFAULT_MIN_SECONDS,
    DEFAULT_PROBE_WORKERS,
    AudioLocator,
    CsvTable,
    PendingClip,
    PreparedCorpus,
    ProblemLog,
    nonempty_text,
    probe_and_finish,
    read_csv,
)
from lasr.errors import DataError

META_CANDIDATES = ("meta/esc50.csv", "esc50.csv", "meta/kitchen20.csv", "kitchen20.csv")
SUBSET_LIST = "subset.csv"
SUBSET_COLUMNS = ("file_name", "filename")
# {fold prefix}-{source id}-{take}-{target}.{ext}
FILE_NAME = re.compile(r"^(?P<prefix>\d+)-[^-]+-[^-]+-(?P<target>\d+)\.\w+$")


@dataclass(frozen=True)
class MetaFormat:
    """How one ESC-50-style metadata CSV names its files and numbers its folds."""

    dataset: str
    file_column: str
    columns: tuple[str, ...]
    fold_offset: int  # fold column = file name prefix + fold_offset
    extra_columns: dict[str, str]  # CSV column -> extra key


ESC50 = MetaFormat("esc50", "filename", ("filename", "fold", "target", "category"), 0,
                   {"take": "take", "src_file": "src_file", "esc10": "esc10"})
KITCHEN20 = MetaFormat("kitchen20", "path", ("path", "fold", "target", "category"), 1,
                       {"take": "take", "usr_id": "freesound_id"})


def find_metadata(root: Path, meta: str | Path | None = None) -> Path:
    """The metadata CSV: ``meta`` if given, else the first of :data:`META_CANDIDATES` under ``root``."""
    if meta is not None:
        return Path(meta)
    for candidate in META_CANDIDATES:
        if (root / candidate).is_file():
            return root / candidate
    raise DataError(f"no metadata CSV found (looked for {', '.join(META_CANDIDATES)}); pass --meta FILE", root)


def _detect_format(table: CsvTable, problems: ProblemLog) -> MetaFormat | None:
    for fmt in (ESC50, KITCHEN20):
        if fmt.file_column in table.columns:
            missing = [c for c in fmt.columns if c not in table.columns]
            if missing:
                problems.add(f"missing column(s) {missing} for the {fmt.dataset} format", table.path, 1)
                return None
            return fmt
    problems.add(f"unknown format: needs columns {list(ESC50.columns)} (ESC-50) or {list(KITCHEN20.columns)} "
                 f"(Kitchen20); the header has {table.columns}", table.path, 1)
    return None


def _read_subset(path: Path, problems: ProblemLog) -> set[str] | None:
    table = read_csv(path, [], problems)
    if table is None:
        return None
    column = next((c for c in SUBSET_COLUMNS if c in table.columns), None)
    if column is None:
        problems.add(f"subset list needs a column {' or '.join(SUBSET_COLUMNS)}", path, 1)
        return None
    return {PurePosixPath(fields[column].strip()).name for _, fields in table.rows}


def _parse_int(value: str, column: str, path: Path, row: int, problems: ProblemLog, minimum: int) -> int | None:
    try:
        number = int(value.strip())
    except ValueError:
        number = None
    if number is None or number < minimum:
        problems.add(f"{column} {value!r} is not an integer >= {minimum}", path, row)
        return None
    return number


def _check_file_name(name: str, fold: int, target: int, fmt: MetaFormat, path: Path, row: int, problems: ProblemLog):
    """Fold and target encoded in an ESC-50-style file name must agree with the CSV columns."""
    match = FILE_NAME.match(name)
    if match is None:
        return
    if int(match["prefix"]) + fmt.fold_offset != fold:
        problems.add(f"file {name} has fold prefix {match['prefix']} but the fold column says {fold} "
                     f"(expected prefix {fold - fmt.fold_offset})", path, row)
    if int(match["target"]) != target:
        problems.add(f"file {name} has target {match['target']} but the target column says {target}", path, row)


def _read_rows(
    root: Path, table: CsvTable, fmt: MetaFormat, dataset: str, audio_dir: Path | None,
    subset: set[str] | None, problems: ProblemLog,
) -> list[PendingClip]:
    # Kitchen20 paths are relative to root; ESC-50 file names live in audio/; an explicit folder overrides both.
    if audio_dir is not None:
        locator = AudioLocator([audio_dir])
    else:
        locator = AudioLocator([root] if fmt is KITCHEN20 else [root / "audio"])
    pending = []
    for row, fields in table.rows:
        listed = nonempty_text(fields[fmt.file_column], fmt.file_column, table.path, row, problems)
        name = None if listed is None else PurePosixPath(listed).name
        if name is None or (subset is not None and name not in subset):
            continue
        category = nonempty_text(fields["category"], "category", table.path, row, problems)
        fold = _parse_int(fields["fold"], "fold", table.path, row, problems, minimum=1)
        target = _parse_int(fields["target"], "target", table.path, row, problems, minimum=0)
        if fold is not None and target is not None:
            _check_file_name(name, fold, target, fmt, table.path, row, problems)
        lookup = name if audio_dir is not None else listed
        extra = {"target": target}
        extra.update({key: fields[col].strip() for col, key in fmt.extra_columns.items() if col in fields})
        record_fields = dict(labels=(category or "",), dataset=dataset, fold=fold, extra=extra)
        audio = locator.find([lookup]) or locator.expected(lookup)
        pending.append(PendingClip(name, audio, table.path, row, record_fields))
    return pending


def prepare_esc50(
    root: str | Path,
    out_dir: str | Path | None = None,
    meta: str | Path | None = None,
    subset: str | Path | None = None,
    dataset: str | None = None,
    audio_dir: str | Path | None = None,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
) -> PreparedCorpus:
    """Validate an ESC-50-style corpus (ESC-50 or Kitchen20) and write one manifest.

    Args:
        root: corpus folder.
        out_dir: where to write ``<dataset>.jsonl.gz``; ``None`` validates only.
        meta: metadata CSV; found automatically when ``None``.
        subset: list of the clips present (``file_name`` column); ``root/subset.csv`` is used when it exists.
        dataset: dataset name; ``None`` means ``esc50`` or ``kitchen20`` from the detected format.
        audio_dir: folder holding the audio files (by base name), overriding the format's default.
        min_seconds: clips shorter than this (seconds) are problems.
        skip_missing: skip and report clips whose audio is missing instead of failing.
        workers: threads probing audio headers.

    Raises:
        DataError: listing every problem found (file and row each).
    """
    root = Path(root)
    problems = ProblemLog()
    table = read_csv(find_metadata(root, meta), [], problems)
    fmt = _detect_format(table, problems) if table is not None else None
    subset_path = Path(subset) if subset is not None else root / SUBSET_LIST
    listed = _read_subset(subset_path, problems) if subset is not None or subset_path.is_file() else None
    name = dataset or (fmt.dataset if fmt else "esc50")
    pending = []
    if fmt is not None:
        pending = _read_rows(root, table, fmt, name, None if audio_dir is None else Path(audio_dir), listed, problems)
        if listed is not None:
            in_table = {PurePosixPath(fields[fmt.file_column].strip()).name for _, fields in table.rows}
            unknown = sorted(listed - in_table)
            if unknown:
                problems.add(f"{len(unknown)} listed clip(s) not in {table.path}: {unknown[:5]}", subset_path)
    records, report = probe_and_finish(
        name, {name: pending}, problems, out_dir, lambda group: f"{group}.jsonl.gz",
        min_seconds=min_seconds, skip_missing=skip_missing, workers=workers,
    )
    group = records[name]
    folds = sorted({r.fold for r in group})
    report.notes.append(f"{name}: {len({r.labels for r in group})} classes, folds {folds}")
    return records, report
