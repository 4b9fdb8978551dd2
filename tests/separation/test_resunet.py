"""ResUNet30: parameter counts of the reference, shapes for any length, the mask bound, FiLM options."""

from __future__ import annotations

import pytest
import torch

from lasr.models.separation.resunet import ResUNet30

TINY = {"n_fft": 256, "hop_length": 64, "condition_size": 16, "channels": [4, 8, 8]}


def trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_reference_parameter_counts():
    """26.45 M trainable at condition size 512 (21.39 M U-Net + 5.06 M bias layers), as the reference."""
    model = ResUNet30()
    assert trainable(model) == 26_446_917
    assert round(trainable(model) / 1e6, 1) == 26.4
    film = sum(p.numel() for n, p in model.named_parameters() if ".beta" in n)
    assert film == 5_056_128
    assert trainable(ResUNet30(unused_reference_layers=False)) == 26_446_917 - 3_200 - 820_800


def test_32k_stft_changes_only_the_input_batchnorm():
    model = ResUNet30(sample_rate=32000, n_fft=2048, hop_length=320)
    assert trainable(model) == 26_447_941  # the reference's 32 kHz count (bn0 has 1025 bins)


@pytest.mark.parametrize("length", [100, 257, 1000, 4095, 8000])
def test_output_has_the_input_shape_for_any_length(length):
    torch.manual_seed(0)
    model = ResUNet30(**TINY).eval()
    condition = torch.randn(2, 16)
    with torch.no_grad():
        flat = model(torch.randn(2, length) * 0.1, condition)
        channel = model(torch.randn(2, 1, length) * 0.1, condition)
    assert flat.shape == (2, length)
    assert channel.shape == (2, 1, length)
    assert torch.isfinite(flat).all()


def test_mask_cannot_amplify_any_bin():
    torch.manual_seed(1)
    model = ResUNet30(**TINY)
    with torch.no_grad():  # push the mask logits to large values: the sigmoid still bounds the gain by 1
        model.after_conv.bias.copy_(torch.tensor([30.0, 1.0, 0.0]))
    out = model.eval().masked_spectrogram(torch.randn(3, 4000), torch.randn(3, 16))
    assert out["mask"].min() >= 0 and out["mask"].max() <= 1
    assert (out["estimate_mag"] <= out["mixture_mag"] * (1 + 1e-6)).all()
    assert torch.allclose(torch.hypot(out["real"], out["imag"]), out["estimate_mag"], atol=1e-6)
    assert out["real"][..., -1].abs().max() == 0  # the re-added Nyquist bin carries no output


def test_condition_changes_the_output_and_bad_shapes_are_rejected():
    torch.manual_seed(2)
    model = ResUNet30(**TINY).eval()
    mixture = torch.randn(1, 4000)
    with torch.no_grad():
        a, b = model(mixture, torch.randn(1, 16)), model(mixture, torch.randn(1, 16))
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="condition must be"):
        model(mixture, torch.randn(1, 8))
    with pytest.raises(ValueError, match="mixture must be"):
        model(torch.randn(1, 2, 4000), torch.randn(1, 16))


def test_true_film_starts_as_the_reference_bias_model():
    torch.manual_seed(3)
    bias = ResUNet30(**TINY).eval()
    scale = ResUNet30(**TINY, film="scale_bias").eval()
    missing, unexpected = scale.load_state_dict(bias.state_dict(), strict=False)
    assert not unexpected and missing and all(".gamma" in k for k in missing)
    mixture, condition = torch.randn(2, 3000), torch.randn(2, 16)
    with torch.no_grad():
        assert torch.allclose(bias(mixture, condition), scale(mixture, condition), atol=1e-6)
    with pytest.raises(ValueError, match="film"):
        ResUNet30(**TINY, film="gamma")


def test_silent_input_gives_finite_output_and_gradients():
    model = ResUNet30(**TINY).train()
    silent = torch.zeros(2, 4000)
    estimate = model(silent, torch.randn(2, 16))
    loss = (estimate - silent).abs().mean()
    loss.backward()
    assert torch.isfinite(estimate).all() and torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
