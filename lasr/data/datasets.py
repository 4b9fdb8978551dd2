"""Map-style datasets over manifests.

* :class:`CaptionPairDataset` (training): flattened per caption like the DCASE baseline, one item per
  (clip, caption slot), random crop of long files.
* :class:`ClipDataset` (evaluation): one item per clip with all its captions, deterministic crop; the audio
  is embedded once per clip instead of once per caption.

A bad clip (missing, corrupt, silent, too short) is replaced by the next good one and reported in the item's
``skipped`` list (once per file), unless ``strict`` is set, in which case the :class:`AudioError` propagates.
Evaluation datasets are built strict by the DataModule, after :mod:`lasr.data.verify` checked every clip.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lasr.data.audio import AudioInfo, load_clip, pad_or_crop
from lasr.data.captions import CaptionPolicy
from lasr.data.manifest import ClipRecord
from lasr.errors import AudioError, DataError

log = logging.getLogger(__name__)


def clip_key(record: ClipRecord) -> int:
    """Stable signed 64-bit key of ``dataset/id`` (same on every rank and run; used for positive masks)."""
    digest = hashlib.blake2b(record.key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def record_audio_info(record: ClipRecord) -> AudioInfo | None:
    """The audio header the manifest already holds for ``record`` (saves opening the file), else None."""
    if record.num_frames and record.channels:
        return AudioInfo(record.sample_rate, record.num_frames, record.channels)
    return None


class _AudioSource:
    """Loads a record's audio window at the target rate, padded to a fixed length."""

    def __init__(self, sample_rate: int, max_seconds: float, min_seconds: float):
        self.sample_rate, self.max_seconds, self.min_seconds = sample_rate, max_seconds, min_seconds
        self.length = int(round(max_seconds * sample_rate))

    def read(self, record: ClipRecord, rng: np.random.Generator | None, seconds: float | None = None,
             check_silence: bool = True) -> tuple[torch.Tensor, float]:
        """``load_clip`` of the record's window (``seconds``, default ``max_seconds``), unpadded, using the
        header the manifest holds: (wave (S,), the clip's true duration in s)."""
        return load_clip(record.audio_path, self.sample_rate, self.max_seconds if seconds is None else seconds,
                         rng=rng, min_seconds=self.min_seconds, check_silence=check_silence,
                         info=record_audio_info(record))

    def load(self, record: ClipRecord, rng: np.random.Generator | None) -> tuple[torch.Tensor, float]:
        wave, duration = self.read(record, rng)
        return pad_or_crop(wave, self.length), min(duration, self.max_seconds)


class _SkippingDataset(Dataset):
    """Shared retry-on-bad-item logic; subclasses implement ``_item(index, rng)``."""

    def __init__(self, strict: bool, max_retries: int, seed: int):
        self.strict, self.max_retries, self.seed = strict, max_retries, seed

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = index if isinstance(index, tuple) else (index, None)
        skipped: list[tuple[str, str]] = []
        for attempt in range(self.max_retries + 1):
            current = (index + attempt) % len(self)
            rng = None if epoch is None else np.random.default_rng((self.seed, epoch, current))
            try:
                item = self._item(current, rng)
            except AudioError as err:
                if self.strict:
                    raise
                log.debug("skipping item %d: %s", current, err)
                if all(path != err.path for path, _ in skipped):  # one entry per bad file, not per attempt
                    skipped.append((err.path or "?", str(err)))
                continue
            item["skipped"] = skipped
            return item
        raise AudioError(f"{self.max_retries + 1} consecutive bad items starting at index {index}; last: {skipped[-1][1]}")

    def _item(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        raise NotImplementedError


class CaptionPairDataset(_SkippingDataset):
    """One item per (clip, caption): waveform, caption, ids. Items with an ``(index, epoch)`` key are random."""

    def __init__(self, records: Sequence[ClipRecord], sample_rate: int, max_seconds: float,
                 caption_policy: CaptionPolicy | None = None, min_seconds: float = 0.0, strict: bool = False,
                 max_retries: int = 10, seed: int = 0):
        super().__init__(strict, max_retries, seed)
        self.records = list(records)
        self.pairs = [(c, s) for c, r in enumerate(self.records) for s in range(len(r.captions))]
        if not self.pairs:
            raise DataError("no captioned clips in the training manifests")
        self.keys = [clip_key(r) for r in self.records]
        self.audio = _AudioSource(sample_rate, max_seconds, min_seconds)
        self.caption_policy = caption_policy or CaptionPolicy()

    def __len__(self) -> int:
        return len(self.pairs)

    def _item(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        clip, slot = self.pairs[index]
        record = self.records[clip]
        wave, duration = self.audio.load(record, rng)
        return {
            "audio": wave, "duration": duration, "caption": self.caption_policy.caption(record, slot, rng),
            "caption_augmented": self.caption_policy.last_augmented,
            "audio_id": record.id, "audio_key": self.keys[clip], "caption_id": f"{record.id}#{slot}",
            "dataset": record.dataset, "index": index,
        }


class ClipDataset(_SkippingDataset):
    """One item per clip with all its captions (evaluation); deterministic crop from the start."""

    def __init__(self, records: Sequence[ClipRecord], sample_rate: int, max_seconds: float,
                 min_seconds: float = 0.0, strict: bool = False, max_retries: int = 10):
        super().__init__(strict, max_retries, seed=0)
        self.records = list(records)
        self.keys = [clip_key(r) for r in self.records]
        self.audio = _AudioSource(sample_rate, max_seconds, min_seconds)

    def __len__(self) -> int:
        return len(self.records)

    def _item(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        record = self.records[index]
        wave, duration = self.audio.load(record, None)
        return {
            "audio": wave, "duration": duration, "captions": list(record.captions), "audio_id": record.id,
            "audio_key": self.keys[index], "dataset": record.dataset, "index": index,
        }


def _collate_clip_fields(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Fields every batch has: ``audio`` (B, S), ``duration`` (B,) s, ``audio_key``/``index`` (B,) int64, lists
    ``audio_id`` and ``dataset``, and ``skipped`` [(path, reason)] of all items."""
    return {
        "audio": torch.stack([i["audio"] for i in items]),
        "duration": torch.tensor([i["duration"] for i in items], dtype=torch.float32),
        "audio_key": torch.tensor([i["audio_key"] for i in items], dtype=torch.long),
        "index": torch.tensor([i["index"] for i in items], dtype=torch.long),
        "audio_id": [i["audio_id"] for i in items],
        "dataset": [i["dataset"] for i in items],
        "skipped": [s for i in items for s in i["skipped"]],
    }


def collate_pairs(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Training batch: the clip fields (``audio`` (B, S), ``duration`` (B,) s, ``audio_key``/``index`` (B,) int64,
    ``audio_id``, ``dataset``, ``skipped``) plus lists ``caption`` and ``caption_id``."""
    batch = _collate_clip_fields(items)
    batch["caption"] = [i["caption"] for i in items]
    batch["caption_id"] = [i["caption_id"] for i in items]
    batch["caption_augmented"] = torch.tensor([bool(i.get("caption_augmented")) for i in items])  # LLM-written
    return batch


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Evaluation batch: per-clip ``audio`` (B, S), ``duration`` (B,), ``index`` (B,) (clip index in the
    dataset), ``audio_key`` (B,); captions flattened: ``captions`` (T,) strings with ``text_clip_index`` (T,)
    and ``text_slot`` (T,) int64; ``skipped`` as in training."""
    captions, owners, slots = [], [], []
    for item in items:
        for slot, caption in enumerate(item["captions"]):
            captions.append(caption)
            owners.append(item["index"])
            slots.append(slot)
    batch = _collate_clip_fields(items)
    batch["captions"] = captions
    batch["text_clip_index"] = torch.tensor(owners, dtype=torch.long)
    batch["text_slot"] = torch.tensor(slots, dtype=torch.long)
    return batch
