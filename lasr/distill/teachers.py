"""``lasr teachers``: stage-1 models embed every training clip and every caption the student can see (SALSA).

Each teacher (a retrieval checkpoint, rebuilt from the config stored in it or given with ``--config``) runs in
eval mode over the training manifests and writes its embeddings, keyed by clip key (``dataset/id``) and by
caption string, as resumable shards (see :mod:`lasr.distill.store`).  Teachers may use different audio encoders
and sample rates: each reads the audio at its own rate.

Captions the student can see = each clip's captions, plus the variants of an augmentation hook:
the caption policy's ``variants(record)`` or ``variants(record, slot)`` when it has that method (e.g.
``lasr.data.captions.AugmentedCaptionPolicy``), and/or a captions table (JSONL lines
``{"key": "dataset/id", "captions": [...]}``).  The distillation task checks the same set before training.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from tqdm import tqdm

from lasr.data.manifest import ClipRecord, read_manifest
from lasr.distill.embed import DEFAULT_SECONDS, embed_texts, iter_clip_embeddings, resolve_device
from lasr.distill.members import require_distinct
from lasr.distill.store import (
    FORMAT, INDEX, ROOT_INDEX, Shard, checkpoint_identity, plan_shards, remove_stale_shards, teacher_dir_name,
    write_json, write_shard,
)
from lasr.errors import DataError, LasrError
from lasr.tasks.run_config import LoadedModel, configs_per_checkpoint, load_dual_encoder

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


def _flatten(found: Any) -> list[str]:
    """Variant texts from a list of strings, a string, or a ``kind -> [texts]`` dict."""
    if isinstance(found, str):
        return [found]
    if isinstance(found, dict):
        return [text for texts in found.values() for text in texts]
    return list(found or ())


def policy_variants(policy: Any, record: ClipRecord) -> list[str]:
    """Augmented captions a policy can serve for ``record``: ``policy.variants(record)``, or per caption slot
    ``policy.variants(record, slot)`` (e.g. :class:`lasr.data.captions.AugmentedCaptionPolicy`); [] without one."""
    variants: Callable | None = getattr(policy, "variants", None)
    if variants is None:
        return []
    if len(inspect.signature(variants).parameters) >= 2:
        return [text for slot in range(len(record.captions)) for text in _flatten(variants(record, slot))]
    return _flatten(variants(record))


def student_caption_texts(records: Sequence[ClipRecord], policy: Any = None,
                          extra: dict[str, list[str]] | None = None) -> list[str]:
    """Unique caption strings (first-seen order): originals, the policy's variants, and ``extra[key]``."""
    texts: dict[str, None] = {}
    for record in records:
        texts.update(dict.fromkeys(record.captions))
        texts.update(dict.fromkeys(policy_variants(policy, record)))
        if extra:
            texts.update(dict.fromkeys(extra.get(record.key, ())))
    return list(texts)


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
                 batch_size: int, num_workers: int, bar: tqdm) -> torch.Tensor:
    parts = []
    if shard.kind == "audio":
        records = [by_key[key] for key in shard.items]
        for _, emb in iter_clip_embeddings(teacher.model, records, seconds, batch_size, num_workers):
            parts.append(emb)
            bar.update(emb.shape[0])
    else:
        for start in range(0, len(shard.items), batch_size):
            parts.append(embed_texts(teacher.model, shard.items[start:start + batch_size], batch_size))
            bar.update(parts[-1].shape[0])
    return torch.cat(parts)


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
    with tqdm(total=len(records) + len(texts), initial=done, desc=folder.name, unit="item",
              disable=not progress) as bar:
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
    require_distinct(checkpoints, "teachers")
    records = read_training_records(manifests)
    extra = load_caption_table(captions_table) if captions_table else None
    texts = student_caption_texts(records, policy, extra)
    entries = []
    for checkpoint, config in zip(checkpoints, configs_per_checkpoint(checkpoints, configs)):
        teacher = load_dual_encoder(checkpoint, config, resolve_device(device))
        crop = seconds or teacher.eval_seconds or DEFAULT_SECONDS
        entries.append(embed_teacher(teacher, records, texts, out, crop, batch_size, shard_size, num_workers,
                                     dtype, progress))
        del teacher
    write_json(Path(out) / ROOT_INDEX, {"format": FORMAT, "teachers": entries, "manifests": [str(m) for m in manifests],
                                        "n_audio": len(records), "n_text": len(texts)})
    return entries


# ---- CLI -------------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", nargs="+", required=True, help="teacher checkpoints (stage-1 retrieval runs)")
    parser.add_argument("--data", nargs="+", required=True, help="training manifests (.jsonl[.gz])")
    parser.add_argument("--out", required=True, help="output folder (re-run with the same arguments to resume)")
    parser.add_argument("--config", nargs="+", help="LightningCLI config(s) of the teachers, one for all or one "
                        "per checkpoint, '-' = the one stored in that checkpoint (default: stored configs)")
    parser.add_argument("--captions", help="JSONL table of extra caption strings per clip key (augmentations)")
    parser.add_argument("--caption-policy", help="the student's caption policy class (package.module.Class); "
                        "its variants(record) or variants(record, slot) lists the augmented captions it serves")
    parser.add_argument("--caption-policy-args", help="JSON keyword arguments of the policy, e.g. "
                        "'{\"table\": \"aug/captions.jsonl\"}' for lasr.data.captions.AugmentedCaptionPolicy")
    parser.add_argument("--seconds", type=float, help="audio crop in s (default: the teacher's eval_seconds, else 30)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--shard-size", type=int, default=2048, help="items per shard file (unit of resumption)")
    parser.add_argument("--num-workers", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="stored precision")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    entries = embed_teachers(
        args.ckpt, args.data, args.out, args.config, load_policy(args.caption_policy, args.caption_policy_args),
        args.captions, args.seconds, args.batch_size, args.shard_size, args.num_workers, args.device,
        getattr(torch, args.dtype), not args.no_progress)
    for entry in entries:
        print(f"{entry['name']}: {entry['embed_dim']}-d at {entry['sample_rate']} Hz, {entry['seconds']} s crop, "
              f"{entry['elapsed_s']:.1f} s ({entry['resumed_items']} items resumed)")
    print(f"wrote {Path(args.out) / ROOT_INDEX}")
    return 0
