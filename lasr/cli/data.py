"""``lasr data``: prepare corpus manifests, build the demo corpus, inspect manifests.

Sub-commands only parse arguments and call the recipe functions in :mod:`lasr.data.recipes` (lhotse style).
Problems in the data raise :class:`~lasr.errors.DataError`, which ``lasr.cli`` prints and turns into exit code 2.
"""

from __future__ import annotations

import argparse
import statistics
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Sequence

from lasr.data.checks import check_output_dir, non_negative_float, non_negative_int, positive_int
from lasr.data.manifest import ClipRecord, read_manifest
from lasr.data.recipes import (
    PrepareReport,
    prepare_audiocaps,
    prepare_captioned_csv,
    prepare_clotho,
    prepare_esc50,
    prepare_wavcaps,
)
from lasr.data.recipes.common import DEFAULT_MIN_SECONDS, DEFAULT_PROBE_WORKERS
from lasr.data.recipes.fsd50k import SPLITS as FSD50K_SPLITS
from lasr.data.recipes.fsd50k import prepare_fsd50k
from lasr.data.recipes.urbansound8k import prepare_urbansound8k
from lasr.data.recipes.wavcaps import AUDIO_EXTENSION, WAVCAPS_SOURCES
from lasr.errors import LasrError

DEMO_MANIFESTS = "manifests"  # sub-folder of the demo output that receives the manifests
DEMO_OPTIONS = ("n_development", "n_validation", "n_evaluation", "n_sources", "sample_rate")


def _add_prepare_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=Path, required=True, help="corpus folder in its official layout")
    parser.add_argument("--out", type=Path, required=True, help="folder receiving the manifests (.jsonl.gz)")
    parser.add_argument("--min-seconds", type=non_negative_float, default=DEFAULT_MIN_SECONDS,
                        help="clips shorter than this are errors (default %(default)s s)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="skip (and report) clips whose audio file is missing instead of failing")
    parser.add_argument("--workers", type=positive_int, default=DEFAULT_PROBE_WORKERS,
                        help="threads probing audio headers (default %(default)s)")


def _probe_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(min_seconds=args.min_seconds, skip_missing=args.skip_missing, workers=args.workers)


def _print_report(report: PrepareReport) -> None:
    for line in report.lines():
        print(line)


def _run_clotho(args: argparse.Namespace) -> int:
    _, report = prepare_clotho(args.root, args.out, splits=args.splits, encoding=args.encoding,
                               audio_dir=args.audio_dir, **_probe_kwargs(args))
    _print_report(report)
    return 0


def _run_audiocaps(args: argparse.Namespace) -> int:
    _, report = prepare_audiocaps(args.root, args.out, splits=args.splits, audio_dirs=args.audio_dir,
                                  patterns=args.pattern, encoding=args.encoding, **_probe_kwargs(args))
    _print_report(report)
    return 0


def _run_wavcaps(args: argparse.Namespace) -> int:
    _, report = prepare_wavcaps(args.root, args.out, sources=args.sources, exclude_csv=args.exclude_csv,
                                audio_dir=args.audio_dir, audio_extension=args.audio_ext, **_probe_kwargs(args))
    _print_report(report)
    return 0


def _run_esc50(args: argparse.Namespace) -> int:
    _, report = prepare_esc50(args.root, args.out, meta=args.meta, subset=args.subset, dataset=args.dataset,
                              audio_dir=args.audio_dir, **_probe_kwargs(args))
    _print_report(report)
    return 0


def _run_urbansound8k(args: argparse.Namespace) -> int:
    _print_report(prepare_urbansound8k(args.root, args.out, meta=args.meta, **_probe_kwargs(args))[1])
    return 0


def _run_fsd50k(args: argparse.Namespace) -> int:
    _print_report(prepare_fsd50k(args.root, args.out, splits=args.splits, **_probe_kwargs(args))[1])
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    try:
        from lasr.data.demo import make_demo  # written separately; imported only when the demo is asked for
    except ModuleNotFoundError as err:
        if err.name != "lasr.data.demo":
            raise
        raise LasrError("the demo generator lasr.data.demo is not installed") from None
    out = Path(args.out)
    # Only options given on the command line are passed, so make_demo's own defaults stay the single source.
    sizes = {key: getattr(args, key) for key in DEMO_OPTIONS if getattr(args, key) is not None}
    make_demo(out, seed=args.seed, overwrite=args.overwrite, **sizes)
    manifests = out / DEMO_MANIFESTS
    reports = [
        prepare_clotho(out / "clotho", manifests)[1],
        prepare_esc50(out / "esc50", manifests)[1],
        prepare_captioned_csv(out / "sources" / "sources.csv", manifests, dataset="sources")[1],
    ]
    for report in reports:
        _print_report(report)
    print(f"demo corpus in {out}, manifests in {manifests}")
    return 0


def _run_mixtures(args: argparse.Namespace) -> int:
    from lasr.data.mixtures import make_mixture_csv

    count = make_mixture_csv(args.manifests, args.out, args.per_clip, args.seed, args.min_snr_db, args.max_snr_db,
                             not args.continuous_snr)
    print(f"wrote {count} mixtures to {args.out}")
    return 0


def manifest_stats(records: Sequence[ClipRecord]) -> dict[str, Any]:
    """Summary numbers of a manifest: counts, hours, captions per clip, splits, datasets, durations (s)."""
    durations = [r.duration for r in records]
    return {
        "clips": len(records),
        "captions": sum(len(r.captions) for r in records),
        "hours": sum(durations) / 3600.0,
        "captions_per_clip": dict(sorted(Counter(len(r.captions) for r in records).items())),
        "labels": len({label for r in records for label in r.labels}),
        "splits": dict(Counter(r.split or "(none)" for r in records)),
        "datasets": dict(Counter(r.dataset or "(none)" for r in records)),
        "duration_s": (min(durations), statistics.fmean(durations), max(durations)) if durations else None,
    }


def _counts(counter: dict[Any, int]) -> str:
    return ", ".join(f"{key}: {value:,}" for key, value in counter.items()) or "-"


def _run_info(args: argparse.Namespace) -> int:
    for path in args.manifests:
        stats = manifest_stats(read_manifest(path))
        print(f"{path}")
        print(f"  clips {stats['clips']:,}, captions {stats['captions']:,}, distinct labels {stats['labels']:,}, "
              f"{stats['hours']:.2f} h")
        print(f"  captions per clip  {_counts(stats['captions_per_clip'])}")
        print(f"  splits             {_counts(stats['splits'])}")
        print(f"  datasets           {_counts(stats['datasets'])}")
        if stats["duration_s"]:
            low, mean, high = stats["duration_s"]
            print(f"  duration (s)       min {low:.2f}, mean {mean:.2f}, max {high:.2f}")
    return 0


def _run_shard(args: argparse.Namespace) -> int:
    from lasr.data.shards import write_shards

    summary = write_shards(read_manifest(args.manifest), args.out, chunk_bytes=args.chunk_bytes,
                           overwrite=args.overwrite)
    print(f"{summary.folder}: {summary.items:,} clips, {summary.bytes / 2**20:,.1f} MiB of audio in shards; "
          f"use the folder wherever a manifest path goes (e.g. data.init_args.train: [{{path: {summary.folder}}}])")
    return 0


def _sub(subparsers, name: str, help_text: str, handler: Callable[[argparse.Namespace], int]):
    parser = subparsers.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``lasr data`` sub-commands on ``parser``."""
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _sub(sub, "prepare-clotho", "Clotho v2.1 -> clotho_{split}.jsonl.gz", _run_clotho)
    _add_prepare_options(p)
    p.add_argument("--splits", nargs="+", help="default: every split whose clotho_captions_{split}.csv exists")
    p.add_argument("--encoding", default="utf-8", help="caption CSV encoding (default %(default)s)")
    p.add_argument("--audio-dir", help="audio folder under --root, may contain {split} "
                                       "(default clotho_audio_{split}, then {split})")

    p = _sub(sub, "prepare-audiocaps", "AudioCaps -> audiocaps_{split}.jsonl.gz", _run_audiocaps)
    _add_prepare_options(p)
    p.add_argument("--splits", nargs="+", help="default: each of train/val/test whose CSV exists")
    p.add_argument("--audio-dir", nargs="+", help="audio folders under --root, may contain {split} "
                                                  "(default audio/{split} audio_32000Hz/{split} {split} audio)")
    p.add_argument("--pattern", nargs="+",
                   help="audio file name patterns with {youtube_id} {start_time} {audiocap_id} {split} "
                        "(default {youtube_id}_{start_time}.wav/.flac/.mp3, then Y{youtube_id}.wav)")
    p.add_argument("--encoding", default="utf-8", help="CSV encoding (default %(default)s)")

    p = _sub(sub, "prepare-wavcaps", "WavCaps -> wavcaps_{source}.jsonl.gz", _run_wavcaps)
    _add_prepare_options(p)
    p.add_argument("--sources", nargs="+", default=list(WAVCAPS_SOURCES), help="default: %(default)s")
    p.add_argument("--exclude-csv", type=Path,
                   help="DCASE exclusion list (sound_id column) removing matching FreeSound clips")
    p.add_argument("--audio-dir", help="audio folder under --root with {source} (default audio/{source})")
    p.add_argument("--audio-ext", default=AUDIO_EXTENSION, help="audio file extension (default %(default)s)")

    p = _sub(sub, "prepare-esc50", "ESC-50 or Kitchen20 -> <dataset>.jsonl.gz", _run_esc50)
    _add_prepare_options(p)
    p.add_argument("--meta", type=Path, help="metadata CSV (default: meta/esc50.csv, esc50.csv, "
                                             "meta/kitchen20.csv or kitchen20.csv under --root)")
    p.add_argument("--subset", type=Path, help="list of present clips (file_name column; default --root/subset.csv)")
    p.add_argument("--dataset", help="dataset name (default esc50, or kitchen20 when detected)")
    p.add_argument("--audio-dir", type=Path, help="folder holding the audio files (default from the format)")

    p = _sub(sub, "prepare-urbansound8k", "UrbanSound8K -> urbansound8k.jsonl.gz", _run_urbansound8k)
    _add_prepare_options(p)
    p.add_argument("--meta", type=Path, help="metadata CSV (default --root/metadata/UrbanSound8K.csv)")

    p = _sub(sub, "prepare-fsd50k", "FSD50K (multi-label) -> fsd50k_{split}.jsonl.gz", _run_fsd50k)
    _add_prepare_options(p)
    p.add_argument("--splits", nargs="+", choices=FSD50K_SPLITS,
                   help="default: every split whose ground-truth CSV exists")

    p = _sub(sub, "demo", "build the synthetic demo corpus and its manifests", _run_demo)
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default %(default)s)")
    for option in DEMO_OPTIONS:
        p.add_argument(f"--{option.replace('_', '-')}", type=positive_int, help="default: the generator's")
    p.add_argument("--overwrite", action="store_true", help="replace demo folders that are not a complete demo")

    p = _sub(sub, "shard", "write a manifest's clips into litdata shards (read like a manifest)", _run_shard)
    p.add_argument("--manifest", type=Path, required=True, help="manifest (.jsonl[.gz]) whose clips to shard")
    p.add_argument("--out", type=Path, required=True, help="shard folder (created when complete)")
    p.add_argument("--chunk-bytes", default="64MB", help="size of each chunk file (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")

    p = _sub(sub, "mixtures", "write a deterministic source,noise,snr,caption mixture CSV (separation eval)",
             _run_mixtures)
    p.add_argument("manifests", nargs="+", help="manifest(s) (.jsonl/.jsonl.gz) whose clips are mixed")
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--per-clip", type=int, default=1, help="mixtures per captioned clip (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-snr-db", type=float, default=-15.0)
    p.add_argument("--max-snr-db", type=float, default=15.0)
    p.add_argument("--continuous-snr", action="store_true", help="uniform real SNRs instead of integers")

    p = _sub(sub, "info", "summarise manifests", _run_info)
    p.add_argument("manifests", nargs="+", type=Path, help="manifest files (.jsonl or .jsonl.gz)")


def run(args: argparse.Namespace) -> int:
    """Run the chosen sub-command; returns the exit code."""
    if args.command != "info":
        check_output_dir(args.out)
    return args.handler(args)
