"""``lasr separate``: extract the sound a text query describes from a recording of any length.

    lasr separate --ckpt model.ckpt --audio in.wav --text "a dog barking" --out dog.wav
    lasr separate --ckpt model.ckpt --csv jobs.csv --out out_dir/        # rows: audio,text[,out]

The checkpoint may be a lasr separation checkpoint or a published AudioSep / DCASE 2024 T9 baseline one (its
query tower is CLAP: pass ``--clap`` with a local CLAP folder). Windows and overlap-add:
:mod:`lasr.models.separation.streaming`.
"""

from __future__ import annotations

import argparse
import csv
import logging
import re
from pathlib import Path
from typing import Callable

import torch

from lasr.data.audio import check_audio
from lasr.data.checks import (
    check_device, check_output_dir, check_output_file, non_negative_float, positive_float, positive_int,
)
from lasr.errors import AudioError, DataError, LasrError
from lasr.models.separation.streaming import FORMATS, load_model_and_query, separate_file

log = logging.getLogger(__name__)


def read_jobs(path: str | Path, out: Path) -> list[tuple[str, str, Path]]:
    """Rows ``audio,text[,out]`` of a batch CSV (header required).

    A missing ``out`` becomes ``<out>/<audio stem>_<text slug>.wav``; relative audio paths are relative to the CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("job CSV not found", path)
    jobs = []
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"audio", "text"} <= set(reader.fieldnames):
            raise DataError(f"the header must name columns audio,text[,out]; got {reader.fieldnames}", path, 1)
        for row_no, row in enumerate(reader, start=2):
            text = (row.get("text") or "").strip()
            if not text:
                raise DataError("empty text query", path, row_no)
            audio = Path(row["audio"])
            audio = audio if audio.is_absolute() else path.parent / audio
            slug = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40]
            target = Path(row["out"]) if row.get("out") else out / f"{audio.stem}_{slug}.wav"
            jobs.append((str(audio), text, target))
    return jobs


def check_jobs(jobs: list[tuple[str, str, Path]], out_dir: Path | None = None) -> None:
    """Before any model is loaded: every output can be written and, for a single job, the input is readable
    audio (one error listing all problems); two jobs writing the same file are an error too. Unreadable inputs
    of a batch are skipped and counted by the run instead."""
    problems = _problems(check_output_dir, out_dir) if out_dir else []
    seen: dict[Path, str] = {}
    for audio, _, target in jobs:
        reason = check_audio(audio) if out_dir is None else None
        if reason:
            problems.append(reason)
        problems += _problems(check_output_file, target)
        if target.absolute() in seen:
            problems.append(f"{target}: written by two jobs ({seen[target.absolute()]} and {audio})")
        seen[target.absolute()] = audio
    if len(problems) == 1:
        raise LasrError(problems[0])
    if problems:
        raise LasrError(f"{len(problems)} problems, nothing was separated:\n" + "\n".join(f"  - {p}" for p in problems))


def _problems(check: Callable[..., Path], path: Path) -> list[str]:
    try:
        check(path, "output")
    except LasrError as err:
        return [str(err)]
    return []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="lasr separation checkpoint or AudioSep / DCASE baseline .ckpt")
    parser.add_argument("--audio", help="input recording (any length, rate and channel count)")
    parser.add_argument("--text", help="text query, e.g. \"a dog barking\"")
    parser.add_argument("--csv", help="batch mode: CSV with columns audio,text[,out]")
    parser.add_argument("--out", required=True, help="output WAV (single mode) or output folder (batch mode)")
    parser.add_argument("--window", type=positive_float, default=10.0, help="window length in s (default %(default)s)")
    parser.add_argument("--overlap", type=non_negative_float, default=1.0,
                        help="window overlap in s (default %(default)s)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="float",
                        help="float: 32-bit float WAV (default); pcm16: clipped to [-1, 1], 16-bit")
    parser.add_argument("--clap", help="local CLAP model folder (needed for published AudioSep / DCASE checkpoints)")
    parser.add_argument("--device", default="cpu", help="torch device (default %(default)s)")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for torch")


def run(args: argparse.Namespace) -> int:
    if bool(args.csv) == bool(args.audio):
        raise LasrError("give either --audio with --text, or --csv")
    if args.audio and not (args.text or "").strip():
        raise DataError("empty text query: pass --text \"...\"", args.audio)
    check_device(args.device)
    if args.overlap >= args.window:
        raise LasrError(f"--overlap {args.overlap} s must be shorter than --window {args.window} s")
    if args.threads:
        torch.set_num_threads(args.threads)
    jobs = read_jobs(args.csv, Path(args.out)) if args.csv else [(args.audio, args.text.strip(), Path(args.out))]
    check_jobs(jobs, Path(args.out) if args.csv else None)
    model, query = load_model_and_query(args.ckpt, args.clap, args.device)
    conditions = query.to(args.device)(sorted({text for _, text, _ in jobs}))
    by_text = dict(zip(sorted({text for _, text, _ in jobs}), conditions))
    failed = 0
    for audio, text, out in jobs:
        try:
            report = separate_file(model, by_text[text], audio, out, args.window, args.overlap, args.format)
        except (AudioError, DataError) as err:
            if not args.csv:
                raise
            failed += 1
            log.error("%s: %s", audio, err)
            continue
        print(f"{audio} -> {out}  ({report['seconds']:.1f} s, query {text!r})")
    if failed:
        log.error("%d of %d jobs failed", failed, len(jobs))
    return 1 if failed else 0
