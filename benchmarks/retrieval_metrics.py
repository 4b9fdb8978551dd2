"""Wall time and peak memory of ``lasr.metrics.retrieval_metrics`` on synthetic embeddings.

Cases: the Clotho evaluation size (5,225 captions x 1,045 clips, synthetic relevance of ~3 clips for 1,037
queries), 25,000 x 5,000 and 100,000 x 20,000.  Each case runs in a fresh subprocess so its memory figure is
not masked by an earlier case.  Beside each time stands the time of ONE bare pass of caption x clip
similarities in the same blocks (the matrix products alone) and the ratio of the two: all metrics come from
one pass, so the goal is a ratio <= 1.2.

Memory is measured with ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak resident set size): the figure
reported is the peak RSS during the call minus the RSS just before it (read from /proc/self/statm), i.e. the
extra memory the metric needed on top of its inputs.  tracemalloc is not used: it does not see torch's
allocations.  Inputs are generated block by block so the peak before the call stays close to the RSS
before it; if the call does not raise the process peak, the figure is flagged as an upper bound.

    .venv/bin/python benchmarks/retrieval_metrics.py [--dim 1024] [--chunk-size 1024] [--skip-large]
        [--only clotho medium large] [--repeats 3]

The bare pass is ``_score_blocks``, the very chunked product the metrics use.  Measured 2026-12-01 on the
project's 2-core machine under heavy load from other jobs (1-min load average 10-15), so read the ratios as
what a loaded machine gives:

* ``--only large --repeats 1``: 100,000 x 20,000: metrics 541.8 s, pass 472.5 / 503.1 s -> ratio 1.15
  (min/min), 1.11 (median/median), load 11.8 -> 15.0;
* ``--only medium --repeats 3``: 25,000 x 5,000 before the own-clip pairs reuse the t2a ranks: metrics
  26.7 / 30.2 / 36.1 s, pass 21.4-22.9 s -> ratio 1.25 (min/min), 1.33 (median/median), load 9.7 -> 10.3;
  after it (same command, the shards benchmark running beside it): metrics 19.3 / 22.5 / 15.2 s, passes
  18.2 / 19.7 / 10.5 / 10.2 s -> 1.49 (min/min), 1.34 (median/median), load 9.8 -> 9.4.  The last pair (15.2 s
  between passes of 10.5 and 10.2 s, when the load dropped) says the slice work, on one thread, does not speed
  up when the product gets both cores back: the goal is not shown met at this size.  At a lighter moment
  (load 4.7 -> 5.1, 15:45): metrics 8.27 / 8.06 / 9.80 s, passes 6.55 / 6.22 / 7.03 / 7.42 s -> 1.30 (min/min),
  1.22 (median/median); about 1.8 s over the pass at this size.
* quiet rerun (session 3, 16:19, load 1.8 -> 2.3, nothing else running): ``--only medium --repeats 3``:
  metrics 5.37 / 5.84 / 5.41 s, passes 4.05 / 3.96 / 4.64 / 3.44 s -> 1.56 (min/min), 1.35 (median/median).
  The goal is not met at 25,000 x 5,000: about 1.4 s of comparison work over the pass.
* quiet rerun (session 4, 18:50, load 1.0 -> 1.5, nothing else running): ``--only medium --repeats 7``: metrics
  2.78-2.94 s (median 2.87), passes 2.13-2.34 s (median 2.26) -> **1.27 (median/median), 1.30 (min/min)**;
  earlier the same hour, with three interleaved repeats, 1.15 and 1.26 (median): pass times alone vary by 25 %.
  The extra 0.6 s: the slice comparisons 0.42-0.50 s on one thread (timed alone on stored blocks: t2a 0.17,
  a2t 0.21, pairs 0.11), the own-score pre-pass 0.07 s, the rest < 0.05 s.  Tried and dropped (no gain): the
  slices of a block shared between 2 Python threads (0.38 -> 0.33 s alone, 1.46 in the full call: the products
  lose the core), and ranks capped at the largest k (tie comparisons only for rows that can still score:
  0.46 -> 0.50 s; most rows of this data rank below 16).
* session 5 (21:20, load 1.0 -> 1.7, nothing else running), after text->audio and audio->text went to one
  comparison and one count per score, 4 MiB slices, all threads for the slice work: ``--only clotho medium
  --repeats 9``: 25,000 x 5,000: metrics 2.85-4.59 s (median 3.63), passes 2.39-3.93 s (median 3.30) -> **1.10
  (median/median), 1.19 (min/min)**; ``--only large --repeats 2``: metrics 49.28 / 49.46 s, passes 47.06 / 48.73
  / 44.98 s -> **1.05 (median/median), 1.10 (min/min)**.  The pass varied by 60 % that evening, so the time over
  the pass, timed inside the call, is the steadier figure: 0.40-0.51 s at 25,000 x 5,000 (0.6 s before), of
  which the own-score pre-pass ~0.09 s.  Interleaved with the session-4 code in one process (10 repeats, each
  call between two passes): ratio median 1.20 / 1.30 (new / old).  Tried and dropped: skipping multi-relevance
  pairs that provably rank >= 16 (no gain: the check costs what it saves), own scores from windows of
  consecutive clips instead of gathered clips (no gain).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import torch

from lasr.metrics import DEFAULT_CHUNK_SIZE, retrieval_metrics
from lasr.metrics.retrieval import _score_blocks

CLOTHO_EVAL = {"captions": 5225, "clips": 1045, "queries": 1037}
MEDIUM = {"captions": 25_000, "clips": 5_000, "queries": 5_000}
LARGE = {"captions": 100_000, "clips": 20_000, "queries": 20_000}
GENERATION_BLOCK = 4096


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _synthetic_eval(captions: int, clips: int, queries: int, dim: int, seed: int, noise: float):
    """L2-normalised float32 clips, captions = their clip plus noise of norm ~``noise``, ~3 relevant clips per query."""
    generator = torch.Generator().manual_seed(seed)
    audio = torch.empty(clips, dim)
    for start in range(0, clips, GENERATION_BLOCK):
        block = audio[start : start + GENERATION_BLOCK]
        block.copy_(torch.nn.functional.normalize(torch.randn(block.shape, generator=generator), dim=1))
    owner = torch.arange(captions) % clips
    text = torch.empty(captions, dim)
    for start in range(0, captions, GENERATION_BLOCK):
        block = text[start : start + GENERATION_BLOCK]
        noise_block = noise / dim**0.5 * torch.randn(block.shape, generator=generator)
        noisy = audio[owner[start : start + GENERATION_BLOCK]] + noise_block
        block.copy_(torch.nn.functional.normalize(noisy, dim=1))
    query_rows = torch.randperm(captions, generator=generator)[:queries].tolist()
    extra = torch.randint(0, 5, (queries,), generator=generator).tolist()  # 0..4 extra clips: mean 3 in all
    relevant = [
        [int(owner[row])] + torch.randint(0, clips, (count,), generator=generator).tolist()
        for row, count in zip(query_rows, extra)
    ]
    return audio, text, owner, query_rows, relevant


def _similarity_pass_seconds(text: torch.Tensor, audio: torch.Tensor, chunk_size: int) -> float:
    """One bare pass over the (chunk_size, N) similarity blocks: the floor of any blocked evaluation."""
    start = time.perf_counter()
    for _ in _score_blocks(text, audio, chunk_size):
        pass
    return time.perf_counter() - start


def run_case(captions: int, clips: int, queries: int, dim: int, chunk_size: int, seed: int, noise: float,
             repeats: int = 1) -> dict:
    """Time ``repeats`` ``retrieval_metrics`` calls in this process, each between two bare similarity passes
    (pass, metrics, pass, metrics, ..., pass), so both see the same machine load; returns the figures."""
    audio, text, owner, query_rows, relevant = _synthetic_eval(captions, clips, queries, dim, seed, noise)
    load_before = os.getloadavg()[0]
    passes = [_similarity_pass_seconds(text, audio, chunk_size)]
    rss_before, peak_before = _rss_bytes(), _peak_rss_bytes()
    calls = []
    for _ in range(repeats):
        start = time.perf_counter()
        metrics = retrieval_metrics(audio, text, owner, relevant=relevant, query_rows=query_rows,
                                    chunk_size=chunk_size)
        calls.append(time.perf_counter() - start)
        if len(calls) == 1:
            peak_after = _peak_rss_bytes()
        passes.append(_similarity_pass_seconds(text, audio, chunk_size))
    return {
        "captions": captions,
        "clips": clips,
        "queries": queries,
        "pairs": sum(len(group) for group in relevant),
        "dim": dim,
        "chunk_size": chunk_size,
        "threads": torch.get_num_threads(),
        "seconds": calls,
        "pass_seconds": passes,
        "load": [load_before, os.getloadavg()[0]],
        "input_mib": (audio.nbytes + text.nbytes) / 2**20,
        "rss_before_mib": rss_before / 2**20,
        "extra_peak_mib": (peak_after - rss_before) / 2**20,
        # if the call did not raise the process peak, the figure is the earlier peak: an upper bound
        "exact": peak_after > peak_before,
        "metrics": metrics,
    }


def _run_in_subprocess(size: dict, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--case", str(size["captions"]), str(size["clips"]), str(size["queries"]),
               "--dim", str(args.dim), "--chunk-size", str(args.chunk_size), "--seed", str(args.seed),
               "--noise", str(args.noise), "--repeats", str(args.repeats)]  # fmt: skip
    completed = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _report(result: dict) -> None:
    print(
        f"{result['captions']:>7,} captions x {result['clips']:>6,} clips (D={result['dim']}, "
        f"{result['queries']:,} multi-relevance queries / {result['pairs']:,} pairs, chunk {result['chunk_size']}, "
        f"{result['threads']} threads): inputs {result['input_mib']:.0f} MiB, "
        f"peak RSS +{result['extra_peak_mib']:.0f} MiB over {result['rss_before_mib']:.0f} MiB before the call"
        + ("" if result["exact"] else " (the call stayed below an earlier peak: figure is an upper bound)")
    )
    calls, passes = result["seconds"], result["pass_seconds"]
    print(f"    metrics    {len(calls)} x: min {min(calls):.2f} s, median {statistics.median(calls):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in calls)})")
    print(f"    one similarity pass {len(passes)} x: min {min(passes):.2f} s, median {statistics.median(passes):.2f} s "
          f"({', '.join(f'{t:.2f}' for t in passes)})")
    print(f"    ratio metrics / one pass: {min(calls) / min(passes):.2f} (min/min), "
          f"{statistics.median(calls) / statistics.median(passes):.2f} (median/median); goal <= 1.2; "
          f"1-min load average {result['load'][0]:.1f} before, {result['load'][1]:.1f} after")
    print("    " + ", ".join(f"{key} {value:.4f}" for key, value in result["metrics"].items()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dim", type=int, default=1024, help="embedding size D (default 1024, the shared space)")
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE, help="rows per score block")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=float, default=11.0, help="caption noise norm (11: R@1 ~ 0.2 at 1,045 clips)")
    parser.add_argument("--skip-large", action="store_true", help="only the Clotho-sized and 25,000 x 5,000 cases")
    parser.add_argument("--only", choices=("clotho", "medium", "large"), nargs="+", help="run only these cases")
    parser.add_argument("--repeats", type=int, default=3, help="metric calls per case, each between two bare passes")
    parser.add_argument("--case", type=int, nargs=3, metavar=("CAPTIONS", "CLIPS", "QUERIES"),
                        help="internal: run one case here and print JSON")  # fmt: skip
    args = parser.parse_args(argv)
    if args.case:
        captions, clips, queries = args.case
        print(json.dumps(run_case(captions, clips, queries, args.dim, args.chunk_size, args.seed, args.noise,
                                  args.repeats)))
        return
    print("memory: ru_maxrss peak during the first call minus RSS just before it (extra memory on top of the inputs)")
    cases = {"clotho": CLOTHO_EVAL, "medium": MEDIUM, "large": LARGE}
    names = args.only or [name for name in cases if not (args.skip_large and name == "large")]
    for name in names:
        _report(_run_in_subprocess(cases[name], args))


if __name__ == "__main__":
    main()
