"""``lasr embed``: embed every clip of a folder or manifest into a resumable index for ``lasr search``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lasr.cli.config_overlays import config_file
from lasr.data.checks import non_negative_int, positive_float, positive_int
from lasr.search.clips import DEFAULT_MAX_SECONDS, list_collection
from lasr.search.ann import KINDS as FAISS_KINDS
from lasr.search.embed import DEFAULT_BATCH_SIZE, DEFAULT_SHARD_SIZE, build_index
from lasr.search.index import EmbeddingIndex

MAX_LISTED_FAILURES = 20  # the summary names this many unreadable files, then a count
INTERRUPTED_EXIT_CODE = 130  # shell convention for SIGINT


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--ckpt", type=Path, required=required, help="RetrievalTask checkpoint (.ckpt)")
    parser.add_argument("--config", type=config_file,
                        help="training config YAML (default: the run's config.yaml, found automatically)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--audio", type=Path, required=True, help="folder of audio files, or a manifest (.jsonl[.gz])")
    parser.add_argument("--out", type=Path, required=True, help="index folder (created, or resumed)")
    parser.add_argument("--max-seconds", type=positive_float, default=DEFAULT_MAX_SECONDS,
                        help="seconds embedded per clip, from its start (default %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, help="default %(default)s")
    parser.add_argument("--shard-size", type=positive_int, default=DEFAULT_SHARD_SIZE,
                        help="clips per shard file (default %(default)s)")
    parser.add_argument("--workers", type=non_negative_int, default=0, help="audio loading processes (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="delete an existing index at --out first")
    parser.add_argument("--faiss", nargs="+", choices=FAISS_KINDS, default=[],
                        help="also build faiss indexes once the shards are complete: flat (exact), hnsw, ivfpq "
                             "(approximate; `lasr search --engine KIND`)")


def run(args: argparse.Namespace) -> int:
    from lasr.models.checkpoints import load_retrieval_model

    EmbeddingIndex.check_target(args.out, args.overwrite)
    refs = list_collection(args.audio)
    model = load_retrieval_model(args.ckpt, args.config)
    try:
        index = build_index(model, refs, args.out, checkpoint=args.ckpt, source=args.audio,
                            max_seconds=args.max_seconds, batch_size=args.batch_size, shard_size=args.shard_size,
                            workers=args.workers, overwrite=args.overwrite)
    except KeyboardInterrupt:
        print(f"interrupted: finished shards are kept in {args.out}; run the same command again to resume",
              file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    shards = list(index.shards())
    embedded = sum(len(s.ids) for s in shards)
    failed = [f for s in shards for f in s.failed]
    print(f"index {args.out}: {embedded} of {len(refs)} clips embedded ({index.meta['embed_dim']}-d), "
          f"{len(shards)} shard(s), model weights {index.meta['model_fingerprint']}")
    if failed:
        print(f"skipped {len(failed)} unreadable clip(s):")
        for _, _, reason in failed[:MAX_LISTED_FAILURES]:
            print(f"  {reason}")  # the reason names the file
        if len(failed) > MAX_LISTED_FAILURES:
            print(f"  ... and {len(failed) - MAX_LISTED_FAILURES} more")
    if args.faiss:
        from lasr.search.ann import FaissSpec, build_faiss

        for kind in args.faiss:
            print(f"faiss {kind} index: {build_faiss(index, FaissSpec(kind=kind))}")
    return 0
