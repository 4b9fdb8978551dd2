"""On-disk embedding index: a folder of shards, each written atomically, so an interrupted build resumes.

Layout of ``INDEX/``:

* ``index.json``: format, version, ``embed_dim``, ``checkpoint`` (absolute path) with ``checkpoint_relative``
  (the same, relative to the index folder, so a moved tree still finds it) and ``model_fingerprint`` (hash of
  the weights that made the embeddings), ``sample_rate`` (Hz), ``max_seconds``, ``source``, ``collection_digest``,
  ``count`` (clips listed), ``shard_size``.
* ``shard-NNNNN.npy``: (n, embed_dim) float32 unit vectors of the readable clips of positions
  ``[NNNNN * shard_size, (NNNNN + 1) * shard_size)`` of the collection.
* ``shard-NNNNN.json``: ``{"start", "end", "ids", "paths", "failed": [[id, path, reason], ...]}``; written after
  the ``.npy``, so a shard is complete exactly when its ``.json`` exists.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from lasr.errors import DataError
from lasr.utils.atomic import atomic_open

FORMAT = "lasr-embedding-index"
VERSION = 1
META_NAME = "index.json"
# fields that must agree for a build to resume into an existing folder
RESUME_KEYS = ("model_fingerprint", "embed_dim", "collection_digest", "sample_rate", "max_seconds", "shard_size")


class EmbeddingIndexError(DataError):
    """The index folder is missing, damaged, or was built by a different model or collection."""


@dataclass(frozen=True)
class Shard:
    number: int
    embeddings: np.ndarray  # (n, embed_dim) float32, memory-mapped
    ids: list[str]
    paths: list[str]
    failed: list[list[str]]


class EmbeddingIndex:
    """Reader/writer of one index folder (see the module docstring)."""

    def __init__(self, root: str | Path, meta: dict[str, Any]):
        self.root, self.meta = Path(root), meta

    # ---- creation -------------------------------------------------------------------------------------------
    @staticmethod
    def check_target(root: str | Path, overwrite: bool = False) -> None:
        """Before any work: ``root`` can hold an index (new, resumable, or ``overwrite`` of an index)."""
        from lasr.data.checks import check_output_dir

        root = check_output_dir(root)
        if root.is_dir() and any(root.iterdir()) and not (root / META_NAME).is_file():
            raise EmbeddingIndexError("folder exists and is not an embedding index; choose another --out", root)

    @staticmethod
    def paths_meta(root: str | Path, checkpoint: str | Path, source: str | Path) -> dict[str, str]:
        """``checkpoint`` and ``source`` as absolute paths, plus the checkpoint relative to the index folder."""
        checkpoint = Path(checkpoint).absolute()
        return {"checkpoint": str(checkpoint), "source": str(Path(source).absolute()),
                "checkpoint_relative": os.path.relpath(checkpoint, Path(root).absolute())}

    @staticmethod
    def create_or_resume(root: str | Path, meta: dict[str, Any]) -> "EmbeddingIndex":
        """Start a new index, or reopen one whose :data:`RESUME_KEYS` equal ``meta``'s (else a clear error)."""
        root = Path(root)
        meta = dict(meta, format=FORMAT, version=VERSION)
        if (root / META_NAME).is_file():
            old = EmbeddingIndex.open(root).meta
            changed = [key for key in RESUME_KEYS if old.get(key) != meta.get(key)]
            if changed:
                details = ", ".join(f"{k}: {old.get(k)!r} -> {meta.get(k)!r}" for k in changed)
                raise EmbeddingIndexError(f"an index built with different settings is already here ({details}); "
                                  "choose another --out or pass --overwrite", root)
        elif root.exists() and any(root.iterdir()):
            raise EmbeddingIndexError("folder exists and is not an embedding index; choose another --out", root)
        with atomic_open(root / META_NAME, "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=1)
        return EmbeddingIndex(root, meta)

    def shard_path(self, number: int, suffix: str) -> Path:
        return self.root / f"shard-{number:05d}{suffix}"

    def done_shards(self) -> set[int]:
        """Numbers of the complete shards."""
        done = set()
        for path in self.root.glob("shard-*.json"):
            number = int(path.stem.split("-")[1])
            if self.shard_path(number, ".npy").is_file():
                done.add(number)
        return done

    def write_shard(self, number: int, embeddings: np.ndarray, ids: list[str], paths: list[str],
                    failed: list[list[str]]) -> None:
        """Write shard ``number`` atomically: (n, embed_dim) embeddings first, then the ``.json`` marker."""
        start = number * self.meta["shard_size"]
        with atomic_open(self.shard_path(number, ".npy"), "wb") as handle:
            np.save(handle, np.ascontiguousarray(embeddings, dtype=np.float32))
        info = {"start": start, "end": min(start + self.meta["shard_size"], self.meta["count"]),
                "ids": ids, "paths": paths, "failed": failed}
        with atomic_open(self.shard_path(number, ".json"), "w", encoding="utf-8") as handle:
            json.dump(info, handle)

    # ---- reading --------------------------------------------------------------------------------------------
    @staticmethod
    def open(root: str | Path) -> "EmbeddingIndex":
        root = Path(root)
        path = root / META_NAME
        if not path.is_file():
            raise EmbeddingIndexError(f"not an embedding index (no {META_NAME}); build one with `lasr embed`", root)
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise EmbeddingIndexError(f"damaged index metadata ({err})", path) from None
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise EmbeddingIndexError(f"unsupported index format {meta.get('format')!r} v{meta.get('version')}", path)
        return EmbeddingIndex(root, meta)

    def checkpoint_path(self) -> Path:
        """The checkpoint that built the index: its absolute path, else the one relative to the index folder
        (older indices stored the path as typed, tried relative to the working folder as well)."""
        stored = self.meta.get("checkpoint")
        if not stored:
            raise EmbeddingIndexError(f"{META_NAME} names no checkpoint; pass --ckpt", self.root)
        tried = [Path(stored)]
        if self.meta.get("checkpoint_relative"):
            tried.append(self.root / self.meta["checkpoint_relative"])
        for path in tried:
            if path.is_file():
                return path
        listed = " nor ".join(str(p.absolute()) for p in tried)
        raise EmbeddingIndexError(f"the checkpoint that built this index is gone (not at {listed}); pass --ckpt "
                                  "with the same weights", self.root)

    @property
    def n_shards(self) -> int:
        return -(-self.meta["count"] // self.meta["shard_size"])

    @property
    def complete(self) -> bool:
        return len(self.done_shards()) == self.n_shards

    def shard_infos(self) -> Iterator[dict[str, Any]]:
        """The ``.json`` of each complete shard, in order (ids, paths, failed; no embeddings read)."""
        for number in sorted(self.done_shards()):
            yield json.loads(self.shard_path(number, ".json").read_text(encoding="utf-8"))

    def shards(self) -> Iterator[Shard]:
        """Complete shards in order (embeddings memory-mapped)."""
        for number in sorted(self.done_shards()):
            info = json.loads(self.shard_path(number, ".json").read_text(encoding="utf-8"))
            embeddings = np.load(self.shard_path(number, ".npy"), mmap_mode="r")
            if embeddings.ndim != 2 or embeddings.shape != (len(info["ids"]), self.meta["embed_dim"]):
                raise EmbeddingIndexError(f"shard has shape {embeddings.shape}, expected ({len(info['ids'])}, "
                                  f"{self.meta['embed_dim']})", self.shard_path(number, ".npy"))
            yield Shard(number, embeddings, info["ids"], info["paths"], info["failed"])

    def check_model(self, fingerprint: str, embed_dim: int, checkpoint: str) -> None:
        """Raise a clear error if the query model is not the one that built the index."""
        if embed_dim != self.meta["embed_dim"]:
            raise EmbeddingIndexError(f"index holds {self.meta['embed_dim']}-d embeddings but {checkpoint} makes "
                              f"{embed_dim}-d ones; query with the checkpoint that built it "
                              f"({self.meta.get('checkpoint')})", self.root)
        if fingerprint != self.meta["model_fingerprint"]:
            raise EmbeddingIndexError(f"index was built by another model ({self.meta.get('checkpoint')}, weights "
                              f"{self.meta['model_fingerprint']}) than {checkpoint} (weights {fingerprint}); "
                              "scores would be meaningless", self.root)
