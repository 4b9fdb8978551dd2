"""AudioCaps v1 (Kim et al., NAACL 2019): 10 s AudioSet excerpts from YouTube with human captions.

Official layout under ``root``: ``{train,val,test}.csv`` with ``audiocap_id,youtube_id,start_time,caption``,
one row per caption (train has 1 caption per clip, val/test 5). The corpus ships no audio, so the audio
layout is configurable: folders (default ``audio/{split}``, ``audio_32000Hz/{split}``, ``{split}``, ``audio``
under ``root``) and file name patterns (default ``{youtube_id}_{start_time}.{wav,flac,mp3}``, then
``Y{youtube_id}.wav``); the first existing file wins. Placeholders: ``youtube_id``, ``start_time``,
``audiocap_id`` (of the clip's first caption row) and ``split``.

Many clips can no longer be downloaded; missing audio is an error naming the CSV row unless
``skip_missing``, in which case it is skipped and reported. Writes ``out_dir/audiocaps_{split}.jsonl.gz``;
clip id = ``{youtube_id}_{start_time}``, dataset ``audiocaps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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

AUDIOCAPS_SPLITS = ("train", "val", "test")
OFFICIAL_CLIPS = {"train": 49838, "val": 495, "test": 975}  # AudioCaps v1 as published
CAPTIONS_PER_EVAL_CLIP = 5  # val and test clips have five captions each
COLUMNS = ("audiocap_id", "youtube_id", "start_time", "caption")
AUDIO_FOLDERS = ("audio/{split}", "audio_32000Hz/{split}", "{split}", "audio")
AUDIO_PATTERNS = (
    "{youtube_id}_{start_time}.wav",
    "{youtube_id}_{start_time}.flac",
    "{youtube_id}_{start_time}.mp3",
    "Y{youtube_id}.wav",
)
_PLACEHOLDER_EXAMPLE = dict(youtube_id="abc", start_time="30", audiocap_id="1", split="train")


@dataclass
class _Clip:
    """Caption rows of one AudioCaps clip, gathered in CSV order."""

    youtube_id: str
    start_time: str
    first_row: int
    audiocap_ids: list[str] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return f"{self.youtube_id}_{self.start_time}"


def _start_time(value: str) -> str | None:
    """Canonical start time text (``"30"`` for 30 or 30.0), or ``None`` if not a finite number >= 0."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return str(int(seconds)) if seconds.is_integer() else value.strip()


def _check_patterns(patterns: Sequence[str]) -> None:
    for pattern in patterns:
        try:
            pattern.format(**_PLACEHOLDER_EXAMPLE)
        except (KeyError, IndexError, ValueError) as err:
            known = ", ".join(_PLACEHOLDER_EXAMPLE)
            raise DataError(f"bad audio file pattern {pattern!r} ({err!r}); placeholders: {known}") from None


def _group_rows(path: Path, problems: ProblemLog, encoding: str) -> dict[str, _Clip]:
    """Read one split CSV and group its caption rows by clip; logs bad rows and repeated audiocap_ids."""
    table = read_csv(path, COLUMNS, problems, encoding)
    clips: dict[str, _Clip] = {}
    seen_caption_ids: dict[str, int] = {}
    for row, fields in table.rows if table else []:
        caption_id = nonempty_text(fields["audiocap_id"], "audiocap_id", path, row, problems)
        youtube_id = nonempty_text(fields["youtube_id"], "youtube_id", path, row, problems)
        caption = nonempty_text(fields["caption"], "caption", path, row, problems)
        start = _start_time(fields["start_time"])
        if start is None:
            problems.add(f"start_time {fields['start_time']!r} is not a number of seconds >= 0", path, row)
        if caption_id in seen_caption_ids:
            first = seen_caption_ids[caption_id]
            problems.add(f"duplicate audiocap_id {caption_id!r} (first on row {first})", path, row)
            continue
        if youtube_id is None or start is None:
            continue
        if caption_id is not None:
            seen_caption_ids[caption_id] = row
        # a clip with a bad caption row is still probed so that one run reports all of its problems
        clip = clips.setdefault(f"{youtube_id}_{start}", _Clip(youtube_id, start, row))
        clip.audiocap_ids.append(caption_id or "")
        clip.captions.append(caption or "")
    return clips


def _read_split(
    root: Path, split: str, encoding: str, folders: Sequence[str], patterns: Sequence[str], problems: ProblemLog
) -> list[PendingClip]:
    path = root / f"{split}.csv"
    locator = AudioLocator(audio_folders(root, folders, split=split))
    pending = []
    for clip in _group_rows(path, problems, encoding).values():
        slots = dict(youtube_id=clip.youtube_id, start_time=clip.start_time, audiocap_id=clip.audiocap_ids[0])
        names = [pattern.format(split=split, **slots) for pattern in patterns]
        audio = locator.find(names) or locator.expected(names[0])
        fields = dict(
            captions=tuple(clip.captions),
            split=split,
            dataset="audiocaps",
            extra={"youtube_id": clip.youtube_id, "start_time": float(clip.start_time),
                   "audiocap_ids": clip.audiocap_ids},
        )
        pending.append(PendingClip(clip.id, audio, path, clip.first_row, fields))
    return pending


def prepare_audiocaps(
    root: str | Path,
    out_dir: str | Path | None = None,
    splits: Sequence[str] | None = None,
    audio_dirs: Sequence[str] | None = None,
    patterns: Sequence[str] | None = None,
    encoding: str = "utf-8",
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
) -> PreparedCorpus:
    """Validate AudioCaps and write one manifest per split.

    Args:
        root: folder with ``{split}.csv``.
        out_dir: where to write ``audiocaps_{split}.jsonl.gz``; ``None`` validates only.
        splits: splits to prepare; ``None`` means each of train/val/test whose CSV exists.
        audio_dirs: audio folder templates (``{split}`` allowed), relative to ``root``; tried in order.
        patterns: audio file name templates; tried in order, first existing file wins.
        min_seconds: clips shorter than this (seconds) are problems.
        skip_missing: skip and report clips whose audio is missing (it often is: YouTube videos vanish).
        workers: threads probing audio headers.

    Raises:
        DataError: listing every problem found (file and row each).
    """
    root = Path(root)
    patterns = list(patterns or AUDIO_PATTERNS)
    _check_patterns(patterns)
    if not splits:
        splits = [split for split in AUDIOCAPS_SPLITS if (root / f"{split}.csv").is_file()]
        if not splits:
            raise DataError("no AudioCaps CSV found (expected train.csv, val.csv or test.csv)", root)
    problems = ProblemLog()
    folders = list(audio_dirs or AUDIO_FOLDERS)
    pending = {split: _read_split(root, split, encoding, folders, patterns, problems) for split in splits}
    records, report = probe_and_finish(
        "audiocaps", pending, problems, out_dir, lambda split: f"audiocaps_{split}.jsonl.gz",
        min_seconds=min_seconds, skip_missing=skip_missing, workers=workers,
    )
    for split, group in records.items():
        official = OFFICIAL_CLIPS.get(split)
        if official is not None and len(group) != official:
            report.notes.append(f"{split}: {len(group):,} clips, the official split lists {official:,}")
        if split in ("val", "test"):
            odd = sum(len(r.captions) != CAPTIONS_PER_EVAL_CLIP for r in group)
            if odd:
                report.notes.append(f"{split}: {odd} clip(s) without exactly {CAPTIONS_PER_EVAL_CLIP} captions")
    return records, report
