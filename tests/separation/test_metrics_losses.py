"""DCASE separation metrics (hand-computed values, torchmetrics equivalence, padding, silence) and the losses."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.functional.audio import (
    scale_invariant_signal_distortion_ratio,
    signal_distortion_ratio,
    signal_noise_ratio,
)

from lasr.losses.separation import SeparationLoss
from lasr.metrics.separation import best_gain_sdr, sdr, sdr_improvement, separation_metrics, si_sdr


def test_hand_computed_values():
    reference = torch.tensor([1.0, 1.0, 1.0, 1.0])
    estimate = torch.tensor([1.0, 1.0, 1.0, 0.0])
    # SDR: mean(s^2) = 1, mean(err^2) = 1/4 -> 10 log10(4)
    assert float(sdr(estimate, reference)) == pytest.approx(10 * math.log10(4), abs=1e-9)
    # SI-SDR: a = 3/4; |a s|^2 = 2.25, |s_hat - a s|^2 = 3 * 0.0625 + 0.5625 = 0.75 -> 10 log10(3)
    assert float(si_sdr(estimate, reference)) == pytest.approx(10 * math.log10(3), abs=1e-5)
    mixture = torch.tensor([1.0, 1.0, 1.0, 3.0])  # error energy 4/4 = 1 -> SDR 0 dB
    assert float(sdr_improvement(estimate, reference, mixture)) == pytest.approx(10 * math.log10(4), abs=1e-9)


def test_sdr_is_not_scale_invariant_but_si_sdr_is():
    torch.manual_seed(0)
    reference = torch.randn(16000)
    estimate = reference + 0.1 * torch.randn(16000)
    assert float(si_sdr(0.5 * estimate, reference)) == pytest.approx(float(si_sdr(estimate, reference)), abs=1e-6)
    assert float(sdr(0.5 * estimate, reference)) < float(sdr(estimate, reference)) - 3


def test_equal_to_torchmetrics_snr_and_si_sdr_without_mean_removal():
    torch.manual_seed(1)
    reference = torch.randn(4, 8000) + 0.3  # a DC offset makes zero_mean matter
    estimate = reference + 0.5 * torch.randn(4, 8000)
    assert torch.allclose(sdr(estimate, reference).float(), signal_noise_ratio(estimate, reference), atol=1e-4)
    assert torch.allclose(si_sdr(estimate, reference).float(),
                          scale_invariant_signal_distortion_ratio(estimate, reference, zero_mean=False), atol=1e-4)
    assert not torch.allclose(si_sdr(estimate, reference).float(),
                              scale_invariant_signal_distortion_ratio(estimate, reference, zero_mean=True), atol=1e-2)
    bss = signal_distortion_ratio(estimate[:1], reference[:1])  # a different quantity: not what DCASE reports
    assert abs(float(bss) - float(sdr(estimate[:1], reference[:1]))) > 1e-3


def test_length_restricts_each_row_to_its_valid_samples():
    torch.manual_seed(2)
    reference, estimate = torch.randn(2, 1000), torch.randn(2, 1000)
    length = torch.tensor([1000, 600])
    padded_ref, padded_est = reference.clone(), estimate.clone()
    padded_ref[1, 600:] = 0
    padded_est[1, 600:] = 5.0  # garbage beyond the valid part must not count
    masked = sdr(padded_est, padded_ref, length)
    assert float(masked[1]) == pytest.approx(float(sdr(estimate[1, :600], reference[1, :600])), abs=1e-9)
    assert float(si_sdr(padded_est, padded_ref, length)[1]) == pytest.approx(
        float(si_sdr(estimate[1, :600], reference[1, :600])), abs=1e-9)


def test_silent_inputs_give_finite_metrics():
    zeros = torch.zeros(3, 500)
    noise = torch.randn(3, 500)
    metrics = separation_metrics(zeros, zeros, noise)
    metrics |= {f"b_{k}": v for k, v in separation_metrics(noise, zeros, zeros).items()}
    assert all(torch.isfinite(v).all() for v in metrics.values())
    assert float(sdr(zeros[0], zeros[0])) == 0.0  # both powers floored at 1e-10


def test_best_gain_baseline_is_positive_for_uncorrelated_noise():
    torch.manual_seed(3)
    source, noise = torch.randn(20000), torch.randn(20000)
    mixture = source + noise  # 0 dB: the best gain (1/2) alone improves the SNR-form SDR by ~3 dB
    gain_sdri = float(best_gain_sdr(mixture, source) - sdr(mixture, source))
    assert gain_sdri == pytest.approx(10 * math.log10(2), abs=0.1)


@pytest.mark.parametrize("kind", ["l1_wav", "snr", "si_sdr"])
def test_losses_are_finite_decrease_with_quality_and_mask_padding(kind):
    torch.manual_seed(4)
    loss = SeparationLoss(kind)
    target = torch.randn(2, 4000)
    good, bad = target + 0.01 * torch.randn(2, 4000), target + torch.randn(2, 4000)
    name = f"{kind}_loss"
    assert float(loss(good, target)[name]) < float(loss(bad, target)[name])
    silent = loss(torch.zeros(2, 4000), torch.zeros(2, 4000))[name]
    assert torch.isfinite(silent)
    padded = good.clone()
    padded[1, 3000:] = 9.0
    length = torch.tensor([4000, 3000])
    target_padded = target.clone()
    target_padded[1, 3000:] = 0
    assert float(loss(padded, target_padded, length)[name]) < float(loss(bad, target)[name])


def test_l1_is_the_reference_mean_absolute_error_and_bad_kinds_fail():
    estimate, target = torch.tensor([[0.0, 1.0, 3.0]]), torch.tensor([[1.0, 1.0, 1.0]])
    assert float(SeparationLoss()(estimate, target)["l1_wav_loss"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="kind"):
        SeparationLoss("sdr")
    with pytest.raises(ValueError, match=r"\(B, S\)"):
        SeparationLoss()(torch.zeros(3), torch.zeros(3))
