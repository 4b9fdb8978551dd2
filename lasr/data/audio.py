"""Audio I/O: probe, read a window by seeking, downmix, resample, pad or crop.

All waveforms are float32 tensors in [-1, 1]; times are in seconds, sample rates in Hz.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio

from lasr.data.shards import is_shard_path, open_shard_audio
from lasr.errors import AudioError

SILENCE_PEAK = 1e-5  # a clip whose peak is below this (about -100 dBFS) is treated as silent


@dataclass(frozen=True)
class AudioInfo:
    sample_rate: int
    num_frames: int
    channels: int

    @property
    def duration(self) -> float:
        return self.num_frames / self.sample_rate


def probe_audio(path: str | Path) -> AudioInfo:
    """Header facts of an audio file; raises :class:`AudioError` (naming the file) if missing or unreadable."""
    if is_shard_path(path):
        source = open_shard_audio(path)
    else:
        path = Path(path)
        if not path.is_file():
            raise AudioError("audio file not found", path)
        source = str(path)
    try:
        info = sf.info(source)
    except Exception as err:  # libsndfile raises RuntimeError/LibsndfileError with terse text
        raise AudioError(f"unreadable audio ({err})", path) from None
    if info.frames <= 0:
        raise AudioError("audio file has no samples", path)
    return AudioInfo(sample_rate=int(info.samplerate), num_frames=int(info.frames), channels=int(info.channels))


def read_window(path: str | Path, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """Read ``frames`` samples from sample ``start`` (seeking; the rest of the file is not decoded).

    Returns:
        (audio, sample_rate) with audio of shape ``(frames, channels)`` float32.
    """
    try:
        with sf.SoundFile(open_shard_audio(path) if is_shard_path(path) else str(path)) as handle:
            if start:
                handle.seek(start)
            audio = handle.read(frames=frames, dtype="float32", always_2d=True)
            return audio, handle.samplerate
    except FileNotFoundError:
        raise AudioError("audio file not found", path) from None
    except AudioError:
        raise
    except Exception as err:
        raise AudioError(f"unreadable audio ({err})", path) from None




@functools.lru_cache(maxsize=32)
def _resampler(orig_sr: int, new_sr: int) -> torchaudio.transforms.Resample:
    # the sinc kernel costs more than applying it; build it once per rate pair and process
    return torchaudio.transforms.Resample(orig_sr, new_sr)


def resample(wave: torch.Tensor, orig_sr: int, new_sr: int) -> torch.Tensor:
    """Resample ``wave`` (..., samples) with torchaudio's band-limited sinc interpolation."""
    if orig_sr == new_sr:
        return wave
    with torch.no_grad():
        return _resampler(int(orig_sr), int(new_sr))(wave)


def pad_or_crop(wave: torch.Tensor, length: int, offset: int = 0) -> torch.Tensor:
    """Zero-pad at the end or crop ``wave`` (..., samples) to ``length`` samples, starting at ``offset``."""
    n = wave.shape[-1]
    if n > length:
        return wave[..., offset : offset + length]
    if n < length:
        return torch.nn.functional.pad(wave, (0, length - n))
    return wave


def load_clip(
    path: str | Path,
    sample_rate: int,
    max_seconds: float | None = None,
    offset_seconds: float = 0.0,
    rng: np.random.Generator | None = None,
    min_seconds: float = 0.0,
    check_silence: bool = True,
    info: AudioInfo | None = None,
) -> tuple[torch.Tensor, float]:
    """Load a mono clip at ``sample_rate``, reading only the window it needs.

    Args:
        path: audio file.
        sample_rate: target rate in Hz.
        max_seconds: window length; longer files are cropped (at a random start when ``rng`` is given, else
            at ``offset_seconds``). ``None`` reads the whole file.
        rng: source of the random crop start (training); ``None`` means deterministic.
        min_seconds: shorter files raise :class:`AudioError` (e.g. shorter than one analysis frame).
        check_silence: raise :class:`AudioError` for an all-silent window.
        info: header facts if already known (skips a probe).

    Returns:
        (wave, duration): wave of shape ``(samples,)`` at ``sample_rate``, *not* padded; duration in seconds of
        the audio actually read (the true duration the encoder should aggregate over).
    """
    info = info or probe_audio(path)
    sr = info.sample_rate
    if info.duration < min_seconds:
        raise AudioError(f"clip is {info.duration:.3f} s, shorter than the minimum {min_seconds} s", path)
    start, frames = 0, -1
    if max_seconds is not None:
        want = int(round(max_seconds * sr))
        if info.num_frames > want:
            if rng is not None:
                start = int(rng.integers(0, info.num_frames - want + 1))
            else:
                start = min(int(round(offset_seconds * sr)), info.num_frames - want)
            frames = want
    audio, file_sr = read_window(path, start, frames)
    if audio.shape[0] == 0:
        raise AudioError("audio file has no samples", path)
    wave = torch.from_numpy(audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0])
    if not torch.isfinite(wave).all():
        raise AudioError("audio contains NaN or Inf samples", path)
    if check_silence and float(wave.abs().max()) < SILENCE_PEAK:
        raise AudioError("audio is silent", path)
    duration = wave.shape[-1] / file_sr
    wave = resample(wave, file_sr, sample_rate)
    return wave.contiguous(), duration
