"""Published AudioSep / DCASE baseline layout: strict loading, name mapping, STFT mismatch errors, lasr checkpoints."""

from __future__ import annotations

import pytest
import torch

from lasr.models.separation.checkpoint import (
    LASR_KEY,
    SeparatorCheckpointError,
    lasr_to_published,
    load_separator,
    load_state_into,
    load_weights,
    published_to_lasr,
)
from lasr.models.separation.resunet import ResUNet30

REFERENCE_CHANNELS = (32, 64, 128, 256, 384, 384)


def _bn(out: dict, name: str, channels: int) -> None:
    for suffix in ("weight", "bias", "running_mean", "running_var"):
        out[f"{name}.{suffix}"] = torch.randn(channels)
    out[f"{name}.num_batches_tracked"] = torch.tensor(7)


def _conv_block(out: dict, film: dict, name: str, c_in: int, c_out: int, cond: int) -> None:
    _bn(out, f"base.{name}.bn1", c_in)
    _bn(out, f"base.{name}.bn2", c_out)
    out[f"base.{name}.conv1.weight"] = torch.randn(c_out, c_in, 3, 3)
    out[f"base.{name}.conv2.weight"] = torch.randn(c_out, c_out, 3, 3)
    if c_in != c_out:
        out[f"base.{name}.shortcut.weight"] = torch.randn(c_out, c_in, 1, 1)
        out[f"base.{name}.shortcut.bias"] = torch.randn(c_out)
    film_name = name.replace(".", "->")
    for beta, channels in (("beta1", c_in), ("beta2", c_out)):
        film[f"film.{film_name}->{beta}.weight"] = torch.randn(channels, cond)
        film[f"film.{film_name}->{beta}.bias"] = torch.randn(channels)


def published_state(n_fft: int = 1024, channels=REFERENCE_CHANNELS, cond: int = 512) -> dict[str, torch.Tensor]:
    """A state dict with the key layout of Audio-AGI's ResUNet30 (written from the reference's module tree, not
    from lasr's mapping code), filled with random values."""
    bins = n_fft // 2 + 1
    out: dict[str, torch.Tensor] = {
        "base.stft.conv_real.weight": torch.randn(bins, 1, n_fft),
        "base.stft.conv_imag.weight": torch.randn(bins, 1, n_fft),
        "base.istft.conv_real.weight": torch.randn(n_fft, n_fft, 1),
        "base.istft.conv_imag.weight": torch.randn(n_fft, n_fft, 1),
        "base.istft.ola_window": torch.rand(n_fft),
        "base.pre_conv.weight": torch.randn(channels[0], 1, 1, 1), "base.pre_conv.bias": torch.randn(channels[0]),
        "base.after_conv.weight": torch.randn(3, channels[0], 1, 1), "base.after_conv.bias": torch.randn(3),
    }
    _bn(out, "base.bn0", bins)
    film: dict[str, torch.Tensor] = {}
    widths = [channels[0], *channels]
    depth = len(channels)
    for i in range(depth):
        _conv_block(out, film, f"encoder_block{i + 1}.conv_block1", widths[i], widths[i + 1], cond)
    _conv_block(out, film, f"conv_block{depth + 1}a.conv_block1", channels[-1], channels[-1], cond)
    for i in range(depth):
        c_in = widths[depth] if i == 0 else widths[depth - i + 1]
        c_out = widths[depth - i]
        name = f"decoder_block{i + 1}"
        out[f"base.{name}.conv1.weight"] = torch.randn(c_in, c_out, *((1, 2) if i == 0 else (2, 2)))
        _bn(out, f"base.{name}.bn1", c_in)
        _bn(out, f"base.{name}.bn2", c_in)  # built by the reference, never used
        for beta in ("beta1", "beta2"):
            film[f"film.{name}->{beta}.weight"] = torch.randn(c_in, cond)
            film[f"film.{name}->{beta}.bias"] = torch.randn(c_in)
        _conv_block(out, film, f"{name}.conv_block2", 2 * c_out, c_out, cond)
    return out | film


def as_lightning(state: dict[str, torch.Tensor]) -> dict:
    """How AudioSep's LightningModule saves it: separator under ``ss_model.``, plus the whole CLAP model."""
    wrapped = {f"ss_model.{k}": v for k, v in state.items()}
    wrapped["query_encoder.model.text_branch.embeddings.position_ids"] = torch.arange(4)
    return {"state_dict": wrapped, "pytorch-lightning_version": "2.0.0"}


def test_published_layout_has_the_reference_parameter_count_and_loads_strictly():
    state = published_state()
    parameters = sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var",
                                                                             "num_batches_tracked", "ola_window")))
    assert parameters == 29_594_693  # total incl. the frozen STFT/ISTFT kernels, as reported for the reference
    model = ResUNet30()
    load_state_into(model, as_lightning(state)["state_dict"], "published")  # strict=True inside
    ours = model.state_dict()
    pairs = {"encoder_block3.conv_block1.conv2.weight": "base.encoder_block3.conv_block1.conv2.weight",
             "decoder_block2.conv_block2.beta1.bias": "film.decoder_block2->conv_block2->beta1.bias",
             "conv_block7a.conv_block1.beta2.weight": "film.conv_block7a->conv_block1->beta2.weight",
             "decoder_block6.bn2.running_mean": "base.decoder_block6.bn2.running_mean"}
    assert all(torch.equal(ours[a], state[b]) for a, b in pairs.items())
    assert torch.equal(ours["bn0.running_var"], state["base.bn0.running_var"])


def test_export_to_published_layout_round_trips():
    model = ResUNet30(channels=[8, 8, 16, 16, 16, 16], condition_size=32)
    exported = lasr_to_published(model)
    expected = published_state(channels=[8, 8, 16, 16, 16, 16], cond=32)
    assert {k[len("ss_model."):] for k in exported} == set(expected)
    assert all(exported["ss_model." + k].shape == v.shape for k, v in expected.items())
    clone = ResUNet30(channels=[8, 8, 16, 16, 16, 16], condition_size=32)
    load_state_into(clone, exported)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), clone.state_dict().values()))
    assert set(published_to_lasr(exported)) == set(model.state_dict())


def test_exported_stft_kernels_compute_the_stft():
    """The torchlibrosa-style kernels we export compute the same STFT as our torch.stft front end."""
    model = ResUNet30(n_fft=256, hop_length=64, condition_size=8, channels=[4, 4])
    kernels = lasr_to_published(model, prefix="")
    wave = torch.randn(1, 2000)
    padded = torch.nn.functional.pad(wave[:, None], (128, 128), mode="reflect")
    real = torch.nn.functional.conv1d(padded, kernels["base.stft.conv_real.weight"], stride=64)  # (1, F, T)
    mag, cos, _ = model.spectrogram(wave)
    assert torch.allclose(real[0].T, (mag * cos)[0, 0], atol=1e-3)


def test_lightning_checkpoint_builds_the_dcase_separator(tmp_path):
    path = tmp_path / "audiosep_16k,baseline,step=200000.ckpt"
    torch.save(as_lightning(published_state(channels=[8, 8, 16, 16, 16, 16], cond=32)), path)
    loaded = load_separator(path)
    assert loaded.kind == "published" and loaded.query is None
    assert (loaded.model.sample_rate, loaded.model.n_fft, loaded.model.hop_length) == (16000, 1024, 160)
    assert loaded.model.channels == [8, 8, 16, 16, 16, 16] and loaded.model.condition_size == 32
    assert not loaded.model.training


def test_32k_audiosep_checkpoint_into_a_16k_model_names_both_settings(tmp_path):
    path = tmp_path / "audiosep_base_4M_steps.ckpt"
    torch.save(as_lightning(published_state(n_fft=2048, channels=[4, 4, 4, 4, 4, 4], cond=8)), path)
    model = ResUNet30(channels=[4, 4, 4, 4, 4, 4], condition_size=8)
    with pytest.raises(SeparatorCheckpointError) as err:
        load_weights(model, path)
    message = str(err.value)
    assert "sample_rate=32000, n_fft=2048, hop_length=320" in message and "AudioSep" in message
    assert "sample_rate=16000, n_fft=1024, hop_length=160" in message
    assert load_separator(path).model.sample_rate == 32000  # built from the file, it is a 32 kHz model


def test_optional_layers_adapt_when_loading_published_weights():
    state = published_state(channels=[4, 4, 8, 8, 8, 8], cond=8)
    lean = ResUNet30(channels=[4, 4, 8, 8, 8, 8], condition_size=8, unused_reference_layers=False)
    load_state_into(lean, state)  # unused decoder layers of the file are dropped
    film = ResUNet30(channels=[4, 4, 8, 8, 8, 8], condition_size=8, film="scale_bias")
    load_state_into(film, state)  # gammas missing from the file keep their identity initialisation
    assert all(float(v.abs().max()) == 0 for k, v in film.state_dict().items() if ".gamma" in k)
    with pytest.raises(SeparatorCheckpointError, match="shapes differ"):
        load_state_into(ResUNet30(channels=[4, 4, 8, 8, 8, 8], condition_size=16), state)


def test_lasr_checkpoint_round_trip_and_stft_mismatch(tmp_path):
    model = ResUNet30(n_fft=256, hop_length=64, condition_size=8, channels=[4, 8])
    path = tmp_path / "lasr.ckpt"
    torch.save({"state_dict": {f"separator.{k}": v for k, v in model.state_dict().items()},
                LASR_KEY: {"separator": model.config(), "query": {"class_path": "x.Y", "init_args": {}}}}, path)
    loaded = load_separator(path)
    assert loaded.kind == "lasr" and loaded.query["class_path"] == "x.Y"
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()))
    other = ResUNet30(n_fft=256, hop_length=128, condition_size=8, channels=[4, 8])
    with pytest.raises(SeparatorCheckpointError, match="hop_length=64.*hop_length=128"):
        load_weights(other, path)
    with pytest.raises(SeparatorCheckpointError, match="not found"):
        load_separator(tmp_path / "missing.ckpt")
