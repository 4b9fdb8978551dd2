"""Property tests of the waveform transforms on signals with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from lasr.augment.audio import transforms as T
from lasr.errors import AudioError

RATE = 16000


def tone(freq: float, seconds: float = 2.0, amplitude: float = 0.3) -> torch.Tensor:
    t = torch.arange(int(seconds * RATE), dtype=torch.float64) / RATE
    return (amplitude * torch.sin(2 * math.pi * freq * t)).float()


def dominant_hz(wave: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(wave.double() * torch.hann_window(wave.shape[-1], dtype=torch.float64)).abs()
    return float(spectrum.argmax()) * RATE / wave.shape[-1]


@pytest.mark.parametrize("gain_db", [-12.0, -3.0, 4.5, 9.0])
def test_gain_changes_rms_by_the_stated_db(gain_db):
    wave = tone(440.0, amplitude=0.05)
    out = T.apply_gain(wave, gain_db)
    assert 20 * math.log10(T.rms(out) / T.rms(wave)) == pytest.approx(gain_db, abs=1e-3)


@pytest.mark.parametrize("semitones", [-6.0, -2.0, 3.0, 6.0])
def test_pitch_shift_moves_a_sine_by_the_stated_ratio(semitones):
    wave = tone(440.0)
    out, applied = T.pitch_shift(wave, semitones)
    assert applied == pytest.approx(semitones, abs=0.05)  # rational rounding of the ratio
    assert out.shape == wave.shape
    assert dominant_hz(out) == pytest.approx(440.0 * 2 ** (applied / 12), rel=0.01)


@pytest.mark.parametrize("speed", [0.7, 1.0 / 1.3, 1.25, 1.5])
def test_speed_changes_duration_by_the_factor(speed):
    wave = tone(440.0)
    out, applied = T.change_speed(wave, speed)
    assert applied == pytest.approx(speed, rel=0.01)
    assert out.shape[-1] == pytest.approx(wave.shape[-1] / applied, abs=2)
    assert dominant_hz(out) == pytest.approx(440.0 * applied, rel=0.01)  # tape-style: pitch follows


@pytest.mark.parametrize("ratio_db,offset_fraction", [(-5.0, 0.0), (0.0, 0.5), (3.7, 1.0)])
def test_mixture_energy_ratio_equals_the_drawn_ratio(ratio_db, offset_fraction):
    first, second = tone(300.0, 2.0, 0.2), tone(1000.0, 1.0, 0.05)
    mixture, offset = T.mix_pair(first, second, ratio_db, offset_fraction)
    assert mixture.shape == first.shape
    assert offset == round(offset_fraction * (first.shape[-1] - second.shape[-1]))
    added = mixture - first  # no peak limiting at these levels, so the scaled second clip is recovered exactly
    placed = added[offset : offset + second.shape[-1]]
    assert float(added.abs().sum()) == pytest.approx(float(placed.abs().sum()), rel=1e-5)  # nothing outside its slot
    measured = 10 * math.log10(T.rms(first) ** 2 / T.rms(placed) ** 2)
    assert measured == pytest.approx(ratio_db, abs=1e-3)


def test_mixture_of_loud_clips_is_limited_but_keeps_its_ratio():
    first, second = tone(300.0, 2.0, 0.99), tone(1000.0, 2.0, 0.99)
    mixture, _ = T.mix_pair(first, second, 2.0, 0.0, max_peak=0.99)
    assert T.peak(mixture) <= 0.99 + 1e-6
    scale = T.peak(mixture) / T.peak(first + second * math.sqrt(T.rms(first) ** 2 / (10 ** 0.2 * T.rms(second) ** 2)))
    assert scale < 1.0


def test_silent_clip_cannot_be_energy_matched():
    with pytest.raises(AudioError, match="silent"):
        T.mix_pair(tone(300.0), torch.zeros(RATE), 0.0, 0.5)
    assert T.headroom_db(torch.zeros(10)) == math.inf
    assert T.rms(torch.zeros(0)) == 0.0


def test_concatenation_keeps_order_and_crop_keeps_the_fraction():
    parts = [tone(f, 0.5) for f in (300.0, 900.0, 600.0)]
    out = T.concatenate(parts, gap_samples=100)
    assert out.shape[-1] == 3 * parts[0].shape[-1] + 200
    n = parts[0].shape[-1]
    assert [round(dominant_hz(out[i * (n + 100) : i * (n + 100) + n])) for i in range(3)] == [300, 900, 600]
    cropped = T.crop(tone(300.0, 2.0), 0.25, 1.0)
    assert cropped.shape[-1] == RATE // 2
    with pytest.raises(ValueError):
        T.crop(tone(300.0), 0.0, 0.5)


def test_limit_peak_removes_nan_and_inf_and_never_amplifies():
    out = T.limit_peak(torch.tensor([float("nan"), float("inf"), 2.0, -0.5]), 0.99)
    assert torch.isfinite(out).all() and T.peak(out) <= 0.99 + 1e-6  # float32 rounding of 0.99
    quiet = torch.tensor([0.1, -0.2])
    assert torch.equal(T.limit_peak(quiet), quiet)


def test_match_rate_resamples_to_the_target_rate():
    out = T.match_rate(tone(440.0, 1.0), RATE, 22050)
    assert out.shape[-1] == 22050
    assert torch.equal(T.match_rate(out, 22050, 22050), out)
