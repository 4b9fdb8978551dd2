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
never read. litdata writes the chunks; lasr reads items at their offsets itself (why: above ``_ShardReader``),
from a local or mounted folder (a cluster's shared filesystem; an object store mounted, e.g. with s3fs).
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import io
import itertools
import json
import os
import shutil
import struct
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


# litdata 0.2.76's reader, outside its POSIX-fast mode, reads the whole chunk file (64 MB) at every item read
# that misses its decode window: 86 ms per shuffled 85 kB clip on a warm page cache, against 0.5 ms in file
# order; its POSIX-fast mode maps chunks instead but evicts the chunk it has just mapped under a small RAM
# budget (KeyError).  Items are therefore read here at their offsets in litdata's chunk format (one pread for
# the offset pair, one for the item), which the writer below keeps as litdata documents it
# (``litdata/streaming/writer.py``: uint32 count, uint32 offsets[count + 1], items; an item: one uint32 size
# per leaf, then the leaves).
_LAYOUT = {"data_format": ["bytes", "str"], "compression": None, "encryption": None, "item_loader": "PyTreeLoader"}
_MAX_OPEN_CHUNKS = 64  # open chunk files per process (a 450,000-clip corpus has ~700 chunks; ulimit -n is 1024)


class _ShardReader:
    """Items of one shard folder by global index; thread-safe (``os.pread`` keeps no file position)."""

    def __init__(self, folder: str):
        index_path = Path(folder) / "index.json"
        try:
            index = json.loads(index_path.read_text())
            config, chunks = index["config"], index["chunks"]
            layout = {key: config.get(key) for key in _LAYOUT}
            spec = json.loads(config["data_spec"])[1]
            fields = json.loads(spec["context"])
            names = [chunk["filename"] for chunk in chunks]
            counts = [int(chunk["chunk_size"]) for chunk in chunks]
        except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
            raise AudioError(f"unreadable litdata index ({type(err).__name__}: {err})", index_path) from None
        if layout != _LAYOUT or fields != ["audio", "key"]:
            raise AudioError(f"shards not written by lasr data shard: item layout {layout}, fields {fields}; "
                             f"expected {_LAYOUT}, fields ['audio', 'key']", index_path)
        self.paths = [str(Path(folder) / name) for name in names]
        self.ends = list(itertools.accumulate(counts))
        self._open: collections.OrderedDict[int, int] = collections.OrderedDict()  # chunk -> file descriptor
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def read(self, item: int) -> bytes:
        """The encoded audio bytes of ``item``."""
        chunk = bisect.bisect_right(self.ends, item)
        local = item - (self.ends[chunk - 1] if chunk else 0)
        with self._lock:  # the table of open files and the reads: no file is closed under a read
            descriptor = self._descriptor(chunk)
            begin, end = struct.unpack("<II", os.pread(descriptor, 8, 4 + 4 * local))
            data = os.pread(descriptor, end - begin, begin)
        if len(data) != end - begin or len(data) < 8:
            raise AudioError(f"item {item} is cut short in {self.paths[chunk]}", self.paths[chunk])
        audio_bytes = struct.unpack_from("<I", data, 0)[0]
        return data[8 : 8 + audio_bytes]

    def _descriptor(self, chunk: int) -> int:
        descriptor = self._open.get(chunk)
        if descriptor is None:
            try:
                descriptor = os.open(self.paths[chunk], os.O_RDONLY)
            except OSError as err:
                raise AudioError(f"cannot open chunk ({err.strerror})", self.paths[chunk]) from None
            self._open[chunk] = descriptor
            if len(self._open) > _MAX_OPEN_CHUNKS:
                os.close(self._open.popitem(last=False)[1])
        else:
            self._open.move_to_end(chunk)
        return descriptor


_OPEN: dict[tuple[int, str], _ShardReader] = {}  # (pid, folder) -> reader
_OPENING = threading.Lock()


def _reader(folder: str) -> _ShardReader:
    key = (os.getpid(), folder)  # DataLoader workers are forked: each opens its own files
    reader = _OPEN.get(key)
    if reader is None:
        with _OPENING:
            if key not in _OPEN:
                if not is_shard_folder(folder):
                    raise AudioError("shard folder not found or incomplete", folder)
                _OPEN[key] = _ShardReader(folder)
            reader = _OPEN[key]
    return reader


def open_shard_audio(path: str | Path) -> io.BytesIO:
    """The encoded audio of ``shard:<folder>#<item>`` as a seekable in-memory file (thread-safe)."""
    folder, item = _split(str(path))
    reader = _reader(folder)
    if item >= len(reader):
        raise AudioError(f"item {item} is past the end of the shards ({len(reader)} items)", path)
    return io.BytesIO(reader.read(item))


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
