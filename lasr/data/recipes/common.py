"""Shared machinery of the corpus recipes: problem collection, strict CSV reading, audio probing, reports.

Every recipe follows the same four steps (lhotse style):

1. read the official metadata into :class:`PendingClip` objects, logging every problem into a
   :class:`ProblemLog` instead of stopping at the first one;
2. :func:`find_duplicate_ids` per manifest;
3. :func:`probe_pending` probes all audio headers in a thread pool (soundfile releases the GIL);
4. :func:`finish` raises one :class:`DataProblems` listing everything that is wrong, or writes the manifests
   (atomically) and returns the records plus a :class:`PrepareReport`.

Row numbers in messages are 1-based line numbers of the file as an editor shows them (the CSV header is line 1).
"""

from __future__ import annotations

import csv
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from lasr.data.audio import AudioInfo, probe_audio
from lasr.data.manifest import ClipRecord, write_manifest
from lasr.errors import AudioError, DataError
from lasr.utils.progress import progress

DEFAULT_MIN_SECONDS = 0.1  # shorter clips are rejected: too short for one analysis window of any encoder
DEFAULT_PROBE_WORKERS = 8  # header probes are I/O bound, so more threads than cores pay off
MAX_LISTED_PROBLEMS = 20  # a DataProblems message lists this many, then a count of the rest
MAX_LISTED_MISSING = 5  # a report names this many skipped missing files, then a count

PreparedCorpus = tuple[dict[str, list[ClipRecord]], "PrepareReport"]


# ----------------------------------------------------------------------------------------------- problems
@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located by file and row (or JSON item)."""

    path: str
    row: int | str | None
    message: str

    def __str__(self) -> str:
        where = self.path if self.row is None else f"{self.path}, row {self.row}"
        return f"{where}: {self.message}"


class DataProblems(DataError):
    """All problems a prepare step found, in one error; ``problems`` holds the full list."""

    def __init__(self, title: str, problems: list[Problem]):
        listed = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED_PROBLEMS])
        more = len(problems) - MAX_LISTED_PROBLEMS
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{title}: {len(problems)} problem(s), fix them all and run again:\n{listed}{tail}")
        self.problems = list(problems)


class ProblemLog:
    """Collects problems so that a prepare step can report all of them at once."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, message: str, path: str | Path, row: int | str | None = None) -> None:
        self.items.append(Problem(str(path), row, message))

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self, title: str) -> None:
        if self.items:
            raise DataProblems(title, self.items)


# ----------------------------------------------------------------------------------------------- CSV
@dataclass
class CsvTable:
    """A CSV file read strictly: ``rows`` pairs each record's first line number with its fields."""

    path: Path
    columns: list[str]
    rows: list[tuple[int, dict[str, str]]]


def _undecodable(text: str) -> bool:
    """True if ``text`` holds bytes the codec could not decode (kept as lone surrogates by surrogateescape)."""
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def read_csv(
    path: str | Path,
    required: Iterable[str],
    problems: ProblemLog,
    encoding: str = "utf-8",
) -> CsvTable | None:
    """Read a CSV whose header must contain ``required`` (extra columns are kept and may be ignored).

    Undecodable bytes, short or long rows are logged with their line number and the row is dropped.
    Returns ``None`` (after logging) when the file is missing or its header lacks a required column.
    """
    path = Path(path)
    if not path.is_file():
        problems.add("file not found", path)
        return None
    with open(path, encoding=encoding, errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        try:
            return _parse_csv(path, reader, list(required), problems, encoding)
        except csv.Error as err:  # e.g. a NUL byte or an unterminated quote
            problems.add(f"malformed CSV ({err})", path, reader.line_num)
            return None


def _parse_csv(path: Path, reader, required: list[str], problems: ProblemLog, encoding: str) -> CsvTable | None:
    header = next(reader, None)
    if header is None:
        problems.add("file is empty (no header)", path, 1)
        return None
    header = [name.lstrip("\ufeff").strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        problems.add(f"missing column(s) {missing}; the header has {header}", path, 1)
        return None
    rows: list[tuple[int, dict[str, str]]] = []
    line = reader.line_num + 1
    for values in reader:
        row_line, line = line, reader.line_num + 1
        if not values:  # blank line
            continue
        if len(values) != len(header):
            problems.add(f"row has {len(values)} fields, the header has {len(header)}", path, row_line)
            continue
        record = dict(zip(header, values))
        bad = [name for name, value in record.items() if _undecodable(value)]
        if bad:
            message = f"invalid {encoding} byte sequence in column(s) {bad} (is the file in another encoding?)"
            problems.add(message, path, row_line)
            continue
        rows.append((row_line, record))
    return CsvTable(path, header, rows)


def nonempty_text(value: str | None, column: str, path: Path, row: int | str, problems: ProblemLog) -> str | None:
    """The field verbatim (captions keep their official text, trailing spaces included: official files are
    matched by exact string); log and return ``None`` when it is empty or blank."""
    if not (value or "").strip():
        problems.add(f"empty {column}", path, row)
        return None
    return value


# ----------------------------------------------------------------------------------------------- audio
@dataclass
class PendingClip:
    """A clip listed by the metadata whose audio has not been probed yet.

    ``fields`` holds the remaining :class:`ClipRecord` fields (captions, labels, split, dataset, ...).
    """

    id: str
    audio_path: Path
    source: Path
    row: int | str | None
    fields: dict[str, Any] = field(default_factory=dict)


class AudioLocator:
    """Finds an audio file by trying candidate names in candidate folders; lists each folder only once."""

    def __init__(self, folders: Iterable[Path]):
        self.folders = [Path(f) for f in folders]
        self._listing: dict[Path, set[str]] = {}

    def _names(self, folder: Path) -> set[str]:
        if folder not in self._listing:
            self._listing[folder] = set(os.listdir(folder)) if folder.is_dir() else set()
        return self._listing[folder]

    def find(self, names: Iterable[str]) -> Path | None:
        """First existing ``folder/name`` over folders (outer) and names (inner), or ``None``."""
        names = list(names)
        for folder in self.folders:
            for name in names:
                if "/" in name:  # a relative sub-path: cannot use the flat listing
                    if (folder / name).is_file():
                        return (folder / name).absolute()
                elif name in self._names(folder):
                    return (folder / name).absolute()
        return None

    def expected(self, name: str) -> Path:
        """Where a missing file was expected (the first folder), for messages."""
        return (self.folders[0] / name).absolute() if self.folders else Path(name).absolute()


def audio_folders(root: Path, templates: Iterable[str], **names: str) -> list[Path]:
    """Candidate audio folders: each template (e.g. ``"clotho_audio_{split}"``) filled with ``names``;
    relative templates are taken under ``root``, absolute ones as they are."""
    return [root / template.format(**names) for template in templates]


def find_duplicate_ids(pending: Iterable[PendingClip], problems: ProblemLog) -> list[PendingClip]:
    """Log every repeated id (naming where it first appeared); return the clips with the first occurrences."""
    first: dict[str, PendingClip] = {}
    for clip in pending:
        if clip.id in first:
            seen = first[clip.id]
            problems.add(f"duplicate id {clip.id!r} (first at {seen.source}, row {seen.row})", clip.source, clip.row)
        else:
            first[clip.id] = clip
    return list(first.values())


def _probe(path: Path) -> AudioInfo | AudioError | None:
    """Header facts, the error for an unreadable file, or ``None`` when the file does not exist."""
    if not path.is_file():
        return None
    try:
        return probe_audio(path)
    except AudioError as err:
        return err


def probe_pending(
    pending: list[PendingClip],
    problems: ProblemLog,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
    desc: str = "probing audio",
) -> tuple[list[ClipRecord], list[PendingClip]]:
    """Probe every clip's audio header in a thread pool and build the records.

    Missing files are logged as problems, or returned as skipped when ``skip_missing``; unreadable, empty and
    too-short (< ``min_seconds`` seconds) files are always problems.

    Returns:
        (records in input order, skipped clips whose audio is missing).
    """
    records: list[ClipRecord] = []
    missing: list[PendingClip] = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        infos = pool.map(_probe, [clip.audio_path for clip in pending])
        bar = progress(infos, total=len(pending), desc=desc, unit="file")
        for clip, info in zip(pending, bar):
            if info is None:
                missing.append(clip)
                if not skip_missing:
                    problems.add(f"audio file not found: {clip.audio_path}", clip.source, clip.row)
            elif isinstance(info, AudioError):
                problems.add(str(info), clip.source, clip.row)
            elif info.duration < min_seconds:
                message = f"{clip.audio_path}: clip is {info.duration:.3f} s, shorter than the minimum {min_seconds} s"
                problems.add(message, clip.source, clip.row)
            else:
                records.append(_record(clip, info))
    return records, missing


def _record(clip: PendingClip, info: AudioInfo) -> ClipRecord:
    return ClipRecord(
        id=clip.id,
        audio_path=str(clip.audio_path.absolute()),
        duration=info.duration,
        sample_rate=info.sample_rate,
        num_frames=info.num_frames,
        channels=info.channels,
        **clip.fields,
    )


# ----------------------------------------------------------------------------------------------- report
@dataclass
class SplitSummary:
    """What one manifest holds; ``missing`` lists skipped clips whose audio was not found."""

    clips: int
    captions: int
    hours: float
    manifest: Path | None = None
    missing: list[str] = field(default_factory=list)


@dataclass
class PrepareReport:
    """Outcome of a prepare step: one summary per manifest, notes (e.g. subset sizes), exclusion counts."""

    corpus: str
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    excluded: int = 0

    def lines(self) -> list[str]:
        """Human-readable summary, one line per manifest plus notes."""
        out = []
        for name, s in self.splits.items():
            where = f" -> {s.manifest}" if s.manifest else ""
            label = self.corpus if name == self.corpus else f"{self.corpus} {name}"
            out.append(f"{label}: {s.clips} clips, {s.captions} captions, {s.hours:.2f} h{where}")
            if s.missing:
                shown = ", ".join(s.missing[:MAX_LISTED_MISSING])
                more = f" and {len(s.missing) - MAX_LISTED_MISSING} more" if len(s.missing) > MAX_LISTED_MISSING else ""
                out.append(f"  skipped {len(s.missing)} clip(s) with missing audio: {shown}{more}")
        if self.excluded:
            out.append(f"{self.corpus}: excluded {self.excluded} clip(s) listed in the exclusion list")
        out += [f"note: {note}" for note in self.notes]
        return out


def finish(
    corpus: str,
    records: dict[str, list[ClipRecord]],
    missing: dict[str, list[PendingClip]],
    problems: ProblemLog,
    out_dir: str | Path | None,
    manifest_name: Callable[[str], str],
    notes: list[str] | None = None,
    excluded: int = 0,
) -> PreparedCorpus:
    """Raise all problems at once, else write one manifest per group (``out_dir/manifest_name(group)``).

    A group left without clips (e.g. every audio file missing under ``skip_missing``) is a problem: an empty
    manifest would only fail later, at training setup."""
    empty = [name for name, group in records.items() if not group]
    for name in empty if not problems else []:  # with other problems, emptiness is their consequence
        gone = len(missing.get(name, []))
        why = f": all {gone} listed audio file(s) are missing" if gone else ""
        problems.add(f"no clips left for {name!r}{why}", Path(out_dir or ".") / manifest_name(name))
    problems.raise_if_any(f"cannot prepare {corpus}")
    report = PrepareReport(corpus, notes=list(notes or []), excluded=excluded)
    for name, group in records.items():
        target = None
        if out_dir is not None:
            target = Path(out_dir) / manifest_name(name)
            write_manifest(group, target)
        report.splits[name] = SplitSummary(
            clips=len(group),
            captions=sum(len(r.captions) for r in group),
            hours=sum(r.duration for r in group) / 3600.0,
            manifest=target,
            missing=[str(clip.audio_path) for clip in missing.get(name, [])],
        )
    return records, report


def probe_and_finish(
    corpus: str,
    pending: dict[str, list[PendingClip]],
    problems: ProblemLog,
    out_dir: str | Path | None,
    manifest_name: Callable[[str], str],
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
    notes: list[str] | None = None,
    excluded: int = 0,
) -> PreparedCorpus:
    """Steps 2-4 for clips grouped by manifest: drop duplicate ids, probe audio, then :func:`finish`."""
    records: dict[str, list[ClipRecord]] = {}
    missing: dict[str, list[PendingClip]] = {}
    for group, clips in pending.items():
        unique = find_duplicate_ids(clips, problems)
        desc = f"probing {corpus} {group}"
        records[group], missing[group] = probe_pending(unique, problems, min_seconds, skip_missing, workers, desc)
    return finish(corpus, records, missing, problems, out_dir, manifest_name, notes, excluded)


def prepare_captioned_csv(
    csv_path: str | Path,
    out_dir: str | Path | None = None,
    dataset: str = "sources",
    split: str = "",
    encoding: str = "utf-8",
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
) -> PreparedCorpus:
    """Generic recipe for a flat folder with one CSV ``file_name,label,caption`` (e.g. the demo's sources).

    Audio is looked up next to the CSV and in its ``audio/`` sub-folder. Each clip gets
    ``captions=(caption,)`` and ``labels=(label,)``; writes ``out_dir/<dataset>.jsonl.gz``.
    """
    csv_path = Path(csv_path)
    problems = ProblemLog()
    table = read_csv(csv_path, ["file_name", "label", "caption"], problems, encoding)
    locator = AudioLocator([csv_path.parent / "audio", csv_path.parent])
    pending = []
    for row, fields in table.rows if table else []:
        name = nonempty_text(fields["file_name"], "file_name", csv_path, row, problems)
        caption = nonempty_text(fields["caption"], "caption", csv_path, row, problems)
        label = nonempty_text(fields["label"], "label", csv_path, row, problems)
        if name is None:
            continue
        audio = locator.find([name]) or locator.expected(name)
        meta = dict(captions=(caption or "",), labels=(label or "",), split=split, dataset=dataset)
        pending.append(PendingClip(name, audio, csv_path, row, meta))
    return probe_and_finish(
        dataset, {dataset: pending}, problems, out_dir, lambda name: f"{name}.jsonl.gz",
        min_seconds=min_seconds, skip_missing=skip_missing, workers=workers,
    )
