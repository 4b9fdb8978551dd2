"""``lasr demo-chain``: the whole retrieval recipe on the demo corpus (library: :mod:`lasr.demo_chain`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from lasr.cli.config_overlays import config_file
from lasr.demo_chain import DEFAULT_STAGE1, run_chain


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", default="demo_data",
                        help="demo corpus (made with `lasr data demo --out DIR --seed 0` when DIR has none)")
    parser.add_argument("--out", default="outputs/demo", help="where every stage writes")
    parser.add_argument("--stage1", default=str(DEFAULT_STAGE1), help="existing stage-1 demo checkpoint to start from")
    parser.add_argument("--stage1-config", type=config_file,
                        help="config of --stage1 (default: the shipped demo/stage1_demo.yaml; '-': the one stored "
                             "in the checkpoint)")
    parser.add_argument("--train-stage1", action="store_true", help="train stage 1 even if --stage1 exists")
    parser.add_argument("--override", help="YAML deep-merged into every stage config (tests: tiny models)")
    parser.add_argument("--min-topic-size", type=int, default=10, help="HDBSCAN min_cluster_size for the demo")


def run(args: argparse.Namespace) -> int:
    existing = Path(args.stage1) if Path(args.stage1).is_file() and not args.train_stage1 else None
    override = yaml.safe_load(Path(args.override).read_text(encoding="utf-8")) if args.override else None
    run_chain(Path(args.demo), Path(args.out), existing, override, args.min_topic_size, args.stage1_config)
    return 0
