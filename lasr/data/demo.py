"""A small, procedurally generated corpus in the Clotho / ESC-50 / separation-sources layouts.

``make_demo(out_dir, seed)`` synthesises every clip with numpy (tones, buzzes, chirps, noise bursts, click,
beep and knock trains, sirens) over faint background noise, writes 16-bit PCM wav files, captions that tell
the truth about each clip, a DCASE 2025 style relevance file and a JSON sidecar with the ground truth.
The same seed gives bit-identical files (on the same numpy build). Licence of the output: CC0 (generated).

Layout written under ``out_dir`` (see docs/demo_data.md)::

    clotho/clotho_audio_{development,validation,evaluation}/*.wav
    clotho/clotho_captions_{development,validation,evaluation}.csv
    clotho/metadata_eval.csv          query,audio_filenames (Python list literal)
    clotho/demo_metadata.json         events, attributes, onsets and per-caption mentions
    esc50/audio/{fold}-{src}-{take}-{target}.wav, esc50/meta/esc50.csv
    sources/*.wav, sources/sources.csv
    README.md

Times are in seconds, levels in dB relative to full scale, frequencies in Hz.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import soundfile as sf

from lasr.errors import DataError
from lasr.utils.atomic import atomic_open

GENERATOR_VERSION = 1
SPLITS = ("development", "validation", "evaluation")
CAPTIONS_PER_CLIP = 5
STAMP_NAME = ".demo_complete.json"
OWNED_ENTRIES = ("clotho", "esc50", "sources", "README.md")

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


# --------------------------------------------------------------------------------------------------------------
# Captions.  A caption mentions every event's type (by a synonym) and a random subset of its attributes; the
# mentions are kept so that relevance ("does this caption describe that clip?") is decided exactly.
# --------------------------------------------------------------------------------------------------------------
NOUNS = {
    "pure_tone": ("pure tone", "steady tone", "constant tone", "sine tone", "clean electronic tone"),
    "harmonic_buzz": ("harmonic buzz", "buzzing tone", "reedy drone", "buzzy electric drone", "raspy buzzing note"),
    "rising_chirp": ("rising chirp", "upward sweep", "rising whistle", "ascending chirp", "rising sweep tone"),
    "falling_chirp": ("falling chirp", "downward sweep", "falling whistle", "descending chirp", "falling sweep tone"),
    "white_noise": ("white noise", "burst of white noise", "static hiss", "hissing noise", "harsh hiss"),
    "pink_noise": ("pink noise", "burst of pink noise", "dull roar", "rumbling rush of noise", "whooshing roar"),
    "click_train": ("click train", "series of clicks", "train of sharp clicks", "clicking sound", "ticking sound"),
    "beep_train": ("beep train", "series of beeps", "beeping sound", "repeated electronic beep", "pulsing beep"),
    "siren": ("siren", "warbling siren", "wailing alarm", "siren-like tone", "wavering alarm tone"),
    "knocking": ("knocking sound", "series of knocks", "dull thumping", "muffled knocking", "sequence of heavy thumps"),
}
VERBS = {
    "pure_tone": ("hums steadily", "rings out", "sounds without changing", "holds a single note"),
    "harmonic_buzz": ("buzzes", "drones on", "rasps steadily", "hums harshly"),
    "rising_chirp": ("rises in pitch", "sweeps upward", "climbs higher", "glides up"),
    "falling_chirp": ("falls in pitch", "sweeps downward", "drops lower", "glides down"),
    "white_noise": ("hisses", "sizzles", "rushes like static"),
    "pink_noise": ("roars", "rumbles", "whooshes", "rushes like a waterfall"),
    "click_train": ("ticks away", "keeps clicking", "taps out a rhythm", "repeats"),
    "beep_train": ("beeps repeatedly", "keeps beeping", "pulses on and off", "bleeps again and again"),
    "siren": ("wails", "warbles", "wavers up and down", "oscillates in pitch"),
    "knocking": ("knocks", "thumps", "pounds", "keeps knocking"),
}
ADJECTIVES = {
    "loudness": {"loud": ("loud", "strong", "powerful", "intense"), "quiet": ("quiet", "soft", "faint", "gentle")},
    "duration": {"short": ("short", "brief", "momentary"), "long": ("long", "sustained", "lengthy", "prolonged")},
    "pitch": {"low": ("low", "deep", "low-pitched"), "high": ("high", "shrill", "high-pitched")},
    "rate": {"fast": ("rapid", "fast", "fast-paced"), "slow": ("slow", "leisurely", "slow-paced")},
}
ADVERBS = {
    "loudness": {"loud": ("loudly", "at high volume"), "quiet": ("quietly", "softly", "faintly", "at low volume")},
    "duration": {"short": ("briefly", "for just a moment"), "long": ("for a long time", "for several seconds")},
    "pitch": {"low": ("at a low pitch", "in a low register"), "high": ("at a high pitch", "in a high register")},
    "rate": {"fast": ("rapidly", "quickly", "in quick succession"), "slow": ("slowly", "at a slow pace")},
}
PLACES = ("in an empty room", "in this short recording", "with only light room ambience",
          "while nothing else happens")
# {A}/{B}: noun phrases, {VA}/{VB}: verb phrases of the events in role order (see ROLES), {P}: a place phrase.
TEMPLATES = {
    "single": (
        "{A} {VA} somewhere in the room, with nothing else going on.",
        "There is {A} that {VA} {P}.",
        "{A} can be heard {P}.",
        "In this recording, {A} {VA} against light ambience.",
        "{A} {VA} and then stops, leaving only light room ambience.",
        "The only sound in the clip is {A} that {VA}.",
        "A speaker plays {A} {P}.",
        "Someone is playing {A} in an empty room.",
    ),
    "sequence": (
        "{A} {VA}, then {B} {VB}.",
        "First {A} {VA}, and then {B} {VB}.",
        "{A} is followed a moment later by {B}.",
        "After {A} {VA}, {B} {VB}.",
        "{A} {VA} before {B} {VB}.",
        "{A} comes first, and {B} follows after a short pause.",
        "{B} {VB} right after {A} {VA}.",
        "The clip starts with {A} and ends with {B}.",
    ),
    "overlap": (
        "{A} {VA} while {B} {VB} in the background.",
        "While {B} {VB} in the background, {A} {VA}.",
        "{A} {VA} over {B} that continues throughout.",
        "Throughout the clip {B} {VB}, and partway through {A} {VA}.",
        "{B} {VB} continuously as {A} {VA} on top of it.",
        "{A} can be heard on top of {B} in the background.",
        "In the background {B} {VB} the whole time, while {A} {VA}.",
    ),
}
ROLES = {"single": ("only",), "sequence": ("first", "second"), "overlap": ("foreground", "background")}
CAPTION_WORDS = (8, 20)
MENTION_PROBABILITY = 0.5
ADVERB_PROBABILITY = 0.4
MAX_CAPTION_TRIES = 300


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def _event_phrases(rng: np.random.Generator, event_type: str, mentioned: dict[str, str],
                   has_verb: bool) -> tuple[str, str]:
    """Noun phrase with article (``a loud siren``) and verb phrase (``wails rapidly``) for one event."""
    adjectives, adverbs = [], []
    for name in ATTRIBUTE_ORDER:
        if name not in mentioned:
            continue
        if has_verb and not adverbs and rng.random() < ADVERB_PROBABILITY:  # one adverb reads best
            adverbs.append(_pick(rng, ADVERBS[name][mentioned[name]]))
        else:
            adjectives.append(_pick(rng, ADJECTIVES[name][mentioned[name]]))
    words = " ".join(adjectives + [_pick(rng, NOUNS[event_type])])
    article = "an" if words[0] in "aeiou" else "a"
    verb = " ".join([_pick(rng, VERBS[event_type])] + adverbs)
    return f"{article} {words}", verb


def _mentions(rng: np.random.Generator, plan: ClipPlan) -> list[dict[str, Any]]:
    """Per event (in role order): its role, type and a random subset of its true attributes."""
    by_role = {ev.role: ev for ev in plan.events}
    out = []
    for role in ROLES[plan.structure]:
        ev = by_role[role]
        said = {k: v for k, v in ev.attributes.items() if rng.random() < MENTION_PROBABILITY}
        out.append({"role": role, "type": ev.type, "attributes": said})
    return out


def _render(template: str, mentions: list[dict[str, Any]], rng: np.random.Generator) -> str:
    slots: dict[str, str] = {"P": _pick(rng, PLACES)}
    for letter, mention in zip("AB", mentions):
        has_verb = "{V" + letter + "}" in template
        slots[letter], slots["V" + letter] = _event_phrases(rng, mention["type"], mention["attributes"], has_verb)
    text = template.format(**slots)
    return text[0].upper() + text[1:]


def make_captions(plan: ClipPlan, rng: np.random.Generator, used: set[str],
                  count: int = CAPTIONS_PER_CLIP) -> list[dict[str, Any]]:
    """``count`` captions from distinct templates, each unique within ``used`` (updated in place).

    Returns:
        list of ``{"text": str, "mentions": [{"role", "type", "attributes"}]}``.
    """
    templates = TEMPLATES[plan.structure]
    order = [templates[i] for i in rng.permutation(len(templates))]
    captions: list[dict[str, Any]] = []
    for attempt in range(MAX_CAPTION_TRIES):
        if len(captions) == count:
            break
        template = order[len(captions) % len(order)] if attempt < MAX_CAPTION_TRIES // 2 else _pick(rng, templates)
        mentions = _mentions(rng, plan)
        text = _render(template, mentions, rng)
        n_words = len(text.split())
        if text in used or not CAPTION_WORDS[0] <= n_words <= CAPTION_WORDS[1]:
            continue
        used.add(text)
        captions.append({"text": text, "mentions": mentions})
    if len(captions) < count:
        raise RuntimeError(f"could not write {count} distinct captions for {plan.file_name}")  # grammar too small
    return captions


def describes(mentions: list[dict[str, Any]], clip: dict[str, Any]) -> bool:
    """Whether a caption's ``mentions`` are all true of ``clip`` (a ``demo_metadata.json`` clip entry).

    True when the clip has the same structure (the same roles), each mentioned role holds an event of the
    mentioned type, and every mentioned attribute has the mentioned value.
    """
    by_role = {ev["role"]: ev for ev in clip["events"]}
    if set(by_role) != {m["role"] for m in mentions}:
        return False
    for mention in mentions:
        event = by_role[mention["role"]]
        if event["type"] != mention["type"]:
            return False
        if any(event["attributes"].get(k) != v for k, v in mention["attributes"].items()):
            return False
    return True


def relevance(clips: list[dict[str, Any]], rng: np.random.Generator) -> list[tuple[str, list[str]]]:
    """One query per clip (a random one of its captions) and every clip that query truthfully describes.

    Returns:
        ``[(query, [own_file, other_file, ...]), ...]`` with the query's own clip first, others by name.
    """
    rows = []
    for clip in clips:
        caption = clip["captions"][int(rng.integers(len(clip["captions"])))]
        others = sorted(c["file_name"] for c in clips
                        if c is not clip and describes(caption["mentions"], c))
        rows.append((caption["text"], [clip["file_name"]] + others))
    return rows


# --------------------------------------------------------------------------------------------------------------
# Writers.
# --------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoSpec:
    """Everything that determines the corpus (stored in the completion stamp; equal spec -> equal bytes)."""

    seed: int = 0
    n_development: int = 300
    n_validation: int = 60
    n_evaluation: int = 60
    sample_rate: int = 16000
    clip_seconds: tuple[float, float] = (4.0, 8.0)
    long_clip_fraction: float = 0.05
    long_clip_seconds: float = 12.0
    esc50_per_class_per_fold: int = 4
    esc50_clip_seconds: float = 5.0
    n_sources: int = 40
    source_clip_seconds: tuple[float, float] = (4.0, 6.0)
    generator_version: int = GENERATOR_VERSION

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _rng(spec: DemoSpec, *stream: int) -> np.random.Generator:
    """An independent generator per (corpus part, clip index, purpose), so parts do not depend on each other."""
    return np.random.default_rng([spec.seed, *stream])


def _write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _clip_json(plan: ClipPlan, captions: list[dict[str, Any]]) -> dict[str, Any]:
    events = [{**asdict(ev), "onset": round(ev.onset, 4), "duration": round(ev.duration, 4),
               "offset": round(ev.onset + ev.duration, 4), "level_db": round(ev.level_db, 2),
               "params": {k: round(v, 2) for k, v in ev.params.items()}} for ev in plan.events]
    return {"file_name": plan.file_name, "duration": plan.duration, "structure": plan.structure,
            "background_db": round(plan.background_db, 2), "events": events, "captions": captions}


def _write_clotho_split(root: Path, spec: DemoSpec, split_index: int, split: str, count: int) -> list[dict]:
    audio_dir = root / f"clotho_audio_{split}"
    audio_dir.mkdir(parents=True)
    used: set[str] = set()
    clips, rows = [], []
    for i in range(count):
        rng = _rng(spec, 1, split_index, i)
        plan = plan_clip(rng, spec, f"{split}_{i + 1:04d}.wav")
        write_wav(audio_dir / plan.file_name, render_clip(plan, rng, spec.sample_rate), spec.sample_rate)
        captions = make_captions(plan, _rng(spec, 2, split_index, i), used)
        clips.append(_clip_json(plan, captions))
        rows.append([plan.file_name] + [c["text"] for c in captions])
    header = ["file_name"] + [f"caption_{k}" for k in range(1, CAPTIONS_PER_CLIP + 1)]
    _write_csv(root / f"clotho_captions_{split}.csv", header, rows)
    return clips


def _write_clotho(root: Path, spec: DemoSpec) -> dict[str, Any]:
    counts = dict(zip(SPLITS, (spec.n_development, spec.n_validation, spec.n_evaluation)))
    splits = {split: _write_clotho_split(root, spec, k, split, counts[split]) for k, split in enumerate(SPLITS)}
    queries = relevance(splits["evaluation"], _rng(spec, 3))
    _write_csv(root / "metadata_eval.csv", ["query", "audio_filenames"], [[q, repr(files)] for q, files in queries])
    metadata = {"generator": "lasr.data.demo", "spec": spec.to_json(),
                "event_types": {t: list(attributes_of(t)) for t in EVENT_TYPES}, "splits": splits}
    with open(root / "demo_metadata.json", "w", encoding="utf-8") as handle:
        json.dump(metadata, handle, ensure_ascii=False, indent=1)
    per_query = [len(files) for _, files in queries]
    return {"queries": len(queries), "relevant_mean": float(np.mean(per_query)), "relevant_max": max(per_query)}


def _isolated_plan(rng: np.random.Generator, event_type: str, role: str, name: str, length: float,
                   forced: dict[str, str] | None = None, background_db: float | None = None) -> ClipPlan:
    event = _sample_event(rng, event_type, role, forced)
    event.onset = _uniform(rng, (0.1, max(0.1, length - 0.1 - event.duration)))
    db = _uniform(rng, BACKGROUND_DB) if background_db is None else background_db
    return ClipPlan(name, length, "single", [event], db)


def _write_esc50(root: Path, spec: DemoSpec) -> int:
    """ESC-50 layout; clips come in groups of up to 3 takes (A/B/C) cut from one "source" with shared attributes."""
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    rows, sr = [], spec.sample_rate
    for target, event_type in enumerate(EVENT_TYPES):
        for fold in range(1, 6):
            for i in range(spec.esc50_per_class_per_fold):
                take_index = i % 3
                rng = _rng(spec, 4, target, fold, i)
                src_id = 10000 * (target + 1) + 100 * fold + i // 3
                shared = _sample_event(_rng(spec, 5, target, fold, i // 3), event_type, "only").attributes
                name = f"{fold}-{src_id}-{'ABC'[take_index]}-{target}.wav"
                plan = _isolated_plan(rng, event_type, "only", name, spec.esc50_clip_seconds, shared)
                write_wav(root / "audio" / name, render_clip(plan, rng, sr), sr)
                rows.append([name, fold, target, event_type, event_type in ESC10_TYPES, src_id, "ABC"[take_index]])
    rows.sort(key=lambda row: row[0])
    _write_csv(root / "meta" / "esc50.csv", ["filename", "fold", "target", "category", "esc10", "src_file", "take"],
               rows)
    return len(rows)


def _write_sources(root: Path, spec: DemoSpec) -> int:
    """Isolated single events (near-silent floor) with a label and one caption each, classes in turn."""
    root.mkdir(parents=True)
    rows, used, sr = [], set(), spec.sample_rate
    for i in range(spec.n_sources):
        rng = _rng(spec, 6, i)
        event_type = EVENT_TYPES[i % len(EVENT_TYPES)]
        name = f"source_{i + 1:04d}.wav"
        length = round(_uniform(rng, spec.source_clip_seconds), 2)
        plan = _isolated_plan(rng, event_type, "only", name, length, background_db=SOURCE_BACKGROUND_DB)
        write_wav(root / name, render_clip(plan, rng, sr), sr)
        caption = make_captions(plan, _rng(spec, 7, i), used, count=1)[0]["text"]
        rows.append([name, event_type, caption])
    _write_csv(root / "sources.csv", ["file_name", "label", "caption"], rows)
    return len(rows)


def _readme(spec: DemoSpec, counts: dict[str, int], stats: dict[str, Any]) -> str:
    classes = ", ".join(f"`{t}`" for t in EVENT_TYPES)
    return f"""# lasr demo corpus (synthetic)

Procedurally generated by `lasr.data.demo.make_demo` (generator version {spec.generator_version}) with
**seed {spec.seed}**. Every sound is synthesised with numpy (tones, buzzes, chirps, noise bursts, click, beep
and knock trains, sirens) over faint background noise; nothing was recorded. Regenerate it bit-identically with
`lasr data demo --out DIR --seed {spec.seed}` and the same counts.

Licence: generated data, dedicated to the public domain (CC0 1.0).

| part | clips |
| --- | --- |
| clotho development | {counts['development']} |
| clotho validation | {counts['validation']} |
| clotho evaluation | {counts['evaluation']} ({stats['queries']} relevance queries, \
{stats['relevant_mean']:.2f} relevant clips per query on average, at most {stats['relevant_max']}) |
| esc50 (10 classes x 5 folds) | {counts['esc50']} |
| sources | {counts['sources']} |

Audio: mono 16-bit PCM wav at {spec.sample_rate} Hz. Clotho-layout clips last {spec.clip_seconds[0]:g}-\
{spec.clip_seconds[1]:g} s (about {spec.long_clip_fraction:.0%} last {spec.long_clip_seconds:g} s), ESC-50 clips \
{spec.esc50_clip_seconds:g} s, sources {spec.source_clip_seconds[0]:g}-{spec.source_clip_seconds[1]:g} s.

Classes (ESC-50 `target` = position): {classes}.

Files:
- `clotho/clotho_captions_<split>.csv`: `file_name,caption_1..caption_5`, five differently worded true captions.
- `clotho/metadata_eval.csv`: `query,audio_filenames` (a Python list literal), DCASE 2025 style relevance.
- `clotho/demo_metadata.json`: ground truth per clip (events, roles, onsets, attributes) and per caption
  (which attributes it mentions).
- `esc50/meta/esc50.csv`: `filename,fold,target,category,esc10,src_file,take` as in ESC-50.
- `sources/sources.csv`: `file_name,label,caption` for isolated single events (separation sources).
"""


def _stamp_matches(out_dir: Path, spec: DemoSpec) -> bool:
    stamp = out_dir / STAMP_NAME
    try:
        saved = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return saved.get("spec") == spec.to_json() and all((out_dir / e).exists() for e in OWNED_ENTRIES)


def _summary(out_dir: Path, spec: DemoSpec, counts: dict[str, int], stats: dict[str, Any], reused: bool) -> dict:
    clotho = out_dir / "clotho"
    paths = {
        "root": out_dir, "clotho": clotho, "relevance": clotho / "metadata_eval.csv",
        "metadata": clotho / "demo_metadata.json", "esc50": out_dir / "esc50",
        "esc50_meta": out_dir / "esc50" / "meta" / "esc50.csv", "sources": out_dir / "sources",
        "sources_csv": out_dir / "sources" / "sources.csv", "readme": out_dir / "README.md",
    }
    for split in SPLITS:
        paths[f"captions_{split}"] = clotho / f"clotho_captions_{split}.csv"
        paths[f"audio_{split}"] = clotho / f"clotho_audio_{split}"
    return {"out_dir": str(out_dir), "seed": spec.seed, "sample_rate": spec.sample_rate, "counts": counts,
            "relevance": stats, "paths": {k: str(v) for k, v in paths.items()}, "reused": reused}


def _generate(tmp: Path, spec: DemoSpec) -> tuple[dict[str, int], dict[str, Any]]:
    stats = _write_clotho(tmp / "clotho", spec)
    counts = {"development": spec.n_development, "validation": spec.n_validation,
              "evaluation": spec.n_evaluation, "esc50": _write_esc50(tmp / "esc50", spec),
              "sources": _write_sources(tmp / "sources", spec)}
    (tmp / "README.md").write_text(_readme(spec, counts, stats), encoding="utf-8")
    return counts, stats


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Replace the owned entries of ``out_dir`` by those built in ``tmp`` (old ones are moved into ``tmp``)."""
    for entry in OWNED_ENTRIES:
        if (out_dir / entry).exists():
            os.replace(out_dir / entry, tmp / f".old-{entry}")
        os.replace(tmp / entry, out_dir / entry)


def _check_spec(spec: DemoSpec) -> None:
    for name in ("n_development", "n_validation", "n_evaluation", "esc50_per_class_per_fold", "n_sources"):
        if getattr(spec, name) < 1:
            raise DataError(f"{name} must be at least 1, got {getattr(spec, name)}")
    if spec.sample_rate < 8000:
        raise DataError(f"sample_rate must be at least 8000 Hz, got {spec.sample_rate}")
    low, high = spec.clip_seconds
    if not 4.0 <= low <= high:
        raise DataError(f"clip_seconds must be (low, high) with 4 <= low <= high, got {spec.clip_seconds}")
    if spec.esc50_clip_seconds < 4.0 or min(spec.source_clip_seconds) < 4.0:
        raise DataError("esc50_clip_seconds and source_clip_seconds must be at least 4 s (events last up to 3 s)")


def make_demo(
    out_dir: str | Path,
    seed: int = 0,
    n_development: int = 300,
    n_validation: int = 60,
    n_evaluation: int = 60,
    sample_rate: int = 16000,
    clip_seconds: tuple[float, float] = (4.0, 8.0),
    long_clip_fraction: float = 0.05,
    long_clip_seconds: float = 12.0,
    esc50_per_class_per_fold: int = 4,
    esc50_clip_seconds: float = 5.0,
    n_sources: int = 40,
    source_clip_seconds: tuple[float, float] = (4.0, 6.0),
    overwrite: bool = False,
) -> dict[str, Any]:
    """Synthesise the demo corpus under ``out_dir`` (created if needed); deterministic for a given argument set.

    The corpus is built in a hidden temporary folder inside ``out_dir`` and then renamed into place; a stamp
    file (``.demo_complete.json``, holding the arguments) is written last. Rerunning with the same arguments
    on a complete corpus is a no-op (``reused`` is True); other arguments regenerate and replace it.

    Args:
        out_dir: corpus root. Files other than ``clotho/``, ``esc50/``, ``sources/``, ``README.md`` are kept.
        seed: random seed; the same seed and arguments give bit-identical files.
        n_development, n_validation, n_evaluation: clips per Clotho-layout split (5 captions each).
        sample_rate: Hz of every wav (16-bit PCM, mono).
        clip_seconds: (min, max) length of Clotho-layout clips in seconds; a clip grows if its events need it.
        long_clip_fraction, long_clip_seconds: share of Clotho-layout clips that last ``long_clip_seconds``.
        esc50_per_class_per_fold: ESC-50-layout clips per class and fold (10 classes, 5 folds).
        esc50_clip_seconds: length of ESC-50-layout clips in seconds.
        n_sources: isolated single-event clips in ``sources/``.
        source_clip_seconds: (min, max) length of source clips in seconds.
        overwrite: allow replacing ``clotho/``, ``esc50/``, ``sources/`` or ``README.md`` in ``out_dir`` when
            they are not from a complete demo corpus (otherwise that raises :class:`DataError`).

    Returns:
        ``{"out_dir", "seed", "sample_rate", "counts": {split/esc50/sources: n}, "relevance": {"queries",
        "relevant_mean", "relevant_max"}, "paths": {name: str}, "reused": bool, "seconds": float}``.
    """
    started = time.perf_counter()
    spec = DemoSpec(seed, n_development, n_validation, n_evaluation, sample_rate, tuple(clip_seconds),
                    long_clip_fraction, long_clip_seconds, esc50_per_class_per_fold, esc50_clip_seconds,
                    n_sources, tuple(source_clip_seconds))
    _check_spec(spec)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError("demo corpus output exists and is not a directory", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if _stamp_matches(out_dir, spec):
        saved = json.loads((out_dir / STAMP_NAME).read_text(encoding="utf-8"))
        summary = _summary(out_dir, spec, saved["counts"], saved["relevance"], reused=True)
        return {**summary, "seconds": time.perf_counter() - started}
    has_stamp = (out_dir / STAMP_NAME).exists()
    clashing = [e for e in OWNED_ENTRIES if (out_dir / e).exists()]
    if clashing and not has_stamp and not overwrite:
        raise DataError(f"{', '.join(clashing)} already exist and are not a complete demo corpus; "
                        "choose an empty directory or pass overwrite=True", out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=".demo-tmp-", dir=out_dir))
    try:
        counts, stats = _generate(tmp, spec)
        (out_dir / STAMP_NAME).unlink(missing_ok=True)
        _swap_in(tmp, out_dir)
        with atomic_open(out_dir / STAMP_NAME, "w", encoding="utf-8") as handle:
            json.dump({"spec": spec.to_json(), "counts": counts, "relevance": stats}, handle, indent=1)
        os.chmod(out_dir / STAMP_NAME, 0o644)  # mkstemp creates 0600; the corpus is meant to be shared
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**_summary(out_dir, spec, counts, stats, reused=False), "seconds": time.perf_counter() - started}
