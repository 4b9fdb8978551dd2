"""Separate a recording of any length by a text query: window by window, joined by overlap-add.

Audio is read in windows, resampled to the model's
rate, downmixed to mono, separated window by window and written as it goes, so memory is bounded by the window,
not the file. Windows overlap by ``overlap_seconds`` and are joined by overlap-add with complementary
raised-cosine (sin^2 / cos^2) fades, which sum to exactly 1; window starts lie on the model's pooling grid
(hop x 2^(depth-1) samples). Inputs no longer than one window take a single whole-file pass. The output is at
the model's sample rate, written as 32-bit float (default) or 16-bit PCM after clipping to [-1, 1].
The ``lasr separate`` command (:mod:`lasr.cli.separate`) is the front end.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from lasr.data.audio import probe_audio, read_window, resample
from lasr.errors import AudioError, LasrError
from lasr.models.separation.resunet import ResUNet30
from lasr.utils.atomic import atomic_path
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
