"""``lasr ensemble``: evaluate checkpoints and their ensemble, write the DCASE submission files; library:
:mod:`lasr.distill.ensemble`.
"""

from __future__ import annotations

import argparse

from lasr.cli.config_overlays import config_file
from lasr.data.checks import check_output_dir, positive_float, positive_int
from lasr.distill.ensemble import format_table, run_ensemble


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", nargs="+", required=True, help="checkpoints to evaluate and average")
    parser.add_argument("--data", nargs="+", required=True, help="evaluation manifests (.jsonl[.gz])")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--config", nargs="+", type=config_file, help="configs for checkpoints that do not carry theirs "
                        "(one for all, or one per checkpoint with '-' = stored config)")
    parser.add_argument("--relevance", help="DCASE 2025 relevance CSV (query,audio_filenames): multi-positive "
                        "mAP@k, and its queries are the submission rows")
    parser.add_argument("--queries", help="CSV of query captions (column query or caption) for the submission "
                        "when there is no relevance file (default: the manifests' captions)")
    parser.add_argument("--weights", nargs="+", type=float, help="member weights (default: equal)")
    parser.add_argument("--top-k", type=positive_int, default=16, help="files per query in topk.csv (DCASE ranks mAP@16)")
    parser.add_argument("--seconds", type=positive_float, help="audio crop in s (default: each model's eval_seconds, else 30)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)
    result = run_ensemble(args.ckpt, args.data, args.out, args.config, args.relevance, args.queries, args.weights,
                          args.top_k, args.seconds, args.batch_size, args.device)
    if any(result["metrics"].values()):
        print(format_table(result["metrics"], title=f"== {result['n_audio']} clips =="))
    print(f"wrote {args.out}/metrics.json, submission.csv ({result['n_queries']} queries x {result['n_audio']} "
          f"files), topk.csv")
    return 0
