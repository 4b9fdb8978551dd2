"""What to embed: a folder of audio files or a manifest, and batches of loaded audio that skip bad files.

A collection is an ordered list of :class:`ClipRef` (id + path); the order is deterministic (manifest order, or
sorted relative paths for a folder), which is what makes an interrupted index resumable.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from lasr.data.audio import AudioInfo, load_clip, pad_or_crop
from lasr.data.datasets import record_audio_info
from lasr.data.manifest import ClipRecord, read_manifest
from lasr.data.shards import is_shard_path
from lasr.errors import AudioError, DataError

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".aiff", ".aif")
MANIFEST_SUFFIXES = (".jsonl", ".jsonl.gz")
DEFAULT_MAX_SECONDS = 10.0  # window embedded per clip (from the start); longer files are cropped


@dataclass(frozen=True)
class ClipRef:
    """One clip to embed: ``id`` unique in the collection, ``path`` of its audio, optional header facts."""

    id: str
    path: str
    info: AudioInfo | None = None


def is_manifest(path: str | Path) -> bool:
    return any(str(path).endswith(suffix) for suffix in MANIFEST_SUFFIXES)


def refs_from_records(records: Sequence[ClipRecord]) -> list[ClipRef]:
    """Manifest records -> refs (id = ``dataset/id`` key; header facts kept so no probe is needed)."""
    refs = []
    for r in records:
        path = r.audio_path if is_shard_path(r.audio_path) else str(Path(r.audio_path).absolute())
        refs.append(ClipRef(r.key if r.dataset else r.id, path, record_audio_info(r)))
    return refs


def list_collection(source: str | Path) -> list[ClipRef]:
    """Clips of a manifest (``.jsonl[.gz]``) or of every audio file under a folder (id = relative path)."""
    source = Path(source)
    if source.is_file() and is_manifest(source):
        return refs_from_records(read_manifest(source))
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
        if not files:
            raise DataError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under this folder", source)
        return [ClipRef(p.relative_to(source).as_posix(), str(p.absolute())) for p in files]
    raise DataError("not a folder of audio files nor a manifest (.jsonl/.jsonl.gz)", source)


def collection_digest(refs: Sequence[ClipRef]) -> str:
    """Hash of the ordered ids and paths: an index may only be resumed over the same collection."""
    digest = hashlib.blake2b(digest_size=12)
    for ref in refs:
        digest.update(f"{ref.id}\0{ref.path}\n".encode())
    return digest.hexdigest()


class _ClipLoader(Dataset):
    """Item = loaded, padded audio or the error text of a file that could not be read."""

    def __init__(self, refs: Sequence[ClipRef], sample_rate: int, max_seconds: float):
        self.refs, self.sample_rate, self.max_seconds = list(refs), sample_rate, max_seconds
        self.length = int(round(max_seconds * sample_rate))

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        ref = self.refs[index]
        try:
            wave, duration = load_clip(ref.path, self.sample_rate, self.max_seconds, info=ref.info)
        except AudioError as err:
            return {"index": index, "error": str(err)}
        return {"index": index, "audio": pad_or_crop(wave, self.length), "duration": duration}


def _collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    good = [i for i in items if "error" not in i]
    return {
        "index": [i["index"] for i in good],
        "audio": torch.stack([i["audio"] for i in good]) if good else None,
        "duration": torch.tensor([i["duration"] for i in good], dtype=torch.float32),
        "failed": [(i["index"], i["error"]) for i in items if "error" in i],
    }


def audio_batches(refs: Sequence[ClipRef], sample_rate: int, max_seconds: float = DEFAULT_MAX_SECONDS,
                  batch_size: int = 16, workers: int = 0) -> Iterator[dict[str, Any]]:
    """Batches in collection order: ``index`` (positions in ``refs`` of the good clips), ``audio`` (B, S) at
    ``sample_rate`` Hz (or ``None``), ``duration`` (B,) seconds, ``failed`` [(position, reason)]."""
    loader = DataLoader(_ClipLoader(refs, sample_rate, max_seconds), batch_size=batch_size, shuffle=False,
                        num_workers=workers, collate_fn=_collate)
    yield from loader
