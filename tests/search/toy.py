"""An 'identity-like' dual encoder whose audio and text embeddings agree by construction.

Audio: energy in ``n_bands`` equal frequency bands (a pure tone in band k gives ~one-hot k).
Text: ``"band k"`` gives one-hot k. Projections are identities, so a tone's clip is the best match of its
caption without any training: it checks the embed/search plumbing, not learning.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from lasr.models.audio import AudioEncoder
from lasr.models.dual_encoder import DualEncoder
from lasr.models.text import TextEncoder

SAMPLE_RATE = 8000
N_BANDS = 8


class BandEnergy(AudioEncoder):
    def __init__(self, sample_rate: int = SAMPLE_RATE, n_bands: int = N_BANDS):
        super().__init__()
        self.sample_rate, self.output_dim = sample_rate, n_bands

    def forward(self, wave: Tensor, duration: Tensor) -> Tensor:
        power = torch.fft.rfft(wave).abs() ** 2  # (B, F)
        edges = torch.linspace(0, power.shape[1], self.output_dim + 1).long()
        return torch.stack([power[:, a:b].sum(1) for a, b in zip(edges[:-1], edges[1:])], dim=1)


class BandWords(TextEncoder):
    def __init__(self, n_bands: int = N_BANDS):
        super().__init__()
        self.output_dim = n_bands

    def forward(self, captions: list[str]) -> Tensor:
        out = torch.zeros(len(captions), self.output_dim)
        for row, caption in enumerate(captions):
            out[row, int(re.search(r"band (\d+)", caption).group(1))] = 1.0
        return out


def toy_model() -> DualEncoder:
    model = DualEncoder(BandEnergy(), BandWords(), embed_dim=N_BANDS)
    with torch.no_grad():
        for projection in (model.audio_projection, model.text_projection):
            projection.weight.copy_(torch.eye(N_BANDS))
            projection.bias.zero_()
    return model.eval()


def write_tones(folder: Path, seconds: float = 0.5) -> list[Path]:
    """One tone per band (``tone_k.wav`` centred in band k) plus a corrupt ``broken.wav``."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    width = SAMPLE_RATE / 2 / N_BANDS
    paths = []
    for band in range(N_BANDS):
        paths.append(folder / f"tone_{band}.wav")
        sf.write(paths[-1], 0.5 * np.sin(2 * np.pi * (band + 0.5) * width * t), SAMPLE_RATE)
    (folder / "broken.wav").write_bytes(b"RIFF not really a wave file")
    return paths
