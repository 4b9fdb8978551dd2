"""``lasr teachers``: stage-1 models embed every training clip and every caption the student can see (SALSA).

Each teacher (a retrieval checkpoint, rebuilt from the config stored in it or given with ``--config``) runs in
eval mode over the training manifests and writes its embeddings, keyed by clip key (``dataset/id``) and by
caption string, as resumable shards (see :mod:`lasr.data.teacher_store`).  Teachers may use different audio encoders
and sample rates: each reads the audio at its own rate.

Captions the student can see = each clip's captions, plus the variants of an augmentation hook:
the caption policy's ``variants(record)`` or ``variants(record, slot)`` when it has that method (e.g.
``lasr.data.captions.AugmentedCaptionPolicy``), and/or a captions table (JSONL lines
``{"key": "dataset/id", "captions": [...]}``).  The distillation task checks the same set before training.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from lasr.data.captions import student_caption_texts
from lasr.data.manifest import ClipRecord, read_manifest
from lasr.data.teacher_store import (
    FORMAT, INDEX, ROOT_INDEX, Shard, checkpoint_identity, plan_shards, remove_stale_shards, teacher_dir_name,
    write_json, write_shard,
)
from lasr.data.verify import verify_eval_records
from lasr.errors import DataError, LasrError
from lasr.models.embedding import DEFAULT_SECONDS, embed_clips, embed_texts, progress_bar, resolve_device
from lasr.models.run_config import LoadedModel, configs_per_checkpoint, load_dual_encoder

log = logging.getLogger(__name__)

# ---- which strings the student can see ------------------------------------------------------------------------
def load_caption_table(path: str | Path) -> dict[str, list[str]]:
    """Extra caption strings per clip key from a JSONL file of ``{"key": ..., "captions": [...]}`` lines."""
    table: dict[str, list[str]] = {}
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                key, captions = row["key"], row["captions"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DataError(f"expected {{\"key\": ..., \"captions\": [...]}}: {err}", path, line_no) from None
            if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
                raise DataError("captions must be a list of strings", path, line_no)
            table.setdefault(key, []).extend(captions)
    return table


def read_training_records(manifests: Sequence[str | Path]) -> list[ClipRecord]:
    """Concatenate manifests; a clip key in two manifests is an error (teacher rows are keyed by it)."""
    records, origin = [], {}
    for path in manifests:
        for record in read_manifest(path):
            if record.key in origin:
                raise DataError(f"clip {record.key!r} is also in {origin[record.key]}", path)
            origin[record.key] = str(path)
            records.append(record)
    if not records:
        raise DataError("no clips in the manifests", ", ".join(map(str, manifests)))
    return records


# ---- one teacher -----------------------------------------------------------------------------------------------
def _embed_shard(teacher: LoadedModel, shard: Shard, by_key: dict[str, ClipRecord], seconds: float,
                 batch_size: int, num_workers: int, bar: Any) -> torch.Tensor:
    if shard.kind == "audio":
        records = [by_key[key] for key in shard.items]
        return embed_clips(teacher.model, records, seconds, batch_size, num_workers, bar=bar)
    return embed_texts(teacher.model, shard.items, batch_size, bar=bar)


def embed_teacher(teacher: LoadedModel, records: Sequence[ClipRecord], texts: Sequence[str], out: str | Path,
                  seconds: float, batch_size: int = 32, shard_size: int = 2048, num_workers: int = 0,
                  dtype: torch.dtype = torch.float32, progress: bool = True) -> dict[str, Any]:
    """Embed clips and texts with one teacher into ``out/<teacher>/``, skipping shards already on disk.

    Returns the teacher's entry for ``teachers.json`` (name, checkpoint, embed_dim, counts, seconds spent).
    """
    folder = Path(out) / teacher_dir_name(teacher.checkpoint)
    folder.mkdir(parents=True, exist_ok=True)
    model = teacher.model
    identity = {"checkpoint": checkpoint_identity(teacher.checkpoint), "seconds": seconds,
                "sample_rate": model.audio_sample_rate, "dtype": str(dtype)}
    shards = plan_shards([r.key for r in records], texts, shard_size, identity)
    index = {"format": FORMAT, "checkpoint": identity["checkpoint"]["path"], "identity": identity,
             "embed_dim": model.embed_dim, "n_audio": len(records), "n_text": len(texts), "complete": False,
             "shards": [{"file": s.file, "kind": s.kind, "count": len(s.items)} for s in shards]}
    write_json(folder / INDEX, index)
    todo = [s for s in shards if not (folder / s.file).is_file()]
    done = sum(len(s.items) for s in shards) - sum(len(s.items) for s in todo)
    by_key = {r.key: r for r in records}
    started = time.perf_counter()
    with progress_bar(len(records) + len(texts), folder.name, "item", done, enabled=progress) as bar:
        for shard in todo:
            emb = _embed_shard(teacher, shard, by_key, seconds, batch_size, num_workers, bar)
            if emb.shape[1] != model.embed_dim:
                raise LasrError(f"{teacher.checkpoint}: embeddings have {emb.shape[1]} dims, "
                                f"the model says {model.embed_dim}")
            write_shard(folder, shard, emb.to(dtype))
    remove_stale_shards(folder, {s.file for s in shards})
    write_json(folder / INDEX, dict(index, complete=True))
    return {"name": folder.name, "dir": folder.name, "checkpoint": index["checkpoint"], "embed_dim": model.embed_dim,
            "sample_rate": model.audio_sample_rate, "seconds": seconds, "resumed_items": done,
            "elapsed_s": time.perf_counter() - started}


# ---- several teachers ------------------------------------------------------------------------------------------
def load_policy(dotted: str | None, init_args: str | None = None) -> Any:
    """Instantiate a caption policy class ``package.module.Class`` with keyword arguments given as JSON."""
    if not dotted:
        return None
    module, _, name = dotted.rpartition(".")
    try:
        kwargs = json.loads(init_args) if init_args else {}
        return getattr(importlib.import_module(module), name)(**kwargs)
    except (ImportError, AttributeError, ValueError, TypeError) as err:
        raise LasrError(f"--caption-policy {dotted!r}: {err}") from None


def embed_teachers(checkpoints: Sequence[str], manifests: Sequence[str], out: str | Path,
                   configs: Sequence[str] | None = None, policy: Any = None, captions_table: str | None = None,
                   seconds: float | None = None, batch_size: int = 32, shard_size: int = 2048,
                   num_workers: int = 0, device: str = "auto", dtype: torch.dtype = torch.float32,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Run every teacher over the manifests' clips and captions; write ``out/teachers.json`` last."""
    records = read_training_records(manifests)
    verify_eval_records(records, "teacher input")  # teacher rows are keyed by clip: none may be skipped
    extra = load_caption_table(captions_table) if captions_table else None
    texts = student_caption_texts(records, policy, extra)
    entries = []
    for checkpoint, config in zip(checkpoints, configs_per_checkpoint(checkpoints, configs)):
        teacher = load_dual_encoder(checkpoint, config, resolve_device(device))
        crop = seconds or teacher.eval_seconds or DEFAULT_SECONDS
        entries.append(embed_teacher(teacher, records, texts, out, crop, batch_size, shard_size, num_workers,
                                     dtype, progress))
        del teacher
    write_json(Path(out) / ROOT_INDEX, {"format": FORMAT, "teachers": entries,
                                        "manifests": [str(Path(m).absolute()) for m in manifests],
                                        "n_audio": len(records), "n_text": len(texts)})
    return entries
