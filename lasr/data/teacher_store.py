"""On-disk teacher embeddings: per teacher, chunked shards written atomically plus an index.

Layout of ``lasr teachers --out DIR``::

    DIR/teachers.json                    teachers in order: name, checkpoint, embed_dim (written last)
    DIR/<teacher>/index.json             plan: shards with kind and count, sample rate, crop; ``complete``
    DIR/<teacher>/audio-00000-<id>.pt    {"kind": "audio", "items": [clip keys "dataset/id"], "emb": (n, E)}
    DIR/<teacher>/text-00000-<id>.pt     {"kind": "text", "items": [caption strings], "emb": (n, E)}

A shard's ``<id>`` hashes its items together with the checkpoint's identity and the crop, so a shard file that
exists is valid for the current plan: a killed run resumes by skipping existing files, and a changed checkpoint
or manifest recomputes exactly the shards whose content changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from lasr.errors import DataError
from lasr.utils.atomic import atomic_open, atomic_path

log = logging.getLogger(__name__)

FORMAT = 1
INDEX = "index.json"
ROOT_INDEX = "teachers.json"
KINDS = ("audio", "text")
_SHOWN = 5


def digest(*parts: object, size: int = 10) -> str:
    """Short hex digest of JSON-serialisable parts."""
    payload = json.dumps(parts, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.blake2b(payload, digest_size=16).hexdigest()[:size]


def checkpoint_identity(path: str | Path) -> dict[str, object]:
    """Resolved path, size and modification time: changes when the checkpoint file is replaced."""
    path = Path(path).resolve()
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def teacher_dir_name(checkpoint: str | Path) -> str:
    """``<run folder>-<file stem>-<hash of the resolved path>``, e.g. ``stage1-last-1a2b3c4d``."""
    path = Path(checkpoint).resolve()
    readable = re.sub(r"[^A-Za-z0-9_.=-]+", "_", f"{path.parent.name}-{path.stem}")
    return f"{readable}-{digest(str(path), size=8)}"


@dataclass(frozen=True)
class Shard:
    """One planned shard: ``kind`` is ``audio`` (items = clip keys) or ``text`` (items = caption strings)."""

    file: str
    kind: str
    items: tuple[str, ...]


def plan_shards(clip_keys: Sequence[str], texts: Sequence[str], shard_size: int, identity: object) -> list[Shard]:
    """Cut the clip keys and the caption strings into shards of at most ``shard_size`` items."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    shards = []
    for kind, items in (("audio", list(clip_keys)), ("text", list(texts))):
        for number, start in enumerate(range(0, len(items), shard_size)):
            chunk = tuple(items[start:start + shard_size])
            shards.append(Shard(f"{kind}-{number:05d}-{digest(identity, kind, chunk)}.pt", kind, chunk))
    return shards


def write_shard(folder: Path, shard: Shard, emb: Tensor) -> None:
    """Save one shard atomically (temporary file, then rename)."""
    if emb.shape[0] != len(shard.items):
        raise ValueError(f"{shard.file}: {emb.shape[0]} embeddings for {len(shard.items)} items")
    with atomic_path(folder / shard.file) as tmp:
        torch.save({"kind": shard.kind, "items": list(shard.items), "emb": emb.contiguous()}, tmp)


def write_json(path: Path, payload: dict) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=1, ensure_ascii=False)


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("not found", path) from None
    except json.JSONDecodeError as err:
        raise DataError(f"invalid JSON: {err}", path) from None


def remove_stale_shards(folder: Path, keep: set[str]) -> int:
    """Delete shard files of earlier plans (same naming scheme, not in ``keep``). Returns how many."""
    stale = [p for p in folder.glob("*.pt") if re.fullmatch(r"(audio|text)-\d{5}-[0-9a-f]+\.pt", p.name)
             and p.name not in keep]
    for path in stale:
        path.unlink()
    return len(stale)


class TeacherTable:
    """One teacher's embeddings in memory: rows by clip key and by caption string.

    Attributes:
        name: the teacher's folder name; path: its folder.
        audio: (N, E) clip embeddings; text: (T, E) caption embeddings (unit vectors, stored dtype).
    """

    def __init__(self, folder: str | Path):
        self.path = Path(folder)
        self.name = self.path.name
        index = read_json(self.path / INDEX)
        if index.get("format") != FORMAT:
            raise DataError(f"unsupported teacher index format {index.get('format')!r} (expected {FORMAT})",
                            self.path / INDEX)
        if not index.get("complete"):
            raise DataError("teacher embeddings are incomplete (the run was interrupted); run `lasr teachers` "
                            "again with the same arguments to finish it", self.path / INDEX)
        self.checkpoint = index.get("checkpoint", "")
        parts: dict[str, tuple[list[str], list[Tensor]]] = {kind: ([], []) for kind in KINDS}
        for entry in index["shards"]:
            shard = self._read_shard(entry)
            parts[entry["kind"]][0].extend(shard["items"])
            parts[entry["kind"]][1].append(shard["emb"])
        dim = int(index["embed_dim"])
        self.audio_keys, self.texts = parts["audio"][0], parts["text"][0]
        self.audio = torch.cat(parts["audio"][1]) if parts["audio"][1] else torch.empty(0, dim)
        self.text = torch.cat(parts["text"][1]) if parts["text"][1] else torch.empty(0, dim)
        if self.audio.shape[1] != self.text.shape[1]:
            raise DataError(f"audio embeddings have {self.audio.shape[1]} dims but text embeddings "
                            f"{self.text.shape[1]}", self.path)
        self.clip_rows = {key: row for row, key in enumerate(self.audio_keys)}
        self.text_rows = {text: row for row, text in enumerate(self.texts)}

    def _read_shard(self, entry: dict) -> dict:
        path = self.path / entry["file"]
        try:
            shard = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise DataError("shard listed in the index is missing; run `lasr teachers` again", path) from None
        if shard.get("kind") != entry["kind"] or len(shard["items"]) != entry["count"] or shard["emb"].ndim != 2:
            raise DataError("shard does not match its index entry; run `lasr teachers` again", path)
        return shard

    @property
    def embed_dim(self) -> int:
        return int(self.audio.shape[1])

    def missing(self, clip_keys: Sequence[str], texts: Sequence[str]) -> tuple[list[str], list[str]]:
        """Clip keys and caption strings this table has no embedding for (each list de-duplicated, in order)."""
        keys = [k for k in dict.fromkeys(clip_keys) if k not in self.clip_rows]
        strings = [t for t in dict.fromkeys(texts) if t not in self.text_rows]
        return keys, strings

    def lookup(self, clip_keys: Sequence[str], texts: Sequence[str]) -> tuple[Tensor, Tensor]:
        """((B, E) audio, (B', E) text) float32 rows for the given clip keys and caption strings."""
        try:
            audio_rows = [self.clip_rows[k] for k in clip_keys]
            text_rows = [self.text_rows[t] for t in texts]
        except KeyError as err:
            raise DataError(f"no teacher embedding for {err.args[0]!r} (a caption augmentation the teachers "
                            "never saw? re-run `lasr teachers` with its variants)", self.path) from None
        return self.audio[audio_rows].float(), self.text[text_rows].float()


def teacher_folders(path: str | Path) -> list[Path]:
    """Teacher folders named by ``path``: a ``lasr teachers`` output (all its teachers, in order) or one teacher."""
    path = Path(path)
    if (path / ROOT_INDEX).is_file():
        root = read_json(path / ROOT_INDEX)
        return [path / entry["dir"] for entry in root["teachers"]]
    if (path / INDEX).is_file():
        return [path]
    raise DataError(f"neither {ROOT_INDEX} nor {INDEX} found: not an output of `lasr teachers`", path)


def load_teacher_tables(paths: Sequence[str | Path]) -> list[TeacherTable]:
    """Load every teacher named by ``paths`` (see :func:`teacher_folders`)."""
    tables = [TeacherTable(folder) for path in paths for folder in teacher_folders(path)]
    if not tables:
        raise DataError("no teachers found", ", ".join(map(str, paths)))
    return tables
