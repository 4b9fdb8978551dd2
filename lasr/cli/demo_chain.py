"""``lasr demo-chain``: the whole retrieval recipe on the demo corpus (library: :mod:`lasr.demo_chain`)."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from lasr.demo_chain import CONFIGS, DEFAULT_STAGE1, run_chain
from lasr.errors import LasrError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", default="demo_data", help="demo corpus (lasr data demo --out DIR)")
    parser.add_argument("--out", default="outputs/demo", help="where every stage writes")
    parser.add_argument("--stage1", default=str(DEFAULT_STAGE1), help="existing stage-1 demo checkpoint to start from")
    parser.add_argument("--stage1-config", default=str(CONFIGS / "stage1_demo.yaml"),
                        help="config of --stage1 ('-': the one stored in the checkpoint)")
    parser.add_argument("--train-stage1", action="store_true", help="train stage 1 even if --stage1 exists")
    parser.add_argument("--override", help="YAML deep-merged into every stage config (tests: tiny models)")
    parser.add_argument("--min-topic-size", type=int, default=10, help="HDBSCAN min_cluster_size for the demo")


def run(args: argparse.Namespace) -> int:
    demo = Path(args.demo)
    if not (demo / "manifests" / "clotho_development.jsonl.gz").is_file():
        raise LasrError(f"no demo corpus in {demo}: run `lasr data demo --out {demo} --seed 0` first")
    existing = Path(args.stage1) if Path(args.stage1).is_file() and not args.train_stage1 else None
    override = yaml.safe_load(Path(args.override).read_text(encoding="utf-8")) if args.override else None
    run_chain(demo, Path(args.out), existing, override, args.min_topic_size, args.stage1_config)
    return 0
