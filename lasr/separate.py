"""``lasr separate``: extract the sound a text query describes from a recording of any length.

    lasr separate --ckpt model.ckpt --audio in.wav --text "a dog barking" --out dog.wav
    lasr separate --ckpt model.ckpt --csv jobs.csv --out out_dir/        # rows: audio,text[,out]

The checkpoint may be a lasr separation checkpoint or a published AudioSep / DCASE 2024 T9 baseline one (its
query tower is CLAP: pass ``--clap`` with a local CLAP folder). Audio is read in windows, resampled to the model's
rate, downmixed to mono, separated window by window and written as it goes, so memory is bounded by the window,
not the file. Windows overlap by ``--overlap`` seconds and are joined by overlap-add with complementary
raised-cosine (sin^2 / cos^2) fades, which sum to exactly 1; window starts lie on the model's pooling grid
(hop x 2^(depth-1) samples). Inputs no longer than one window take a single whole-file pass. The output is at
the model's sample rate, written as 32-bit float (default) or 16-bit PCM after clipping to [-1, 1].
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from lasr.data.audio import check_audio, probe_audio, read_window, resample
from lasr.errors import AudioError, DataError, LasrError
from lasr.models.separation.resunet import ResUNet30
from lasr.utils.atomic import atomic_path
from lasr.utils.checks import (
    check_device, check_output_dir, check_output_file, non_negative_float, positive_float, positive_int,
)
from lasr.utils.progress import progress

log = logging.getLogger(__name__)

RESAMPLE_MARGIN_SECONDS = 0.05  # context read beyond a window so chunk-wise resampling matches a whole-file one
FORMATS = {"float": "FLOAT", "pcm16": "PCM_16"}
SECONDS_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s [{elapsed}<{remaining}, {rate_fmt}]"


def fade_in(length: int) -> Tensor:
    """(length,) sin^2 ramp from ~0 to ~1; ``fade_in(n) + fade_in(n).flip(0) == 1``."""
    t = (torch.arange(length, dtype=torch.float64) + 0.5) / length
    return torch.sin(0.5 * math.pi * t).pow(2).float()


@dataclass
class WindowPlan:
    """Window layout in samples: windows of ``window`` samples starting every ``step``, overlapping by ``overlap``."""

    window: int
    overlap: int
    total: int

    @property
    def step(self) -> int:
        return self.window - self.overlap

    def starts(self) -> list[int]:
        if self.total <= self.window:
            return [0]
        count = math.ceil((self.total - self.overlap) / self.step)
        return [k * self.step for k in range(count)]


def plan_windows(model: ResUNet30, total: int, window_seconds: float, overlap_seconds: float) -> WindowPlan:
    """Window and overlap rounded to the model's pooling grid (at least one grid cell each; overlap < window/2)."""
    grid = model.hop_length * model.time_downsample_ratio
    window = max(2, round(window_seconds * model.sample_rate / grid)) * grid
    overlap = min(max(1, round(overlap_seconds * model.sample_rate / grid)), window // grid // 2) * grid
    return WindowPlan(window, overlap, total)


@torch.no_grad()
def separate_stream(model: ResUNet30, condition: Tensor, read: Callable[[int, int], Tensor], total: int,
                    window_seconds: float = 10.0, overlap_seconds: float = 1.0) -> Iterator[Tensor]:
    """Separate a long signal window by window, yielding finished output samples in order.

    Args:
        model: separator in eval mode.
        condition: (D,) query embedding.
        read: ``read(start, frames) -> (frames,)`` samples at the model's rate (zero-padded past the end).
        total: signal length in samples.

    Yields:
        consecutive (n,) float32 pieces of the estimate; together exactly ``total`` samples.
    """
    plan = plan_windows(model, total, window_seconds, overlap_seconds)
    starts = plan.starts()
    device = next(model.parameters()).device
    condition = condition.reshape(1, -1).to(device)
    ramp = fade_in(plan.overlap)
    tail: Tensor | None = None
    for k, start in enumerate(starts):
        last = k == len(starts) - 1
        frames = min(plan.window, total - start)
        chunk = read(start, frames).to(device)
        estimate = model(chunk[None], condition)[0].float().cpu()
        if len(starts) == 1:
            yield estimate
            return
        if k > 0:  # fade in over the overlap and add the previous window's faded-out tail
            estimate[: plan.overlap] = estimate[: plan.overlap] * ramp + tail
        if last:
            yield estimate
        else:
            tail = estimate[plan.step:] * ramp.flip(0)
            yield estimate[: plan.step]


def separate_waveform(model: ResUNet30, wave: Tensor, condition: Tensor, window_seconds: float = 10.0,
                      overlap_seconds: float = 1.0) -> Tensor:
    """In-memory version of :func:`separate_stream`: (S,) samples at the model's rate -> (S,) estimate."""
    wave = wave.reshape(-1).float()
    read = lambda start, frames: wave[start: start + frames]  # noqa: E731
    return torch.cat(list(separate_stream(model, condition, read, wave.shape[-1], window_seconds, overlap_seconds)))


class FileReader:
    """Windows of an audio file at ``sample_rate``, mono, read by seeking; resampled with aligned margins so that
    interior samples equal those of resampling the whole file."""

    def __init__(self, path: str | Path, sample_rate: int):
        self.path, self.sample_rate = Path(path), sample_rate
        info = probe_audio(path)
        self.file_rate, self.file_frames = info.sample_rate, info.num_frames
        divisor = math.gcd(self.file_rate, sample_rate)
        self.block_in, self.block_out = self.file_rate // divisor, sample_rate // divisor
        self.total = math.ceil(self.file_frames * sample_rate / self.file_rate)
        self.margin_blocks = math.ceil(RESAMPLE_MARGIN_SECONDS * sample_rate / self.block_out)

    def _read(self, start: int, frames: int) -> Tensor:
        audio, _ = read_window(self.path, start, frames)
        wave = torch.from_numpy(audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0])
        if not torch.isfinite(wave).all():
            raise AudioError("audio contains NaN or Inf samples", self.path)
        return wave

    def __call__(self, start: int, frames: int) -> Tensor:
        if self.file_rate == self.sample_rate:
            wave = self._read(start, frames)
        else:
            first = max(0, start // self.block_out - self.margin_blocks)
            stop = min(math.ceil((start + frames) / self.block_out) + self.margin_blocks,
                       math.ceil(self.file_frames / self.block_in))
            raw = self._read(first * self.block_in, min(stop * self.block_in, self.file_frames) - first * self.block_in)
            offset = start - first * self.block_out
            wave = resample(raw, self.file_rate, self.sample_rate)[offset: offset + frames]
        return torch.nn.functional.pad(wave, (0, frames - wave.shape[-1]))


def separate_file(model: ResUNet30, condition: Tensor, audio: str | Path, out: str | Path, window_seconds: float = 10.0,
                  overlap_seconds: float = 1.0, output_format: str = "float",
                  show_progress: bool = True) -> dict[str, float]:
    """Separate ``audio`` into ``out`` (written atomically); returns duration in s and the number of clipped samples.

    Progress (seconds of audio done, rate, ETA) goes to stderr: a bar on a terminal, else periodic lines."""
    reader = FileReader(audio, model.sample_rate)
    clipped = 0
    out = Path(out)
    with atomic_path(out) as tmp, sf.SoundFile(str(tmp), "w", samplerate=model.sample_rate, channels=1,
                                               subtype=FORMATS[output_format], format="WAV") as sink, \
            progress(total=round(reader.total / model.sample_rate, 1), desc=Path(audio).name, unit="s",
                     enabled=show_progress, bar_format=SECONDS_BAR) as bar:
        for piece in separate_stream(model, condition, reader, reader.total, window_seconds, overlap_seconds):
            bar.update(round(piece.shape[-1] / model.sample_rate, 3))
            data = piece.numpy().astype(np.float32)
            if output_format == "pcm16":
                clipped += int((np.abs(data) > 1.0).sum())
                data = np.clip(data, -1.0, 1.0)  # never let an int16 conversion wrap around
            sink.write(data)
    if clipped:
        log.warning("%s: %d samples beyond [-1, 1] were clipped (use --format float to keep them)", out, clipped)
    return {"seconds": reader.total / model.sample_rate, "clipped": clipped}


# ---- the command --------------------------------------------------------------------------------------------------
def load_model_and_query(ckpt: str, clap: str | None = None, device: str = "cpu"):
    """(separator in eval mode on ``device``, frozen query encoder) from a lasr or published checkpoint."""
    from lasr.models.separation.checkpoint import load_separator
    from lasr.models.separation.query import ClapTextQuery, build_query_encoder

    loaded = load_separator(ckpt)
    if loaded.query is None:  # published AudioSep / DCASE checkpoint: its query tower is CLAP
        query = ClapTextQuery(clap)
    else:
        spec = loaded.query
        if clap and spec["class_path"].endswith("ClapTextQuery"):
            spec = {**spec, "init_args": {**spec.get("init_args", {}), "name_or_path": clap}}
        query = build_query_encoder(spec)
    if query.output_dim != loaded.model.condition_size:
        raise LasrError(f"{ckpt}: the query encoder gives {query.output_dim}-d embeddings, the separator expects "
                        f"{loaded.model.condition_size}")
    log.info("%s: %s separator, %s; query encoder %s", ckpt, loaded.kind,
             ", ".join(f"{k}={v}" for k, v in loaded.stft.items()), type(query).__name__)
    return loaded.model.to(device), query


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
