"""Separation metrics exactly as the DCASE 2024 Task 9 evaluator computes them (plain numpy there, torch here).

* ``sdr``: the challenge's "SDR" is an SNR, ``10 log10(max(mean(s^2), eps) / max(mean((s_hat - s)^2), eps))`` with
  eps = 1e-10: no projection, not scale-invariant. Equals torchmetrics ``signal_noise_ratio`` (not
  ``signal_distortion_ratio``, a BSS-eval-style filtered quantity).
* ``sdr_improvement``: ``sdr(estimate) - sdr(mixture)`` against the same reference.
* ``si_sdr``: scale-invariant SDR *without* mean removal: ``a = (eps + <s, s_hat>) / (eps + |s|^2)``,
  ``10 log10((eps + |a s|^2) / (eps + |s_hat - a s|^2))`` with eps = float32 machine epsilon; equals torchmetrics
  ``scale_invariant_signal_distortion_ratio(zero_mean=False)``.

All functions take (..., S) tensors, compute in float64 and return (...) in dB; silent inputs give finite values.
An optional ``length`` (...) restricts each row to its first ``length`` samples (zero-padded batches).
"""

from __future__ import annotations

import torch
from torch import Tensor

SDR_EPS = 1e-10  # clamp of both mean powers in the DCASE SDR
SI_SDR_EPS = float(torch.finfo(torch.float32).eps)  # np.finfo(float32).eps in the DCASE SI-SDR


def _valid(x: Tensor, length: Tensor | None) -> tuple[Tensor, Tensor]:
    """(x as float64 with padding zeroed, number of valid samples (...))."""
    x = x.double()
    if length is None:
        return x, torch.full(x.shape[:-1], x.shape[-1], dtype=torch.float64, device=x.device)
    mask = torch.arange(x.shape[-1], device=x.device) < length.to(x.device)[..., None]
    return x * mask, length.to(device=x.device, dtype=torch.float64).clamp(min=1)


def _check(estimate: Tensor, reference: Tensor) -> None:
    if estimate.shape != reference.shape:
        raise ValueError(f"estimate {tuple(estimate.shape)} and reference {tuple(reference.shape)} "
                         "must both be (..., S)")


def sdr(estimate: Tensor, reference: Tensor, length: Tensor | None = None, eps: float = SDR_EPS) -> Tensor:
    """DCASE SDR (an SNR) in dB. Shape: (..., S) -> (...)."""
    _check(estimate, reference)
    ref, n = _valid(reference, length)
    est, _ = _valid(estimate, length)
    signal = (ref.pow(2).sum(-1) / n).clamp(min=eps)
    noise = ((est - ref).pow(2).sum(-1) / n).clamp(min=eps)
    return 10.0 * torch.log10(signal / noise)


def sdr_improvement(estimate: Tensor, reference: Tensor, mixture: Tensor, length: Tensor | None = None) -> Tensor:
    """SDRi = SDR(estimate) - SDR(mixture), in dB. Shape: (..., S) -> (...)."""
    return sdr(estimate, reference, length) - sdr(mixture, reference, length)


def si_sdr(estimate: Tensor, reference: Tensor, length: Tensor | None = None, eps: float = SI_SDR_EPS) -> Tensor:
    """Scale-invariant SDR without mean removal, in dB. Shape: (..., S) -> (...)."""
    _check(estimate, reference)
    ref, _ = _valid(reference, length)
    est, _ = _valid(estimate, length)
    scale = (eps + (ref * est).sum(-1, keepdim=True)) / (eps + ref.pow(2).sum(-1, keepdim=True))
    projection = scale * ref
    return 10.0 * torch.log10((eps + projection.pow(2).sum(-1)) / (eps + (est - projection).pow(2).sum(-1)))


def best_gain_sdr(mixture: Tensor, reference: Tensor, length: Tensor | None = None) -> Tensor:
    """SDR of the best scalar gain applied to the mixture (``g = <x, s> / <x, x>``), in dB.

    Not a challenge metric: it is what a query-blind volume knob achieves, the floor a separator must beat for
    its SDRi to mean separation (the DCASE SDR is not scale-invariant, so a gain alone yields a positive SDRi).
    """
    mix, _ = _valid(mixture, length)
    ref, _ = _valid(reference, length)
    gain = (mix * ref).sum(-1, keepdim=True) / mix.pow(2).sum(-1, keepdim=True).clamp(min=SDR_EPS)
    return sdr(gain * mix, ref, length)


def separation_metrics(estimate: Tensor, reference: Tensor, mixture: Tensor,
                       length: Tensor | None = None) -> dict[str, Tensor]:
    """Per-example metrics in dB, each (...): ``sdr``, ``sdri``, ``si_sdr``, ``si_sdri`` (SI-SDR gain over the
    mixture), ``sdr_mixture`` and ``sdri_best_gain`` (:func:`best_gain_sdr` minus the mixture's SDR)."""
    sdr_est, sdr_mix = sdr(estimate, reference, length), sdr(mixture, reference, length)
    si_est, si_mix = si_sdr(estimate, reference, length), si_sdr(mixture, reference, length)
    return {"sdr": sdr_est, "sdri": sdr_est - sdr_mix, "si_sdr": si_est, "si_sdri": si_est - si_mix,
            "sdr_mixture": sdr_mix, "sdri_best_gain": best_gain_sdr(mixture, reference, length) - sdr_mix}
