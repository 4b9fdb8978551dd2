"""``lasr separate``: extract the sound a text query describes from a recording of any length.

    lasr separate --ckpt model.ckpt --audio in.wav --text "a dog barking" --out dog.wav
    lasr separate --ckpt model.ckpt --csv jobs.csv --out out_dir/        # rows: audio,text[,out]

The checkpoint may be a lasr separation checkpoint or a published AudioSep / DCASE 2024 T9 baseline one (its
query tower is CLAP: pass ``--clap`` with the baseline's LAION ``.pt`` plus ``--clap-tokenizer``, or a local HF CLAP
folder). Audio is read in windows, resampled to the model's
rate, downmixed to mono, separated window by window and written as it goes, so memory is bounded by the window,
not the file. Windows overlap by ``--overlap`` seconds and are joined by overlap-add with complementary
raised-cosine (sin^2 / cos^2) fades, which sum to exactly 1; the window is rounded up to the model's pooling grid
(hop x 2^(depth-1) samples) and window starts lie on it; the last window is right-aligned (full context at the
end). Inputs no longer than one window (e.g. a 10 s clip with ``--window 10``) take a single whole-file pass. The output is at
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

from lasr.data.audio import probe_audio, read_window, resample
from lasr.errors import AudioError, DataError, LasrError
from lasr.models.separation.resunet import ResUNet30
from lasr.utils.atomic import atomic_path

log = logging.getLogger(__name__)

RESAMPLE_MARGIN_SECONDS = 0.05  # context read beyond a window so chunk-wise resampling matches a whole-file one
FORMATS = {"float": "FLOAT", "pcm16": "PCM_16"}


def fade_in(length: int) -> Tensor:
    """(length,) sin^2 ramp from ~0 to ~1; ``fade_in(n) + fade_in(n).flip(0) == 1``."""
    t = (torch.arange(length, dtype=torch.float64) + 0.5) / length
    return torch.sin(0.5 * math.pi * t).pow(2).float()


@dataclass
class WindowPlan:
    """Window layout in samples: windows of ``window`` samples starting every ``step`` on a grid of ``grid``
    samples, overlapping by ``overlap``; the last window is right-aligned (its start rounded up to the grid)."""

    window: int
    overlap: int
    total: int
    grid: int = 1

    @property
    def step(self) -> int:
        return self.window - self.overlap

    def starts(self) -> list[int]:
        if self.total <= self.window:
            return [0]
        starts = list(range(0, self.total - self.window, self.step))  # every window ending before the end
        last = math.ceil((self.total - self.window) / self.grid) * self.grid  # full context up to the end
        while len(starts) > 1 and last < starts[-2] + self.window:  # three windows would overlap
            starts.pop()
        return starts + [last] if last > starts[-1] else starts


def plan_windows(model: ResUNet30, total: int, window_seconds: float, overlap_seconds: float) -> WindowPlan:
    """Window rounded up and overlap rounded to the model's pooling grid (so a clip of ``window_seconds`` takes
    one pass; at least one grid cell each; overlap <= window/2)."""
    grid = model.hop_length * model.time_downsample_ratio
    window = max(2, math.ceil(window_seconds * model.sample_rate / grid - 1e-9)) * grid
    overlap = min(max(1, round(overlap_seconds * model.sample_rate / grid)), window // grid // 2) * grid
    return WindowPlan(window, overlap, total, grid)


@torch.no_grad()
def separate_stream(model: ResUNet30, condition: Tensor, read: Callable[[int, int], Tensor], total: int,
                    window_seconds: float = 10.0, overlap_seconds: float = 1.0) -> Iterator[Tensor]:
    """Separate a long signal window by window, yielding finished output samples in order.

    Consecutive windows are cross-faded over their overlap (``overlap`` samples, or more before the right-aligned
    last window) with complementary sin^2 / cos^2 ramps.

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
    tail: Tensor | None = None  # the previous window's faded-out samples over the current overlap
    for k, start in enumerate(starts):
        frames = plan.window if len(starts) > 1 else total  # one window: the whole input, unpadded
        estimate = model(read(start, frames).to(device)[None], condition)[0].float().cpu()
        if tail is not None:
            estimate[: tail.shape[0]] = estimate[: tail.shape[0]] * fade_in(tail.shape[0]) + tail
        if k == len(starts) - 1:
            yield estimate[: total - start]
            return
        following = starts[k + 1] - start
        tail = estimate[following:] * fade_in(plan.window - following).flip(0)
        yield estimate[:following]


def separate_waveform(model: ResUNet30, wave: Tensor, condition: Tensor, window_seconds: float = 10.0,
                      overlap_seconds: float = 1.0) -> Tensor:
    """In-memory version of :func:`separate_stream`: (S,) samples at the model's rate -> (S,) estimate."""
    wave = wave.reshape(-1).float()

    def read(start: int, frames: int) -> Tensor:  # zero-padded past the end, as FileReader
        chunk = wave[start: start + frames]
        return torch.nn.functional.pad(chunk, (0, frames - chunk.shape[-1]))

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
                  overlap_seconds: float = 1.0, output_format: str = "float") -> dict[str, float]:
    """Separate ``audio`` into ``out`` (written atomically); returns duration in s and the number of clipped samples."""
    reader = FileReader(audio, model.sample_rate)
    clipped = 0
    out = Path(out)
    with atomic_path(out) as tmp, sf.SoundFile(str(tmp), "w", samplerate=model.sample_rate, channels=1,
                                               subtype=FORMATS[output_format], format="WAV") as sink:
        for piece in separate_stream(model, condition, reader, reader.total, window_seconds, overlap_seconds):
            data = piece.numpy().astype(np.float32)
            if output_format == "pcm16":
                clipped += int((np.abs(data) > 1.0).sum())
                data = np.clip(data, -1.0, 1.0)  # never let an int16 conversion wrap around
            sink.write(data)
    if clipped:
        log.warning("%s: %d samples beyond [-1, 1] were clipped (use --format float to keep them)", out, clipped)
    return {"seconds": reader.total / model.sample_rate, "clipped": clipped}


# ---- the command --------------------------------------------------------------------------------------------------
def load_model_and_query(ckpt: str, clap: str | None = None, device: str = "cpu", clap_tokenizer: str | None = None):
    """(separator in eval mode on ``device``, frozen query encoder) from a lasr or published checkpoint."""
    from lasr.models.separation.checkpoint import load_separator
    from lasr.models.separation.query import ClapTextQuery, build_query_encoder

    loaded = load_separator(ckpt)
    if loaded.query is None:  # published AudioSep / DCASE checkpoint: its query tower is CLAP
        if not clap:
            raise LasrError(f"{ckpt} is a published AudioSep / DCASE checkpoint; its query tower is CLAP: pass --clap "
                            "(music_speech_audioset_epoch_15_esc_89.98.pt with --clap-tokenizer, or an HF CLAP folder)")
        query = ClapTextQuery(clap, tokenizer=clap_tokenizer)
    else:
        spec = loaded.query
        if clap and spec["class_path"].endswith("ClapTextQuery"):
            spec = {**spec, "init_args": {**spec.get("init_args", {}), "name_or_path": clap,
                                          "tokenizer": clap_tokenizer}}
        query = build_query_encoder(spec)
        trained_with = loaded.query.get("fingerprint")
        if trained_with and query.weights_fingerprint() != trained_with:
            raise LasrError(f"{ckpt} was trained with another query tower ({loaded.query['class_path']} "
                            f"{loaded.query.get('init_args', {}).get('name_or_path')!r}, weights fingerprint "
                            f"{trained_with}); the one given has {query.weights_fingerprint()}")
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ckpt", required=True, help="lasr separation checkpoint or AudioSep / DCASE baseline .ckpt")
    parser.add_argument("--audio", help="input recording (any length, rate and channel count)")
    parser.add_argument("--text", help="text query, e.g. \"a dog barking\"")
    parser.add_argument("--csv", help="batch mode: CSV with columns audio,text[,out]")
    parser.add_argument("--out", required=True, help="output WAV (single mode) or output folder (batch mode)")
    parser.add_argument("--window", type=float, default=10.0, help="window length in s (default %(default)s)")
    parser.add_argument("--overlap", type=float, default=1.0, help="window overlap in s (default %(default)s)")
    parser.add_argument("--format", choices=sorted(FORMATS), default="float",
                        help="float: 32-bit float WAV (default); pcm16: clipped to [-1, 1], 16-bit")
    parser.add_argument("--clap", help="the baseline's LAION CLAP .pt or a local HF CLAP folder (needed for "
                                       "published AudioSep / DCASE checkpoints)")
    parser.add_argument("--clap-tokenizer", help="local RoBERTa tokenizer folder (with a LAION .pt --clap)")
    parser.add_argument("--device", default="cpu", help="torch device (default %(default)s)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")


def run(args: argparse.Namespace) -> int:
    if bool(args.csv) == bool(args.audio):
        raise LasrError("give either --audio with --text, or --csv")
    if args.audio and not (args.text or "").strip():
        raise DataError("empty text query: pass --text \"...\"", args.audio)
    if args.threads:
        torch.set_num_threads(args.threads)
    jobs = read_jobs(args.csv, Path(args.out)) if args.csv else [(args.audio, args.text.strip(), Path(args.out))]
    model, query = load_model_and_query(args.ckpt, args.clap, args.device, args.clap_tokenizer)
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
