"""``lasr cluster``: BERTopic topics of the training captions (stage-3 labels); library: :mod:`lasr.distill.clusters`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lasr.cli.config_overlays import config_file
from lasr.data.checks import check_output_dir
from lasr.data.cluster_tables import CAPTION_TABLE, CLIP_TABLE, SUMMARY, TOPICS
from lasr.distill.clusters import ClusterConfig, cluster_captions, format_summary
from lasr.distill.teachers import read_training_records


_CLI_KEYS = ("embedding_model", "n_neighbors", "n_components", "min_dist", "random_state", "min_topic_size",
             "min_samples", "outliers", "reduce_threshold", "max_outlier_share")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="training manifests (.jsonl[.gz])")
    parser.add_argument("--out", required=True, help="output folder for the tables")
    parser.add_argument("--config", type=config_file,
                        help="YAML of ClusterConfig keys (e.g. the shipped clusters.yaml); flags override")
    defaults = ClusterConfig()
    for key in _CLI_KEYS:
        kind = type(getattr(defaults, key)) if getattr(defaults, key) is not None else int
        choices = ("ignore", "reduce") if key == "outliers" else None
        parser.add_argument(f"--{key.replace('_', '-')}", type=kind, default=None, choices=choices,
                            help=f"default {getattr(defaults, key)!r}")


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)
    overrides = {key: getattr(args, key) for key in _CLI_KEYS}
    if args.config:
        config = ClusterConfig.from_yaml(args.config, **overrides)
    else:
        config = ClusterConfig(**{k: v for k, v in overrides.items() if v is not None})
    records = read_training_records(args.data)
    summary = cluster_captions(records, args.out, config, sources=args.data)
    keywords = json.loads((Path(args.out) / TOPICS).read_text(encoding="utf-8"))
    print(format_summary(summary, keywords))
    print(f"wrote {args.out}/{{{CAPTION_TABLE},{CLIP_TABLE},{TOPICS},{SUMMARY}}} in {summary['elapsed_s']} s")
    return 0
