"""Dual encoder: audio and text towers, each followed by one linear projection into a shared L2-normalised space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lasr.models.audio import AudioEncoder
from lasr.models.text import TextEncoder


class DualEncoder(nn.Module):
    """Audio and text towers with ``Linear`` projections to ``embed_dim`` and a temperature ``tau``.

    As the DCASE 2025 Task 6 baseline: 1024-d shared space, a single linear layer per modality (no MLP),
    similarities are dot products of unit vectors scaled by ``1 / |tau|`` with ``tau = 0.05`` fixed by default.

    Args:
        audio_encoder, text_encoder: the towers.
        embed_dim: size of the shared space.
        tau: initial temperature (must be non-zero).
        tau_trainable: whether ``tau`` receives gradients.
    """

    def __init__(
        self,
        audio_encoder: AudioEncoder,
        text_encoder: TextEncoder,
        embed_dim: int = 1024,
        tau: float = 0.05,
        tau_trainable: bool = False,
    ):
        super().__init__()
        if tau == 0:
            raise ValueError("tau must be non-zero (logits are cosine similarities divided by |tau|)")
        self.audio_encoder = audio_encoder
        self.text_encoder = text_encoder
        self.embed_dim = embed_dim
        self.audio_projection = nn.Linear(audio_encoder.output_dim, embed_dim)
        self.text_projection = nn.Linear(text_encoder.output_dim, embed_dim)
        self.tau = nn.Parameter(torch.tensor(float(tau)), requires_grad=tau_trainable)

    @property
    def audio_sample_rate(self) -> int:
        """Hz that ``encode_audio`` expects."""
        return self.audio_encoder.sample_rate

    @property
    def logit_scale(self) -> Tensor:
        """Scalar ``1 / |tau|`` that multiplies cosine similarities."""
        return 1.0 / self.tau.abs()

    def encode_audio(self, wave: Tensor, duration: Tensor) -> Tensor:
        """(B, S) samples at ``audio_sample_rate`` and (B,) seconds -> (B, embed_dim) unit vectors."""
        return F.normalize(self.audio_projection(self.audio_encoder(wave, duration)), dim=-1)

    def encode_text(self, captions: list[str]) -> Tensor:
        """B captions -> (B, embed_dim) unit vectors."""
        return F.normalize(self.text_projection(self.text_encoder(captions)), dim=-1)

    def forward(self, wave: Tensor, duration: Tensor, captions: list[str]) -> tuple[Tensor, Tensor]:
        """Both embeddings: ((B, embed_dim) audio, (B', embed_dim) text)."""
        return self.encode_audio(wave, duration), self.encode_text(captions)
