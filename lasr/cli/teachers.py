"""``lasr teachers``: embed training clips and captions with stage-1 teachers (SALSA stage 2); library:
:mod:`lasr.distill.teachers`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from lasr.cli.config_overlays import config_file
from lasr.data.checks import check_output_dir, non_negative_int, positive_float, positive_int
from lasr.data.teacher_store import ROOT_INDEX
from lasr.distill.teachers import embed_teachers, load_policy


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", nargs="+", required=True, help="teacher checkpoints (stage-1 retrieval runs)")
    parser.add_argument("--data", nargs="+", required=True, help="training manifests (.jsonl[.gz])")
    parser.add_argument("--out", required=True, help="output folder (re-run with the same arguments to resume)")
    parser.add_argument("--config", nargs="+", type=config_file, help="LightningCLI config(s) of the teachers, one for all or one "
                        "per checkpoint, '-' = the one stored in that checkpoint (default: stored configs)")
    parser.add_argument("--captions", help="JSONL table of extra caption strings per clip key (augmentations)")
    parser.add_argument("--caption-policy", help="the student's caption policy class (package.module.Class); "
                        "its variants(record) or variants(record, slot) lists the augmented captions it serves")
    parser.add_argument("--caption-policy-args", help="JSON keyword arguments of the policy, e.g. "
                        "'{\"table\": \"aug/captions.jsonl\"}' for lasr.data.captions.AugmentedCaptionPolicy")
    parser.add_argument("--seconds", type=positive_float,
                        help="audio crop in s (default: the teacher's eval_seconds, else 30)")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument("--shard-size", type=positive_int, default=2048,
                        help="items per shard file (unit of resumption)")
    parser.add_argument("--num-workers", type=non_negative_int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32", help="stored precision")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)
    entries = embed_teachers(
        args.ckpt, args.data, args.out, args.config, load_policy(args.caption_policy, args.caption_policy_args),
        args.captions, args.seconds, args.batch_size, args.shard_size, args.num_workers, args.device,
        getattr(torch, args.dtype), not args.no_progress)
    for entry in entries:
        print(f"{entry['name']}: {entry['embed_dim']}-d at {entry['sample_rate']} Hz, {entry['seconds']} s crop, "
              f"{entry['elapsed_s']:.1f} s ({entry['resumed_items']} items resumed)")
    print(f"wrote {Path(args.out) / ROOT_INDEX}")
    return 0
