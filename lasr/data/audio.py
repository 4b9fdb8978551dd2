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
# frames a read may fall short of the header's count before the file counts as truncated (compressed formats
# such as MP3 report an approximate length); also the default tolerance of the evaluation-set check
LENGTH_TOLERANCE_SECONDS = 0.05


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
    except AudioError:
        raise
    except Exception as err:
        raise _read_error(path, err) from None


def _read_error(path: str | Path, err: Exception) -> AudioError:
    """The true reason a read failed: libsndfile says "System error" for a missing file."""
    if not is_shard_path(path) and not Path(path).is_file():
        return AudioError("audio file not found", path)
    return AudioError(f"unreadable audio ({err})", path)


def check_audio(path: str | Path, num_frames: int | None = None, sample_rate: int | None = None,
                tolerance_frames: int = 0, full: bool = False, check_silence: bool = True) -> str | None:
    """Why the file does not hold the audio a manifest lists (``None`` when it does).

    Cheap by default: the header (``soundfile.info``) gives rate and length, and one frame is read at the end
    of the stream, because for FLAC the header keeps the original length after the file was cut (WAV and
    OGG headers report the frames actually present). ``full`` decodes the whole file and also checks for
    NaN/Inf samples and (with ``check_silence``) silence.

    Args:
        num_frames: frames per channel the manifest lists; a difference beyond ``tolerance_frames`` is reported.
        sample_rate: the manifest's rate in Hz.
    """
    try:
        info = probe_audio(path)
    except AudioError as err:
        return str(err)
    if sample_rate and info.sample_rate != sample_rate:
        return f"{path}: sample rate is {info.sample_rate} Hz, the manifest says {sample_rate} Hz"
    if num_frames is not None and abs(info.num_frames - num_frames) > tolerance_frames:
        return (f"{path}: holds {info.num_frames} frames ({info.duration:.3f} s), the manifest says {num_frames} "
                f"({num_frames / info.sample_rate:.3f} s); was it changed after prepare?")
    try:
        if not full:
            read_window(path, info.num_frames - 1, 1)
            return None
        audio, _ = read_window(path)
    except AudioError as err:
        return str(err)
    if audio.shape[0] != info.num_frames:
        return f"{path}: decoded {audio.shape[0]} frames, the header says {info.num_frames} (truncated file?)"
    if not np.isfinite(audio).all():
        return f"{path}: audio contains NaN or Inf samples"
    if check_silence and float(np.abs(audio).max()) < SILENCE_PEAK:
        return f"{path}: audio is silent"
    return None




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
    expected = frames if frames > 0 else info.num_frames - start
    if audio.shape[0] < expected - LENGTH_TOLERANCE_SECONDS * file_sr:  # the header facts (e.g. from a manifest) promise more than the file holds
        raise AudioError(f"read {audio.shape[0]} frames where {expected} were expected: the file is shorter "
                         f"than {info.num_frames} frames (truncated or replaced after prepare?)", path)
    wave = torch.from_numpy(audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0])
    if not torch.isfinite(wave).all():
        raise AudioError("audio contains NaN or Inf samples", path)
    if check_silence and float(wave.abs().max()) < SILENCE_PEAK:
        raise AudioError("audio is silent", path)
    duration = wave.shape[-1] / file_sr
    wave = resample(wave, file_sr, sample_rate)
    return wave.contiguous(), duration
