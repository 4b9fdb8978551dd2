"""Demo sound events: types, attributes, clip plans and their numpy synthesis.

Times are in seconds, levels in dB relative to full scale, frequencies in Hz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    from lasr.data.demo.corpus import DemoSpec

# --------------------------------------------------------------------------------------------------------------
# Event types and their attributes.  The order of EVENT_TYPES defines the ESC-50 ``target`` index.
# --------------------------------------------------------------------------------------------------------------
EVENT_TYPES = (
    "pure_tone", "harmonic_buzz", "rising_chirp", "falling_chirp", "white_noise",
    "pink_noise", "click_train", "beep_train", "siren", "knocking",
)
ESC10_TYPES = frozenset(EVENT_TYPES[:5])  # the "esc10" column marks a fixed half of the classes, like ESC-10
PITCHED = frozenset({"pure_tone", "harmonic_buzz", "beep_train", "siren"})
REPEATING = frozenset({"click_train", "beep_train", "siren", "knocking"})
TIMED = frozenset({"pure_tone", "harmonic_buzz", "rising_chirp", "falling_chirp", "white_noise", "pink_noise"})
NOISES = frozenset({"white_noise", "pink_noise"})
SUSTAINABLE = ("pure_tone", "harmonic_buzz", "white_noise", "pink_noise", "siren")  # may fill a whole clip
ATTRIBUTE_ORDER = ("loudness", "duration", "pitch", "rate")  # adjective order in a noun phrase

LEVEL_DB = {"loud": (-16.0, -10.0), "quiet": (-36.0, -30.0)}  # loudest 20 ms frame of the event, RMS
DURATION_S = {"short": (0.4, 1.0), "long": (2.0, 3.0)}
REPEAT_SPAN_S = (2.0, 3.0)  # span of click/beep/knock trains and sirens outside the background role
PITCH_HZ = {
    "pure_tone": {"low": (180.0, 350.0), "high": (1800.0, 3500.0)},
    "harmonic_buzz": {"low": (90.0, 160.0), "high": (500.0, 800.0)},
    "beep_train": {"low": (300.0, 500.0), "high": (2000.0, 3200.0)},
    "siren": {"low": (450.0, 750.0), "high": (1400.0, 2200.0)},
}
RATE_HZ = {
    "click_train": {"slow": (2.0, 3.0), "fast": (10.0, 16.0)},
    "beep_train": {"slow": (2.0, 3.0), "fast": (6.0, 9.0)},
    "siren": {"slow": (0.5, 1.0), "fast": (5.0, 8.0)},
    "knocking": {"slow": (1.5, 2.5), "fast": (5.0, 7.0)},
}
CHIRP_LOW_HZ, CHIRP_HIGH_HZ = (250.0, 500.0), (2500.0, 5000.0)
BACKGROUND_DB = (-60.0, -50.0)
SOURCE_BACKGROUND_DB = -75.0
PEAK_LIMIT = 0.99
EVENT_PEAK_LIMIT = 0.9
STRUCTURE_WEIGHTS = {"single": 0.4, "sequence": 0.35, "overlap": 0.25}
LEVEL_FRAME_S = 0.02
RAMP_S = 0.015
GAP_S = (0.3, 1.0)
EDGE_S = 0.2


def attributes_of(event_type: str) -> tuple[str, ...]:
    """Attribute names that apply to ``event_type`` (always ``loudness``; pitch/rate/duration where meaningful)."""
    names = ["loudness"]
    names += ["duration"] if event_type in TIMED else []
    names += ["pitch"] if event_type in PITCHED else []
    names += ["rate"] if event_type in REPEATING else []
    return tuple(names)


# --------------------------------------------------------------------------------------------------------------
# Clip plans: what sounds where.  Plans are plain data, stored verbatim in demo_metadata.json.
# --------------------------------------------------------------------------------------------------------------
@dataclass
class Event:
    """One sound event: ``onset``/``duration`` in seconds, categorical ``attributes``, numeric ``params``."""

    type: str
    role: str  # only | first | second | foreground | background
    onset: float
    duration: float
    attributes: dict[str, str]
    level_db: float
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class ClipPlan:
    file_name: str
    duration: float
    structure: str  # single | sequence | overlap
    events: list[Event]
    background_db: float


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return float(rng.uniform(low, max(low, high)))  # max(): guards against float rounding of derived bounds


def _sample_event(rng: np.random.Generator, event_type: str, role: str, forced: dict[str, str] | None = None) -> Event:
    """Draw attributes and numeric parameters; onset is set later by the clip planner."""
    choices = {"loudness": ("loud", "quiet"), "duration": ("short", "long"), "pitch": ("low", "high"),
               "rate": ("slow", "fast")}
    attrs = {name: str(rng.choice(choices[name])) for name in attributes_of(event_type)}
    attrs.update(forced or {})
    params: dict[str, float] = {}
    if "pitch" in attrs:
        params["freq_hz"] = _uniform(rng, PITCH_HZ[event_type][attrs["pitch"]])
    if "rate" in attrs:
        params["rate_hz"] = _uniform(rng, RATE_HZ[event_type][attrs["rate"]])
    if event_type in ("rising_chirp", "falling_chirp"):
        low, high = _uniform(rng, CHIRP_LOW_HZ), _uniform(rng, CHIRP_HIGH_HZ)
        params["start_hz"], params["end_hz"] = (low, high) if event_type == "rising_chirp" else (high, low)
    duration = _uniform(rng, DURATION_S[attrs["duration"]] if "duration" in attrs else REPEAT_SPAN_S)
    return Event(event_type, role, 0.0, duration, attrs, _uniform(rng, LEVEL_DB[attrs["loudness"]]), params)


def _clip_length(rng: np.random.Generator, spec: "DemoSpec", needed: float) -> float:
    if rng.random() < spec.long_clip_fraction:
        length = spec.long_clip_seconds
    else:
        length = _uniform(rng, spec.clip_seconds)
    return math.ceil(max(length, needed) * 100) / 100  # centisecond lengths, never shorter than needed


def _plan_single(rng: np.random.Generator, spec: "DemoSpec") -> tuple[float, list[Event]]:
    event = _sample_event(rng, str(rng.choice(EVENT_TYPES)), "only")
    length = _clip_length(rng, spec, event.duration + 2 * EDGE_S)
    event.onset = _uniform(rng, (EDGE_S, length - EDGE_S - event.duration))
    return length, [event]


def _plan_sequence(rng: np.random.Generator, spec: "DemoSpec") -> tuple[float, list[Event]]:
    first_type, second_type = (str(t) for t in rng.choice(EVENT_TYPES, size=2, replace=False))
    first, second = _sample_event(rng, first_type, "first"), _sample_event(rng, second_type, "second")
    gap = _uniform(rng, GAP_S)
    needed = first.duration + gap + second.duration + 2 * EDGE_S
    length = _clip_length(rng, spec, needed)
    first.onset = _uniform(rng, (EDGE_S, EDGE_S + length - needed))
    second.onset = first.onset + first.duration + gap
    return length, [first, second]


def _plan_overlap(rng: np.random.Generator, spec: "DemoSpec") -> tuple[float, list[Event]]:
    """A foreground event strictly inside a background event that spans (nearly) the whole clip.

    Audibility rules: noise is never in the foreground (it would mask the background); a noise background is
    quiet under a loud foreground; under a quiet foreground the background is quiet too.
    """
    background_type = str(rng.choice(SUSTAINABLE))
    foreground_type = str(rng.choice([t for t in EVENT_TYPES if t not in NOISES and t != background_type]))
    foreground = _sample_event(rng, foreground_type, "foreground",
                               {"loudness": "loud"} if background_type in NOISES else None)
    forced = {"duration": "long"} if background_type in TIMED else {}
    if background_type in NOISES or foreground.attributes["loudness"] == "quiet":
        forced["loudness"] = "quiet"
    background = _sample_event(rng, background_type, "background", forced)
    length = _clip_length(rng, spec, foreground.duration + 2.0)
    background.onset = _uniform(rng, (0.05, 0.3))
    background.duration = length - _uniform(rng, (0.05, 0.3)) - background.onset
    lead = 0.5  # the foreground starts and ends at least this far inside the background
    foreground.onset = _uniform(rng, (background.onset + lead,
                                      background.onset + background.duration - lead - foreground.duration))
    return length, [foreground, background]


PLANNERS = {"single": _plan_single, "sequence": _plan_sequence, "overlap": _plan_overlap}


def plan_clip(rng: np.random.Generator, spec: "DemoSpec", file_name: str, structure: str | None = None) -> ClipPlan:
    """Draw one clip: its structure (unless given), events, length and background level."""
    if structure is None:
        names = list(STRUCTURE_WEIGHTS)
        weights = np.array([STRUCTURE_WEIGHTS[n] for n in names])
        structure = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    length, events = PLANNERS[structure](rng, spec)
    return ClipPlan(file_name, length, structure, events, _uniform(rng, BACKGROUND_DB))


# --------------------------------------------------------------------------------------------------------------
# Synthesis.  Every synthesiser returns a float64 array of round(duration * sr) samples, roughly unit level.
# --------------------------------------------------------------------------------------------------------------
def _ramp(n: int, sr: int, ramp_s: float = RAMP_S) -> np.ndarray:
    """Raised-cosine fade in and out of ``ramp_s`` seconds (shorter for very short events)."""
    k = max(1, min(int(ramp_s * sr), n // 2))
    env = np.ones(n)
    rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(k) / k)
    env[:k] = rise
    env[n - k:] = np.minimum(env[n - k:], rise[::-1])
    return env


def _pink(rng: np.random.Generator, n: int, sr: int, exponent: float = 1.0) -> np.ndarray:
    """Noise with power falling as 1/f**exponent (1: pink), high-passed at 40 Hz, unit RMS."""
    size = 1 << max(0, n - 1).bit_length()  # power-of-two FFT: arbitrary lengths can be prime and slow
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1.0 / sr)
    spectrum *= np.where(freqs < 40.0, 0.0, 1.0 / np.maximum(freqs, 40.0) ** (exponent / 2))
    noise = np.fft.irfft(spectrum, size)[:n]
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def _room_noise(rng: np.random.Generator, n: int, sr: int, corner_hz: float = 40.0) -> np.ndarray:
    """Cheap background: integrated (1/f^2) noise high-passed at ``corner_hz`` plus a little white noise, unit RMS.

    A running sum and a moving-average subtraction cost O(n), much less than FFT shaping of every clip.
    """
    white = rng.standard_normal(n)
    red = np.cumsum(white)
    k = max(2, int(sr / corner_hz))
    padded = np.pad(red, (k // 2, k - k // 2), mode="edge")
    sums = np.cumsum(np.concatenate(([0.0], padded)))
    red -= (sums[k:k + n] - sums[:n]) / k
    red /= np.sqrt(np.mean(red ** 2)) + 1e-12
    noise = 0.9 * red + 0.1 * white
    return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def _pulse_starts(rng: np.random.Generator, n: int, sr: int, rate_hz: float, pulse_len: int) -> np.ndarray:
    """Start indices of regularly spaced pulses (+-5 % timing jitter) that fit whole into ``n`` samples."""
    period = sr / rate_hz
    last = max(0, n - pulse_len)
    starts = np.arange(0.0, last + 1, period)
    starts += rng.uniform(-0.05, 0.05, size=starts.size) * period
    return np.clip(np.round(starts), 0, last).astype(np.int64)


def _synth_pure_tone(rng, ev: Event, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    return np.sin(2 * np.pi * ev.params["freq_hz"] * t + rng.uniform(0, 2 * np.pi)) * _ramp(n, sr)


def _synth_harmonic_buzz(rng, ev: Event, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0, top = ev.params["freq_hz"], min(4000.0, 0.45 * sr)
    wave = np.zeros(n)
    for k in range(1, min(40, int(top // f0)) + 1):
        wave += np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k
    return wave * _ramp(n, sr)


def _synth_chirp(rng, ev: Event, n: int, sr: int) -> np.ndarray:
    """Exponential sweep from ``start_hz`` to ``end_hz`` over the event."""
    nyquist_cap = 0.45 * sr
    f_start, f_end = min(ev.params["start_hz"], nyquist_cap), min(ev.params["end_hz"], nyquist_cap)
    t = np.arange(n) / sr
    span = n / sr
    growth = np.log(f_end / f_start) / span
    phase = 2 * np.pi * f_start * np.expm1(growth * t) / growth
    return np.sin(phase) * _ramp(n, sr)


def _synth_white_noise(rng, ev: Event, n: int, sr: int) -> np.ndarray:
    return rng.standard_normal(n) * _ramp(n, sr, 0.02)


def _synth_pink_noise(rng, ev: Event, n: int, sr: int) -> np.ndarray:
    return _pink(rng, n, sr) * _ramp(n, sr, 0.02)


def _synth_click_train(rng, ev: Event, n: int, sr: int) -> np.ndarray:
    """Sharp, bright clicks: 4 ms of first-differenced (high-tilted) noise with a 0.6 ms decay."""
    click_len = max(2, int(0.004 * sr))
    decay = np.exp(-np.arange(click_len) / (0.0006 * sr))
    wave = np.zeros(n)
    for start in _pulse_starts(rng, n, sr, ev.params["rate_hz"], click_len):
        wave[start:start + click_len] += np.diff(rng.standard_normal(click_len + 1)) * decay
    return wave


def _synth_beep_train(rng, ev: Event, n: int, sr: int) -> np.ndarray:
    period = int(sr / ev.params["rate_hz"])
    beep_len = max(4, int(0.45 * period))
    gate = np.zeros(n)
    shape = _ramp(beep_len, sr, 0.005)
    for start in range(0, n - beep_len + 1, period):
        gate[start:start + beep_len] = shape
    t = np.arange(n) / sr
    return np.sin(2 * np.pi * ev.params["freq_hz"] * t) * gate


def _synth_siren(rng, ev: Event, n: int, sr: int, depth: float = 0.2) -> np.ndarray:
    """Pitch oscillating by +-``depth`` around ``freq_hz`` at ``rate_hz``; second harmonic at 0.3."""
    t = np.arange(n) / sr
    fc, rate = ev.params["freq_hz"], ev.params["rate_hz"]
    phase = 2 * np.pi * fc * (t - depth * np.cos(2 * np.pi * rate * t) / (2 * np.pi * rate))
    return (np.sin(phase) + 0.3 * np.sin(2 * phase)) * _ramp(n, sr)


def _synth_knocking(rng, ev: Event, n: int, sr: int) -> np.ndarray:
    """Dull thumps: a decaying sine whose pitch drops from about 200 to 70 Hz, each a little different.

    Kept low (no broadband attack) so that knocks never look like the bright clicks of ``click_train``.
    """
    knock_len = int(0.25 * sr)
    t = np.arange(knock_len) / sr
    tau = 0.03
    attack = np.minimum(1.0, t / 0.002)
    wave = np.zeros(n)
    for start in _pulse_starts(rng, n, sr, ev.params["rate_hz"], knock_len):
        base_hz = 70.0 * rng.uniform(0.9, 1.1)
        sweep = np.sin(2 * np.pi * (base_hz * t + 130.0 * tau * (1 - np.exp(-t / tau))))
        wave[start:start + knock_len] += sweep * attack * np.exp(-t / 0.06)
    return wave


SYNTHS: dict[str, Callable[..., np.ndarray]] = {
    "pure_tone": _synth_pure_tone, "harmonic_buzz": _synth_harmonic_buzz, "rising_chirp": _synth_chirp,
    "falling_chirp": _synth_chirp, "white_noise": _synth_white_noise, "pink_noise": _synth_pink_noise,
    "click_train": _synth_click_train, "beep_train": _synth_beep_train, "siren": _synth_siren,
    "knocking": _synth_knocking,
}


def _scale_to_level(wave: np.ndarray, level_db: float, sr: int) -> np.ndarray:
    """Scale so the loudest ``LEVEL_FRAME_S`` frame has RMS ``level_db`` dBFS; cap the peak at EVENT_PEAK_LIMIT."""
    frame = max(1, int(LEVEL_FRAME_S * sr))
    padded = np.pad(wave, (0, (-wave.size) % frame))
    frame_rms = np.sqrt(np.mean(padded.reshape(-1, frame) ** 2, axis=1))
    gain = 10 ** (level_db / 20) / max(float(frame_rms.max()), 1e-12)
    peak = float(np.abs(wave).max()) * gain
    if peak > EVENT_PEAK_LIMIT:
        gain *= EVENT_PEAK_LIMIT / peak
    return wave * gain


def render_clip(plan: ClipPlan, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Mix background noise and the plan's events.

    Returns:
        float64 array of shape ``(round(plan.duration * sr),)`` with peak <= PEAK_LIMIT.
    """
    n = int(round(plan.duration * sr))
    mix = _room_noise(rng, n, sr) * 10 ** (plan.background_db / 20)
    for ev in plan.events:
        start, length = int(round(ev.onset * sr)), int(round(ev.duration * sr))
        length = min(length, n - start)
        wave = _scale_to_level(SYNTHS[ev.type](rng, ev, length, sr), ev.level_db, sr)
        mix[start:start + length] += wave
    peak = float(np.abs(mix).max())
    if peak > PEAK_LIMIT:
        mix *= PEAK_LIMIT / peak
    return mix


def write_wav(path: Path, wave: np.ndarray, sr: int) -> None:
    """Quantise to 16-bit PCM ourselves (deterministic rounding) and write a mono wav."""
    pcm = np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)
    sf.write(str(path), pcm, sr, subtype="PCM_16", format="WAV")
