"""Setup check of evaluation sets: every listed clip must be readable in full, as the manifest lists it.

An evaluation set is never silently changed (no clip replaced, no truncated file read as it now is): the
check runs before the first step and raises one :class:`EvaluationSetError` listing every mismatch.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from lasr.data.audio import LENGTH_TOLERANCE_SECONDS, check_audio
from lasr.data.manifest import ClipRecord
from lasr.errors import DataError
from lasr.utils.progress import progress

CHECK_MODES = ("header", "full")  # header + last-frame read, or a full decode (also finds NaN and silence)
CHECK_WORKERS = 8  # header reads are I/O bound; soundfile releases the GIL
MAX_LISTED = 20  # the error lists this many mismatches, then a count
PROGRESS_FROM = 2000  # smaller sets are checked in about a second: no progress lines


class EvaluationSetError(DataError):
    """Clips of an evaluation set that do not match their manifest; ``problems`` holds all of them."""

    def __init__(self, stage: str, problems: list[str], total: int):
        listed = "\n".join(f"  - {p}" for p in problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        super().__init__(f"{stage} set: {len(problems)} of {total} clip(s) cannot be read as the manifest lists "
                         f"them (evaluation sets are never changed silently; fix or re-prepare them):\n{listed}{more}")
        self.problems = list(problems)


def record_problem(record: ClipRecord, min_seconds: float = 0.0, tolerance_seconds: float = LENGTH_TOLERANCE_SECONDS,
                   mode: str = "header") -> str | None:
    """Why ``record``'s file differs from the manifest (length within ``tolerance_seconds``), else ``None``."""
    frames = record.num_frames if record.num_frames else round(record.duration * record.sample_rate)
    problem = check_audio(record.audio_path, frames, record.sample_rate, round(tolerance_seconds * record.sample_rate),
                          full=mode == "full")
    if problem is None and record.duration < min_seconds:
        problem = f"{record.audio_path}: clip is {record.duration:.3f} s, shorter than the minimum {min_seconds} s"
    return problem


def verify_eval_records(records: Sequence[ClipRecord], stage: str, min_seconds: float = 0.0,
                        tolerance_seconds: float = LENGTH_TOLERANCE_SECONDS, mode: str = "header",
                        workers: int = CHECK_WORKERS) -> None:
    """Raise :class:`EvaluationSetError` listing every clip of ``records`` that does not match its manifest."""
    if mode not in CHECK_MODES:
        raise DataError(f"eval_check must be one of {CHECK_MODES}, got {mode!r}")
    if not records:
        raise DataError(f"{stage} set: the manifests list no clips")
    _check_all(lambda r: record_problem(r, min_seconds, tolerance_seconds, mode), records, stage, workers)


def verify_audio_files(paths: Sequence[str], stage: str, workers: int = CHECK_WORKERS) -> None:
    """Raise :class:`EvaluationSetError` listing every file of ``paths`` (no lengths known) that is unreadable."""
    unique = sorted(set(paths))
    _check_all(lambda path: check_audio(path), unique, stage, workers)


def _check_all(check, items: Sequence, stage: str, workers: int) -> None:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = progress(pool.map(check, items), total=len(items), desc=f"checking {stage} audio", unit="clip",
                         enabled=len(items) >= PROGRESS_FROM)
        problems = [p for p in found if p]
    if problems:
        raise EvaluationSetError(stage, problems, len(items))
