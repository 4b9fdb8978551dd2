"""Separation losses on waveforms: L1 (the AudioSep / DCASE reference, ``l1_wav``), negative SNR, negative SI-SDR.

Like every lasr loss, :class:`SeparationLoss` returns a dict of named ``*_loss`` terms that the task sums.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lasr.metrics.separation import SI_SDR_EPS, sdr, si_sdr

LOSS_KINDS = ("l1_wav", "snr", "si_sdr")


class SeparationLoss(nn.Module):
    """Waveform loss between estimate and target.

    Args:
        kind: ``"l1_wav"`` (mean absolute error, reference), ``"snr"`` (minus the DCASE SDR, i.e. minus the SNR)
            or ``"si_sdr"`` (minus SI-SDR without mean removal).
        eps: floor of the powers in the SNR / SI-SDR (keeps silent targets finite).

    Shape:
        estimate, target: (B, S) samples; length: optional (B,) valid samples per row (zero-padded batches).
        Returns ``{"<kind>_loss": scalar}`` (dB terms averaged over the batch).
    """

    def __init__(self, kind: str = "l1_wav", eps: float = SI_SDR_EPS):
        super().__init__()
        if kind not in LOSS_KINDS:
            raise ValueError(f"kind must be one of {LOSS_KINDS}, got {kind!r}")
        self.kind, self.eps = kind, eps

    def forward(self, estimate: Tensor, target: Tensor, length: Tensor | None = None) -> dict[str, Tensor]:
        if estimate.shape != target.shape or estimate.dim() != 2:
            raise ValueError(f"estimate {tuple(estimate.shape)} and target {tuple(target.shape)} must both be (B, S)")
        if self.kind == "l1_wav":
            error = (estimate - target).abs()
            if length is None:
                value = error.mean()
            else:  # mean over the valid samples of the whole batch
                positions = torch.arange(target.shape[-1], device=target.device)
                mask = (positions < length[:, None].to(target.device)).to(error.dtype)
                value = (error * mask).sum() / mask.sum().clamp(min=1)
        elif self.kind == "snr":
            value = -sdr(estimate, target, length, eps=self.eps).mean().to(estimate.dtype)
        else:
            value = -si_sdr(estimate, target, length, eps=self.eps).mean().to(estimate.dtype)
        return {f"{self.kind}_loss": value}
