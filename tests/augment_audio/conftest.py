"""Small synthetic corpora of pure tones: every clip's frequency is known, so order and pitch can be checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lasr.data.manifest import ClipRecord

RATE = 16000
TONES = (300.0, 500.0, 700.0, 900.0, 1100.0, 1300.0)


def write_clip(folder: Path, name: str, wave: np.ndarray, rate: int, caption: str) -> ClipRecord:
    path = folder / f"{name}.wav"
    sf.write(path, wave.astype(np.float32), rate, subtype="FLOAT")
    return ClipRecord(id=path.name, audio_path=str(path), duration=len(wave) / rate, sample_rate=rate,
                      captions=(caption,), dataset="tones", num_frames=len(wave), channels=1)


def sine(freq: float, seconds: float, rate: int = RATE, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return amplitude * np.sin(2 * np.pi * freq * t)


@pytest.fixture(scope="session")
def tone_records(tmp_path_factory) -> list[ClipRecord]:
    """Six 2 s tones at 16 kHz, captioned ``A tone at <f> hertz.``"""
    folder = tmp_path_factory.mktemp("tones")
    return [write_clip(folder, f"tone_{int(f)}", sine(f, 2.0), RATE, f"A tone at {int(f)} hertz.") for f in TONES]


@pytest.fixture(scope="session")
def awkward_records(tmp_path_factory, tone_records) -> list[ClipRecord]:
    """Tones plus bad input: a full-scale clip, a silent clip, a 0.3 s clip and a 22.05 kHz clip."""
    folder = tmp_path_factory.mktemp("awkward")
    extra = [
        write_clip(folder, "full_scale", sine(440.0, 2.0, amplitude=0.999), RATE, "A tone at full scale."),
        write_clip(folder, "silent", np.zeros(2 * RATE), RATE, "Nothing at all."),
        write_clip(folder, "short", sine(600.0, 0.3), RATE, "A very short tone."),
        write_clip(folder, "other_rate", sine(800.0, 2.0, 22050), 22050, "A tone recorded at another rate."),
    ]
    return list(tone_records) + extra
