"""Search latency over 1M random clip embeddings on CPU: exact chunked top-k (what `lasr search` runs).

Measures (a) in-memory chunked search for a single query and a batch of queries at several chunk sizes, and
(b) with ``--on-disk``, the same search through an on-disk index of memory-mapped shards (as `lasr embed` writes;
the first pass reads from disk, the later ones from the page cache), and (c) with ``--faiss``, faiss indexes
(exact flat, HNSW, IVF-PQ; `lasr embed --faiss KIND`) over the same on-disk index: build time, latency per
query (one query at a time) and recall@10 against the exact search.  For (c) the collection is CLUSTERED
(unit vectors near ``--centres`` random centres), as real clip embeddings are; on uniformly random vectors
every neighbour is nearly equidistant and no approximate index is meaningful.

    .venv/bin/python benchmarks/search_latency.py [--clips 1000000] [--dim 1024] [--k 10] [--on-disk] [--faiss]
        [--faiss-only] [--faiss-kinds flat ivfpq] [--probes 16 64] [--rerank 4 32]

Measured 2026-12-01 on the 2-core machine under heavy load (1-min load average 10-14):
``--faiss-only --faiss-kinds flat ivfpq --probes 16 64 --rerank 4 32 --faiss-queries 100`` at 1,000,000 x 1024:
flat build 144.7 s, 4,862 ms/query median (min 3,434), recall@10 1.000 (one query reads all 4 GiB: memory-bound,
0.52 s/query for the exact torch search on a quiet machine).  The IVF-PQ build (nlist 1,000, pq_m 64, 40,000
training rows) did not finish within 40 min wall (the process got ~15 % of a core) and was stopped; at 20,000 x 64
(``--clips 20000 --dim 64 --centres 200 --faiss-queries 20``) IVF-PQ answered in 0.41 ms/query with recall@10
0.41 (pq_m 4: 4 bytes per vector, too coarse; raise ``--rerank`` or pq_m for recall).  HNSW at 1M x 1024 is too
slow to build on 2 cores.

Those recall figures are void: until session 3 the queries were drawn near OTHER centres than the collection
(the centres came from the noise seed), i.e. far from every cluster, where approximate search is meaningless.
Rerun with shared centres, session 3 (16:25-16:30, load ~2, nothing else running), 1,000,000 x 256:
``--clips 1000000 --dim 256 --faiss-only --faiss-kinds flat hnsw ivfpq --probes 16 64 --rerank 4 32``:
flat build 7.1 s, 155.9 ms/query, recall@10 1.000; HNSW (M 32) build 221.0 s, efSearch 64 + rerank 32:
2.92 ms/query, recall@10 0.920 (rerank 4: 0.94 ms, 0.819); IVF-PQ build 28.5 s, nprobe 64 + rerank 32:
1.97 ms/query, recall@10 0.997 (nprobe 16 + rerank 32: 1.41 ms, 0.986; rerank 4: 0.76 ms, 0.528).
At 1,000,000 x 1024 (``--dim 1024 --faiss-kinds ivfpq``, load ~2): IVF-PQ build 128.8 s, nprobe 64 + rerank 32:
7.15 ms/query, recall@10 0.997 (nprobe 16 + rerank 32: 3.83 ms, 0.979).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from lasr.search.index import EmbeddingIndex
from lasr.search.search import search_index
from lasr.search.topk import chunked_topk, split_rows

GENERATE_ROWS = 100_000  # random rows made at once, so the collection is never held twice
CENTRE_SEED = 1_000_003  # apart from the noise seeds (0: collection, 1: queries)


def random_collection(clips: int, dim: int, seed: int = 0, centres: int = 0, spread: float = 0.5,
                      centre_seed: int = CENTRE_SEED) -> torch.Tensor:
    """(clips, dim) float32 unit vectors: uniform on the sphere, or near ``centres`` random centres.

    The centres come from ``centre_seed`` alone, so collections of other ``seed`` (queries) share them."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(clips, dim)
    centre_gen = torch.Generator().manual_seed(centre_seed)
    centre_vectors = F.normalize(torch.randn(centres, dim, generator=centre_gen), dim=1) if centres else None
    for start in range(0, clips, GENERATE_ROWS):
        block = out[start:start + GENERATE_ROWS]
        noise = torch.randn(block.shape, generator=gen)
        if centre_vectors is not None:
            picked = centre_vectors[torch.randint(0, centres, (block.shape[0],), generator=gen)]
            noise = picked + spread * noise / dim**0.5
        block.copy_(F.normalize(noise, dim=1))
    return out


def write_index(collection: torch.Tensor, root: str, shard_size: int) -> EmbeddingIndex:
    """An on-disk index of ``collection``, laid out as `lasr embed` writes it."""
    meta = {"embed_dim": collection.shape[1], "checkpoint": "random", "model_fingerprint": "random",
            "sample_rate": 0, "max_seconds": 0.0, "source": "random", "collection_digest": "random",
            "count": collection.shape[0], "shard_size": shard_size}
    index = EmbeddingIndex.create_or_resume(root, meta)
    for number, begin in enumerate(range(0, collection.shape[0], shard_size)):
        rows = collection[begin:begin + shard_size].numpy()
        ids = [f"clip{i}" for i in range(begin, begin + rows.shape[0])]
        index.write_shard(number, rows, ids, ids, [])
    return index


def timed(fn, repeats: int) -> tuple[float, float]:
    """(median, min) seconds over ``repeats`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def bench_memory(collection: torch.Tensor, args: argparse.Namespace) -> None:
    gen = torch.Generator().manual_seed(1)
    for n_queries in args.queries:
        queries = F.normalize(torch.randn(n_queries, collection.shape[1], generator=gen), dim=1)
        expected = None
        for chunk_rows in args.chunk_rows:
            result = {}

            def run():
                result["rows"] = chunked_topk(queries, split_rows(collection, chunk_rows), args.k)[1]

            median, best = timed(run, args.repeats)
            if expected is None:
                expected = result["rows"]
            assert torch.equal(result["rows"], expected), "chunk size changed the result"
            print(f"in memory  queries {n_queries:>4}  chunk {chunk_rows:>9,}  median {1000 * median:8.1f} ms  "
                  f"min {1000 * best:8.1f} ms  ({1000 * median / n_queries:7.2f} ms/query)")


def bench_disk(collection: torch.Tensor, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        index = write_index(collection, tmp, args.shard_size)
        print(f"on disk    wrote {index.n_shards} shards in {time.perf_counter() - start:.1f} s")
        query = F.normalize(torch.randn(1, collection.shape[1]), dim=1)
        for chunk_rows in args.chunk_rows:
            median, best = timed(lambda: search_index(index, query, args.k, chunk_rows), args.repeats)
            print(f"on disk    queries    1  chunk {chunk_rows:>9,}  median {1000 * median:8.1f} ms  "
                  f"min {1000 * best:8.1f} ms  (page cache warm after the first pass)")


def bench_faiss(args: argparse.Namespace) -> None:
    from lasr.search.ann import FaissSearcher, FaissSpec, SearchParams, build_faiss

    collection = random_collection(args.clips, args.dim, seed=0, centres=args.centres)
    queries = random_collection(args.faiss_queries, args.dim, seed=1, centres=args.centres)  # same centres
    exact_rows = chunked_topk(queries, split_rows(collection), args.k)[1]
    print(f"faiss      {args.clips:,} clustered clips ({args.centres:,} centres) x {args.dim}, "
          f"{args.faiss_queries} queries one at a time, k={args.k}")
    with tempfile.TemporaryDirectory() as tmp:
        index = write_index(collection, tmp, args.shard_size)
        del collection
        for spec in (FaissSpec(kind=kind) for kind in args.faiss_kinds):
            start = time.perf_counter()
            build_faiss(index, spec)
            build_seconds = time.perf_counter() - start
            searcher = FaissSearcher(EmbeddingIndex.open(tmp), spec.kind)
            print(f"faiss      {spec.kind:<6} build {build_seconds:7.1f} s")
            settings = [SearchParams()] if spec.kind == "flat" else [
                SearchParams(ef_search=value, nprobe=value, rerank=rerank)
                for value in args.probes for rerank in args.rerank]
            for params in settings:
                rows, times = [], []
                for query in queries.split(1):
                    start = time.perf_counter()
                    rows.append(searcher.search(query, args.k, params)[1])
                    times.append(time.perf_counter() - start)
                found = torch.cat(rows)
                recall = sum(len(set(a) & set(b)) for a, b in zip(found.tolist(), exact_rows.tolist()))
                recall /= exact_rows.numel()
                knob = "" if spec.kind == "flat" else (f"efSearch {params.ef_search}" if spec.kind == "hnsw"
                                                        else f"nprobe {params.nprobe}") + f", rerank {params.rerank}"
                print(f"faiss      {spec.kind:<6} median {1000 * statistics.median(times):8.2f} ms/query  "
                      f"min {1000 * min(times):8.2f}  recall@{args.k} {recall:.3f}  {knob}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1024, help="embedding size (paper model: 1024)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--chunk-rows", type=int, nargs="+", default=[16_384, 65_536, 262_144])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--on-disk", action="store_true", help="also search an on-disk index of shards")
    parser.add_argument("--shard-size", type=int, default=65_536)
    parser.add_argument("--faiss", action="store_true", help="also build and query faiss flat / HNSW / IVF-PQ")
    parser.add_argument("--faiss-only", action="store_true", help="only the faiss part")
    parser.add_argument("--faiss-queries", type=int, default=100)
    parser.add_argument("--probes", type=int, nargs="+", default=[16, 64],
                        help="IVF nprobe / HNSW efSearch values to query with (approximate kinds)")
    parser.add_argument("--rerank", type=int, nargs="+", default=[4], help="candidates re-scored per result")
    parser.add_argument("--faiss-kinds", nargs="+", default=["flat", "hnsw", "ivfpq"],
                        choices=["flat", "hnsw", "ivfpq"], help="faiss indexes to build and query")
    parser.add_argument("--centres", type=int, default=10_000, help="clusters of the faiss collection")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.faiss_only:
        bench_faiss(args)
        return
    collection = random_collection(args.clips, args.dim)
    print(f"{args.clips:,} clips x {args.dim} float32 ({collection.numel() * 4 / 2**30:.2f} GiB), k={args.k}, "
          f"{args.threads} thread(s), torch {torch.__version__}, numpy {np.__version__}")
    bench_memory(collection, args)
    if args.on_disk:
        bench_disk(collection, args)
    if args.faiss:
        del collection
        bench_faiss(args)


if __name__ == "__main__":
    main()
