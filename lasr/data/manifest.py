"""Manifests: one plain, serialisable record per audio clip, stored as JSONL or JSONL.gz (lhotse style).

A manifest line is ``ClipRecord.to_dict()`` as JSON.  Paths are stored as given by the prepare step
(absolute by default), so a manifest can be moved independently of the audio only if paths are absolute.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from lasr.data.shards import MANIFEST_NAME as SHARD_MANIFEST_NAME
from lasr.data.shards import is_shard_folder, is_shard_path, resolve_shard_path
from lasr.errors import DataError
from lasr.utils.atomic import atomic_open

Seconds = float


@dataclass(frozen=True)
class ClipRecord:
    """One audio clip with its text and labels.

    Attributes:
        id: unique id within its source dataset (Clotho: the file name; AudioCaps: youtube id + start).
        audio_path: path of the audio file.
        duration: length of the file's audio in seconds.
        sample_rate: native sample rate of the file in Hz.
        captions: human (or LLM) captions; empty for purely labelled sets.
        labels: class names (single-label sets have one).
        split: dataset split name, e.g. ``development``, ``validation``, ``evaluation``, ``train``.
        dataset: source dataset name, e.g. ``clotho``, ``audiocaps``, ``wavcaps/freesound``, ``esc50``.
        license: licence string of the clip where known.
        num_frames: number of samples per channel in the file (lets a crop seek without probing again).
        channels: channels in the file.
        fold: cross-validation fold for fold-based sets (ESC-50 / Kitchen20: 1-based).
        extra: anything else a recipe wants to keep (JSON-serialisable).
    """

    id: str
    audio_path: str
    duration: Seconds
    sample_rate: int
    captions: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    split: str = ""
    dataset: str = ""
    license: str = ""
    num_frames: int | None = None
    channels: int | None = None
    fold: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Globally unique key: ``dataset/id`` (ids are only unique within a dataset)."""
        return f"{self.dataset}/{self.id}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``None`` and empty optional fields are dropped."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or (f.name in ("extra", "license", "split", "dataset") and not value):
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "ClipRecord":
        known = {f.name for f in dataclasses.fields(ClipRecord)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown manifest keys {sorted(unknown)}")
        missing = {"id", "audio_path", "duration", "sample_rate"} - set(data)
        if missing:
            raise ValueError(f"missing manifest keys {sorted(missing)}")
        data = dict(data)
        data["captions"] = tuple(data.get("captions", ()))
        data["labels"] = tuple(data.get("labels", ()))
        return ClipRecord(**data)


def _open_text(path: Path, mode: str):
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_manifest(path: str | Path) -> list[ClipRecord]:
    """Read a ``.jsonl`` or ``.jsonl.gz`` manifest, or a shard folder written by ``lasr data shard`` (its
    records, audio read from the shards); a bad line raises :class:`DataError` naming file and line."""
    path = Path(path)
    if path.is_dir() and is_shard_folder(path):
        path = path / SHARD_MANIFEST_NAME
    if not path.is_file():
        raise DataError("manifest not found", path)
    records: list[ClipRecord] = []
    seen: dict[str, int] = {}
    with _open_text(path, "r") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = ClipRecord.from_dict(json.loads(line))
                if is_shard_path(record.audio_path):
                    record = dataclasses.replace(record, audio_path=resolve_shard_path(record.audio_path, path.parent))
            except (json.JSONDecodeError, ValueError, TypeError) as err:
                raise DataError(f"invalid manifest record: {err}", path, line_no) from None
            if record.key in seen:
                raise DataError(f"duplicate clip {record.key!r} (first on line {seen[record.key]})", path, line_no)
            seen[record.key] = line_no
            records.append(record)
    return records


def iter_manifest(path: str | Path) -> Iterator[ClipRecord]:
    yield from read_manifest(path)


def write_manifest(records: Iterable[ClipRecord], path: str | Path) -> int:
    """Write records atomically (temporary file + rename); gzip when ``path`` ends in ``.gz``. Returns the count."""
    path = Path(path)
    count = 0
    if path.suffix == ".gz":
        with atomic_open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            for record in records:
                gz.write((json.dumps(record.to_dict(), ensure_ascii=False) + "\n").encode("utf-8"))
                count += 1
    else:
        with atomic_open(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
                count += 1
    return count
