"""Waveform transforms for training-time augmentation (CPU, torch/torchaudio, run inside data-loader workers).

All functions take mono waveforms ``(samples,)`` float32 in [-1, 1] and return new tensors; none of them can
emit NaN/Inf. Level ops work on energy E = mean(x^2) (RMS^2), so an all-silent clip is detected explicitly
(:func:`is_silent`) instead of dividing by zero. Pitch and speed factors are rounded to small rational ratios
so the band-limited resampler stays cheap; the functions return the value actually applied.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torchaudio.functional as AF

from lasr.errors import AudioError

SILENCE_RMS = 1e-5  # RMS below this (-100 dBFS) counts as silent: no level to match or describe


def rms(wave: torch.Tensor) -> float:
    """Root mean square of ``wave`` (any shape); 0.0 for an empty tensor."""
    return float(wave.double().pow(2).mean().sqrt()) if wave.numel() else 0.0


def is_silent(wave: torch.Tensor, threshold: float = SILENCE_RMS) -> bool:
    return rms(wave) < threshold


def peak(wave: torch.Tensor) -> float:
    return float(wave.abs().max()) if wave.numel() else 0.0


def headroom_db(wave: torch.Tensor, max_peak: float = 0.99) -> float:
    """Largest gain in dB that keeps the peak at or below ``max_peak`` (inf for silence)."""
    top = peak(wave)
    return math.inf if top <= 0 else 20.0 * math.log10(max_peak / top)


def frame_rms(wave: torch.Tensor, sample_rate: int, frame_s: float = 0.02) -> torch.Tensor:
    """RMS of consecutive ``frame_s`` frames of ``wave`` (samples,) -> (frames,) (the last frame zero-padded)."""
    frame = max(1, int(round(frame_s * sample_rate)))
    padded = torch.nn.functional.pad(wave.double(), (0, (-wave.shape[-1]) % frame))
    return padded.reshape(-1, frame).pow(2).mean(dim=1).sqrt()


def active_span(wave: torch.Tensor, sample_rate: int, active_db: float = 30.0,
                frame_s: float = 0.02) -> tuple[int, int] | None:
    """``(start, end)`` samples from the first to the last frame within ``active_db`` dB of the loudest frame
    (the part of the clip a caption can talk about); None for a silent clip."""
    rms_ = frame_rms(wave, sample_rate, frame_s)
    if not rms_.numel() or float(rms_.max()) < SILENCE_RMS:
        return None
    on = torch.nonzero(rms_ >= max(float(rms_.max()) * 10.0 ** (-active_db / 20.0), SILENCE_RMS)).flatten()
    frame = max(1, int(round(frame_s * sample_rate)))
    return int(on[0]) * frame, min(int(on[-1] + 1) * frame, wave.shape[-1])


def active_rms(wave: torch.Tensor, sample_rate: int, active_db: float = 30.0, frame_s: float = 0.02) -> float:
    """RMS over the frames within ``active_db`` dB of the loudest one (level of the sounds, not of the gaps)."""
    rms_ = frame_rms(wave, sample_rate, frame_s)
    if not rms_.numel() or float(rms_.max()) < SILENCE_RMS:
        return 0.0
    on = rms_[rms_ >= float(rms_.max()) * 10.0 ** (-active_db / 20.0)]
    return float(on.pow(2).mean().sqrt())


def level_change_db(after: torch.Tensor, before: torch.Tensor, sample_rate: int, active_db: float = 30.0) -> float:
    """How much louder ``after`` is than ``before`` in dB (active-frame RMS of each); 0 if either is silent."""
    a, b = active_rms(after, sample_rate, active_db), active_rms(before, sample_rate, active_db)
    return 20.0 * math.log10(a / b) if a > 0 and b > 0 else 0.0


def window_keeping_active(wave: torch.Tensor, keep: int, sample_rate: int, start_fraction: float,
                          active_db: float = 30.0) -> torch.Tensor | None:
    """A window of ``keep`` samples that contains the whole active span (so every sound a caption names
    survives), placed at ``start_fraction`` of the room the span leaves; None when the span is longer."""
    n = wave.shape[-1]
    if keep >= n:
        return wave
    span = active_span(wave, sample_rate, active_db)
    if span is None or span[1] - span[0] > keep:
        return None
    lo, hi = max(0, span[1] - keep), min(span[0], n - keep)
    start = lo + int(round((hi - lo) * min(max(start_fraction, 0.0), 1.0)))
    return wave[start : start + keep].clone()


def apply_gain(wave: torch.Tensor, gain_db: float) -> torch.Tensor:
    """Scale by ``gain_db`` dB (RMS changes by exactly ``gain_db``)."""
    return wave * (10.0 ** (gain_db / 20.0))


def limit_peak(wave: torch.Tensor, max_peak: float = 0.99) -> torch.Tensor:
    """Scale the whole waveform down (never up) so its peak is at most ``max_peak``; replaces NaN/Inf by 0."""
    wave = torch.nan_to_num(wave, nan=0.0, posinf=0.0, neginf=0.0)
    top = peak(wave)
    if top <= max_peak:
        return wave
    return (wave * (max_peak / top)).clamp(-max_peak, max_peak)  # the clamp only trims float32 rounding


def rational(value: float, max_denominator: int) -> Fraction:
    """Closest fraction p/q to ``value`` with q <= ``max_denominator`` (keeps resampling kernels small)."""
    if value <= 0:
        raise ValueError(f"ratio must be positive, got {value}")
    return Fraction(value).limit_denominator(max_denominator)


def change_speed(wave: torch.Tensor, speed: float, max_denominator: int = 20) -> tuple[torch.Tensor, float]:
    """Tape-style speed change: duration / ``speed`` and every frequency x ``speed`` (like ``sox speed``).

    Returns ``(wave, applied_speed)``; the output has ``round(samples / applied_speed)`` samples.
    """
    ratio = rational(speed, max_denominator)
    if ratio == 1:
        return wave.clone(), 1.0
    with torch.no_grad():
        out = AF.resample(wave, ratio.numerator, ratio.denominator)
    return out, float(ratio)


def time_stretch(wave: torch.Tensor, rate: float, n_fft: int = 512, hop_length: int = 128) -> torch.Tensor:
    """Phase-vocoder time stretch: duration / ``rate`` at unchanged pitch. ``wave`` (samples,) -> (~samples/rate,)."""
    window = torch.hann_window(n_fft)
    spec = torch.stft(wave, n_fft, hop_length, window=window, return_complex=True)
    advance = torch.linspace(0, math.pi * hop_length, spec.shape[-2])[..., None]
    stretched = AF.phase_vocoder(spec, rate, advance)
    length = int(round(wave.shape[-1] / rate))
    return torch.istft(stretched, n_fft, hop_length, window=window, length=length)


def pitch_shift(wave: torch.Tensor, semitones: float, max_denominator: int = 24, n_fft: int = 512,
                hop_length: int = 128) -> tuple[torch.Tensor, float]:
    """Shift pitch by ``semitones`` at unchanged duration: stretch by the ratio, then resample it back.

    The ratio 2^(semitones/12) is rounded to p/q (q <= ``max_denominator``; error < 0.05 semitone for
    |shift| <= 6). Returns ``(wave, applied_semitones)``; output length equals input length.
    """
    ratio = rational(2.0 ** (semitones / 12.0), max_denominator)
    if ratio == 1 or wave.shape[-1] < n_fft:
        return wave.clone(), 0.0
    with torch.no_grad():
        longer = time_stretch(wave, 1.0 / float(ratio), n_fft, hop_length)
        out = AF.resample(longer, ratio.numerator, ratio.denominator)
    n = wave.shape[-1]
    out = out[:n] if out.shape[-1] >= n else torch.nn.functional.pad(out, (0, n - out.shape[-1]))
    return out, 12.0 * math.log2(float(ratio))


def crop(wave: torch.Tensor, fraction: float, start_fraction: float) -> torch.Tensor:
    """Keep ``fraction`` of the clip starting at ``start_fraction`` of the free room (both in [0, 1])."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"crop fraction must be in (0, 1], got {fraction}")
    n = wave.shape[-1]
    keep = max(1, int(round(n * fraction)))
    start = int(round((n - keep) * min(max(start_fraction, 0.0), 1.0)))
    return wave[start : start + keep].clone()


def concatenate(waves: list[torch.Tensor], gap_samples: int = 0) -> torch.Tensor:
    """Clips one after another in order, with ``gap_samples`` of silence between them."""
    if not waves:
        raise ValueError("nothing to concatenate")
    gap = waves[0].new_zeros(gap_samples)
    parts = [p for i, w in enumerate(waves) for p in ((gap, w) if i and gap_samples else (w,))]
    return torch.cat(parts)


def mix_scale(first: torch.Tensor, second: torch.Tensor, ratio_db: float | None) -> float:
    """Factor :func:`mix_pair` applies to ``second`` (1.0 when ``ratio_db`` is None)."""
    if ratio_db is None:
        return 1.0
    return math.sqrt(rms(first) ** 2 / (10.0 ** (ratio_db / 10.0) * rms(second) ** 2))


def mix_pair(first: torch.Tensor, second: torch.Tensor, ratio_db: float | None, offset_fraction: float,
             max_peak: float = 0.99) -> tuple[torch.Tensor, int]:
    """Overlay two clips with energy ratio E(first) / E(scaled second) = 10^(ratio_db / 10) (Wu et al.);
    ``ratio_db`` None keeps both clips at their own levels (for captions that state those levels).

    The shorter clip starts at ``offset_fraction`` of the free room inside the longer one; the output has the
    longer clip's length and is scaled down as a whole if its peak would exceed ``max_peak`` (the ratio is
    kept). Energies are taken over each clip's own samples. Returns ``(mixture, offset_samples)``.

    Raises:
        AudioError: either clip is silent (no energy to match).
    """
    if is_silent(first) or is_silent(second):
        raise AudioError("cannot energy-match a silent clip in a mixture")
    second = second * mix_scale(first, second, ratio_db)
    longer, shorter = (first, second) if first.shape[-1] >= second.shape[-1] else (second, first)
    offset = int(round((longer.shape[-1] - shorter.shape[-1]) * min(max(offset_fraction, 0.0), 1.0)))
    mixture = longer.clone()
    mixture[offset : offset + shorter.shape[-1]] += shorter
    return limit_peak(mixture, max_peak), offset


def match_rate(wave: torch.Tensor, sample_rate: int, target_rate: int) -> torch.Tensor:
    """Resample a clip to ``target_rate`` before it is mixed or concatenated with clips at that rate."""
    if sample_rate == target_rate:
        return wave
    with torch.no_grad():
        return AF.resample(wave, int(sample_rate), int(target_rate))
