"""``lasr search``: rank the clips of an index built by ``lasr embed`` for text or example-audio queries."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lasr.cli.embed import add_model_arguments
from lasr.data.checks import positive_int, text
from lasr.errors import DataError
from lasr.search.ann import KINDS as FAISS_KINDS
from lasr.search.ann import SearchParams
from lasr.search.index import EmbeddingIndex
from lasr.search.search import Query, encode_queries, hits_to_json, read_queries, search_faiss_index, search_index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, required=True, help="index folder written by `lasr embed`")
    add_model_arguments(parser, required=False)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", type=text, help="text query")
    group.add_argument("--audio", help="example audio file (query by example)")
    group.add_argument("--queries", type=Path,
                       help='batch of queries: one text per line, or .jsonl with {"text": ...} / {"audio": ...}')
    parser.add_argument("--k", type=positive_int, default=10, help="results per query (default %(default)s)")
    parser.add_argument("--chunk-rows", type=positive_int,
                        help="index rows scored at once (bounds memory; default: 256 MiB of embeddings)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--engine", default="exact", choices=("exact", *FAISS_KINDS),
                        help="exact chunked search over the shards (default), or a faiss index built by "
                             "`lasr embed --faiss KIND`")
    defaults = SearchParams()
    parser.add_argument("--ef-search", type=positive_int, default=defaults.ef_search, help="HNSW (default %(default)s)")
    parser.add_argument("--nprobe", type=positive_int, default=defaults.nprobe, help="IVF cells probed (default %(default)s)")
    parser.add_argument("--rerank", type=positive_int, default=defaults.rerank,
                        help="approximate candidates re-scored exactly per result (default %(default)s)")


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
    ckpt = args.ckpt or index.checkpoint_path()
    model = load_retrieval_model(ckpt, args.config)
    index.check_model(model_fingerprint(model), model.embed_dim, str(ckpt))
    if not index.complete:
        print(f"warning: {args.index} is incomplete ({len(index.done_shards())} of {index.n_shards} shards); "
              "rerun `lasr embed` to finish it", file=sys.stderr)
    encoded = encode_queries(model, queries, index.meta["max_seconds"])
    if args.engine == "exact":
        hits = search_index(index, encoded, args.k, args.chunk_rows)
    else:
        params = SearchParams(ef_search=args.ef_search, nprobe=args.nprobe, rerank=args.rerank)
        hits = search_faiss_index(index, encoded, args.k, args.engine, params)
    if args.json:
        print(hits_to_json(queries, hits))
        return 0
    for query, results in zip(queries, hits):
        print(f"query: {query}")
        for hit in results:
            print(f"  {hit.rank:>3}  {hit.score:+.4f}  {hit.id}  {hit.path}")
    return 0
