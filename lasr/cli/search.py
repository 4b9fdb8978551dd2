"""``lasr search``: rank the clips of an index built by ``lasr embed`` for text or example-audio queries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lasr.errors import DataError
from lasr.cli.embed import add_model_arguments
from lasr.search.index import EmbeddingIndex
from lasr.search.search import Query, encode_queries, hits_to_json, read_queries, search_index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, required=True, help="index folder written by `lasr embed`")
    add_model_arguments(parser, required=False)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", help="text query")
    group.add_argument("--audio", help="example audio file (query by example)")
    group.add_argument("--queries", type=Path,
                       help='batch of queries: one text per line, or .jsonl with {"text": ...} / {"audio": ...}')
    parser.add_argument("--k", type=int, default=10, help="results per query (default %(default)s)")
    parser.add_argument("--chunk-rows", type=int,
                        help="index rows scored at once (bounds memory; default: 256 MiB of embeddings)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _queries(args: argparse.Namespace) -> list[Query]:
    if args.queries is not None:
        return read_queries(args.queries)
    if args.audio is not None:
        if not Path(args.audio).is_file():
            raise DataError("query audio file not found", args.audio)
        return [Query(audio=args.audio)]
    return [Query(text=args.text)]


def run(args: argparse.Namespace) -> int:
    from lasr.models.checkpoints import load_retrieval_model, model_fingerprint

    index = EmbeddingIndex.open(args.index)
    queries = _queries(args)
    ckpt = args.ckpt or Path(index.meta["checkpoint"])
    model = load_retrieval_model(ckpt, args.config)
    index.check_model(model_fingerprint(model), model.embed_dim, str(ckpt))
    if not index.complete:
        print(f"warning: {args.index} is incomplete ({len(index.done_shards())} of {index.n_shards} shards); "
              "rerun `lasr embed` to finish it", file=sys.stderr)
    hits = search_index(index, encode_queries(model, queries, index.meta["max_seconds"]), args.k, args.chunk_rows)
    if args.json:
        print(hits_to_json(queries, hits))
        return 0
    for query, results in zip(queries, hits):
        print(f"query: {query}")
        for hit in results:
            print(f"  {hit.rank:>3}  {hit.score:+.4f}  {hit.id}  {hit.path}")
    return 0
