"""WavCaps (Mei et al., 2023; HF ``cvssp/WavCaps``): ~400 k clips with one ChatGPT-written caption each.

Layout under ``root``::

    json_files/<source>/*.json   {"data": [{"id", "caption", "duration", ...}, ...]}
    audio/<source>/<id>.flac     (folder template and extension are configurable; ``Audio/<source>`` is tried too)

Sources: ``FreeSound`` (items also carry file_name, href, tags, author, description, download_link),
``BBC_Sound_Effects``, ``SoundBible`` and ``AudioSet_SL`` (whose ids end in ``.wav``; the audio is
``<id without .wav>.flac``). The DCASE 2025 Task 6 exclusion list removes FreeSound clips that overlap Clotho's
evaluation data; its ``sound_id`` column holds numbers and one ``Not found`` row, so ids are compared AS STRINGS.
Writes ``out_dir/wavcaps_<source lower-case>.jsonl.gz`` (split ``train``, dataset ``wavcaps/<source lower-case>``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

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

WAVCAPS_SOURCES = ("FreeSound", "BBC_Sound_Effects", "SoundBible", "AudioSet_SL")
OFFICIAL_CLIPS = {"FreeSound": 262300, "BBC_Sound_Effects": 31201, "SoundBible": 1232, "AudioSet_SL": 108317}
AUDIO_FOLDERS = ("audio/{source}", "Audio/{source}")
AUDIO_EXTENSION = "flac"
EXCLUDED_SOURCE = "FreeSound"  # the DCASE list holds Freesound sound ids
EXCLUSION_COLUMN = "sound_id"
SPLIT = "train"


def read_exclusion_list(path: str | Path, problems: ProblemLog | None = None) -> set[str]:
    """Ids in the ``sound_id`` column of the DCASE exclusion CSV, kept as strings (``"Not found"`` included)."""
    log = problems if problems is not None else ProblemLog()
    table = read_csv(path, [EXCLUSION_COLUMN], log)
    if problems is None:
        log.raise_if_any("cannot read the exclusion list")
    if table is None:
        return set()
    return {fields[EXCLUSION_COLUMN].strip() for _, fields in table.rows if fields[EXCLUSION_COLUMN].strip()}


def _load_items(path: Path, problems: ProblemLog) -> list[Any]:
    """The ``data`` list of one WavCaps JSON file; bad UTF-8 or JSON is logged with its line number."""
    raw = path.read_bytes()
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        problems.add(f"invalid utf-8 byte sequence ({err.reason})", path, raw[: err.start].count(b"\n") + 1)
        return []
    except json.JSONDecodeError as err:
        problems.add(f"invalid JSON ({err.msg})", path, err.lineno)
        return []
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        problems.add('expected an object {"data": [...]}', path)
        return []
    return document["data"]


def _clip_id(raw_id: Any) -> str:
    """WavCaps id as text; AudioSet_SL ids carry a ``.wav`` suffix that the audio file name does not."""
    text = str(raw_id).strip()
    return text[: -len(".wav")] if text.endswith(".wav") else text


def _read_source(
    root: Path, source: str, folders: Sequence[str], extension: str, excluded_ids: set[str], problems: ProblemLog
) -> tuple[list[PendingClip], int]:
    """Pending clips of one source and how many the exclusion list removed."""
    json_dir = root / "json_files" / source
    paths = sorted(json_dir.glob("*.json"))
    if not paths:
        problems.add(f"no JSON file for source {source!r}", json_dir)
    locator = AudioLocator(audio_folders(root, folders, source=source))
    pending, excluded = [], 0
    for path in paths:
        for index, item in enumerate(_load_items(path, problems)):
            row = f"data[{index}]"
            if not isinstance(item, dict) or "id" not in item or "caption" not in item:
                problems.add('item lacks "id" or "caption"', path, row)
                continue
            clip_id = nonempty_text(_clip_id(item["id"]), "id", path, row, problems)
            text = item["caption"] if isinstance(item["caption"], str) else ""
            caption = nonempty_text(text, "caption", path, row, problems)
            if clip_id is None:
                continue
            if source == EXCLUDED_SOURCE and clip_id in excluded_ids:
                excluded += 1
                continue
            name = f"{clip_id}.{extension}"
            fields = dict(captions=(caption or "",), split=SPLIT, dataset=f"wavcaps/{source.lower()}",
                          extra={"source": source})
            pending.append(PendingClip(clip_id, locator.find([name]) or locator.expected(name), path, row, fields))
    return pending, excluded


def prepare_wavcaps(
    root: str | Path,
    out_dir: str | Path | None = None,
    sources: Sequence[str] = WAVCAPS_SOURCES,
    exclude_csv: str | Path | None = None,
    audio_dir: str | None = None,
    audio_extension: str = AUDIO_EXTENSION,
    min_seconds: float = DEFAULT_MIN_SECONDS,
    skip_missing: bool = False,
    workers: int = DEFAULT_PROBE_WORKERS,
) -> PreparedCorpus:
    """Validate WavCaps and write one manifest per source.

    Args:
        root: WavCaps folder holding ``json_files/``.
        out_dir: where to write ``wavcaps_<source>.jsonl.gz``; ``None`` validates only.
        sources: WavCaps sources to prepare.
        exclude_csv: DCASE exclusion list (``sound_id`` column); matching FreeSound ids are dropped.
        audio_dir: audio folder template (``{source}`` allowed) relative to ``root``, replacing the defaults.
        audio_extension: audio file extension without the dot.
        min_seconds: clips shorter than this (seconds) are problems.
        skip_missing: skip and report clips whose audio is missing instead of failing.
        workers: threads probing audio headers.

    Raises:
        DataError: listing every problem found (file and JSON item each).
    """
    root = Path(root)
    problems = ProblemLog()
    excluded_ids = read_exclusion_list(exclude_csv, problems) if exclude_csv else set()
    folders = [audio_dir] if audio_dir else list(AUDIO_FOLDERS)
    pending, excluded = {}, 0
    for source in sources:
        pending[source], removed = _read_source(root, source, folders, audio_extension, excluded_ids, problems)
        excluded += removed
    records, report = probe_and_finish(
        "wavcaps", pending, problems, out_dir, lambda source: f"wavcaps_{source.lower()}.jsonl.gz",
        min_seconds=min_seconds, skip_missing=skip_missing, workers=workers, excluded=excluded,
    )
    if exclude_csv:
        report.notes.append(
            f"exclusion list {exclude_csv}: {len(excluded_ids):,} ids, {excluded:,} FreeSound clip(s) removed"
        )
    for source, group in records.items():
        official = OFFICIAL_CLIPS.get(source)
        if official is not None and len(group) != official:
            report.notes.append(f"{source}: {len(group):,} clips, the published source has {official:,}")
    return records, report
