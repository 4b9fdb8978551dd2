"""Sharded audio on litdata: a manifest's clips (encoded bytes, as the files hold them) in a few large chunks.

On a cluster, 450,000 small files are 450,000 opens and metadata look-ups on a network filesystem; shards
turn them into reads at offsets of a few open files. Layout of a shard folder (``lasr data shard``):

* ``index.json``, ``chunk-*.bin``: litdata's binary chunks, item ``i`` = ``{"audio": bytes, "key": str}``;
* ``manifest.jsonl.gz``: the records, in item order, with ``audio_path`` = ``shard:#<i>``.

Reading a shard folder as a manifest (:func:`lasr.data.manifest.read_manifest`) resolves each ``audio_path``
to ``shard:<absolute folder>#<i>``, which :mod:`lasr.data.audio` decodes from the item's bytes with
soundfile, seeking as in a file. So everything above (sampler, weights, caption policy, mixtures, DDP) sees
the same records in the same order and draws the same batches from shards as from files.

The folder is written under a temporary name and renamed when complete, so a half-written shard set is
never read. Object-store URLs (``s3://...``) are litdata's; only local folders are tested here.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from lasr.errors import AudioError, DataError

if TYPE_CHECKING:
    from lasr.data.manifest import ClipRecord

SCHEME = "shard:"
MANIFEST_NAME = "manifest.jsonl.gz"
DEFAULT_CHUNK_BYTES = "64MB"


def is_shard_path(path: str | Path) -> bool:
    return str(path).startswith(SCHEME)


def is_shard_folder(path: str | Path) -> bool:
    path = Path(path)
    return (path / MANIFEST_NAME).is_file() and (path / "index.json").is_file()


def resolve_shard_path(audio_path: str, folder: Path) -> str:
    """``shard:#i`` (as stored) -> ``shard:<absolute folder>#i``; other paths unchanged."""
    if audio_path.startswith(SCHEME + "#"):
        return f"{SCHEME}{folder.resolve()}#{audio_path[len(SCHEME) + 1:]}"
    return audio_path


def _split(path: str) -> tuple[str, int]:
    folder, _, item = str(path)[len(SCHEME):].rpartition("#")
    if not folder or not item.isdigit():
        raise AudioError("not a shard audio path (expected shard:<folder>#<item>)", path)
    return folder, int(item)


_OPEN: dict[tuple[int, str], tuple[object, threading.Lock]] = {}  # (pid, folder) -> (StreamingDataset, its lock)
_OPENING = threading.Lock()


def _dataset(folder: str):
    key = (os.getpid(), folder)  # DataLoader workers are forked: each opens its own readers
    with _OPENING:
        if key not in _OPEN:
            if not is_shard_folder(folder):
                raise AudioError("shard folder not found or incomplete", folder)
            from litdata import StreamingDataset

            dataset = StreamingDataset(folder)
            # litdata's "POSIX-fast" mode (on for every local folder) evicts the chunk it has just mapped when
            # its RAM budget allows one mapped chunk per reader (many workers, large chunks, a full node):
            # almost every read then raises KeyError. The plain mode opens the chunk file at each new chunk.
            dataset.posix_fast = None
            _OPEN[key] = (dataset, threading.Lock())
    return _OPEN[key]


def open_shard_audio(path: str | Path) -> io.BytesIO:
    """The encoded audio of ``shard:<folder>#<item>`` as a seekable in-memory file (thread-safe)."""
    folder, item = _split(str(path))
    dataset, lock = _dataset(folder)
    if item >= len(dataset):
        raise AudioError(f"item {item} is past the end of the shards ({len(dataset)} items)", path)
    # litdata's reader keeps the current chunk's mmap and an LRU of mapped chunks in unlocked attributes:
    # two threads reading at once (the evaluation-set check reads with a thread pool) evict each other's
    # chunk (KeyError in item_loader._apply_mapped_chunk). The copy out of the mmap is made inside the lock,
    # so the bytes stay valid after a later read unmaps the chunk.
    with lock:
        return io.BytesIO(bytes(dataset[item]["audio"]))


@dataclasses.dataclass(frozen=True)
class ShardSummary:
    folder: Path
    items: int
    bytes: int


def write_shards(records: Iterable["ClipRecord"], out: str | Path, chunk_bytes: str = DEFAULT_CHUNK_BYTES,
                 overwrite: bool = False, progress: bool = True) -> ShardSummary:
    """Write ``records``' audio files (bytes as stored: FLAC, WAV, MP3 ...) and the records into ``out``.

    Every file is checked first and all missing or unreadable ones are reported at once, before anything is
    written; ``out`` appears only when complete.
    """
    from litdata.streaming.writer import BinaryWriter
    from tqdm import tqdm

    from lasr.data.audio import probe_audio
    from lasr.data.manifest import write_manifest

    out = Path(out)
    records = list(records)
    if not records:
        raise DataError("no records to shard")
    if out.exists() and not overwrite:
        raise DataError("output folder exists; choose another --out or pass --overwrite", out)
    problems = []
    for row, record in enumerate(records, start=1):
        try:
            probe_audio(record.audio_path)
        except AudioError as err:
            problems.append(f"record {row} ({record.key}): {err}")
    if problems:
        listed = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise DataError(f"{len(problems)} of {len(records)} clips cannot be sharded:\n  {listed}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        writer = BinaryWriter(str(tmp), chunk_bytes=chunk_bytes)
        total = 0
        stored = []
        for item, record in enumerate(tqdm(records, desc="sharding", unit="clip", disable=not progress,
                                           mininterval=10.0)):
            data = Path(record.audio_path).read_bytes()
            total += len(data)
            writer.add_item(item, {"audio": data, "key": record.key})
            stored.append(dataclasses.replace(record, audio_path=f"{SCHEME}#{item}"))
        writer.done()
        writer.merge()
        write_manifest(stored, tmp / MANIFEST_NAME)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a shared cluster wants the umask's mode
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ShardSummary(out, len(records), total)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
