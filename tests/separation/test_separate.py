"""`lasr separate`: windowed overlap-add vs a whole-file pass, short inputs, resampling, output formats, the CLI."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from lasr.cli import main
from lasr.data.audio import resample
from lasr.models.separation.checkpoint import LASR_KEY
from lasr.models.separation.resunet import ResUNet30
from lasr.models.separation.streaming import fade_in, plan_windows, separate_file, separate_waveform

RATE = 16000
SMALL = {"n_fft": 512, "hop_length": 160, "condition_size": 16, "channels": [8, 16, 16, 32]}
WHOLE_FILE_TOLERANCE = 1e-2  # relative L2 difference chunked vs whole pass (stated in docs/separation.md)


class ScaleModel(nn.Module):
    """A stand-in separator whose output is local (0.5 x input): windowing must then be exact."""

    sample_rate, hop_length, time_downsample_ratio = RATE, 160, 8

    def __init__(self, gain: float = 0.5):
        super().__init__()
        self.gain = nn.Parameter(torch.tensor(gain))

    def forward(self, mixture, condition):
        return mixture * self.gain


def test_fades_are_complementary():
    ramp = fade_in(1000)
    assert torch.allclose(ramp + ramp.flip(0), torch.ones(1000), atol=1e-6)
    assert 0 < float(ramp[0]) < 1e-5 and float(ramp[-1]) > 1 - 1e-5


def test_overlap_add_is_exact_for_a_local_model():
    wave = torch.randn(RATE * 13 + 123)
    out = separate_waveform(ScaleModel(), wave, torch.zeros(4), window_seconds=2.0, overlap_seconds=0.5)
    assert out.shape == wave.shape
    assert torch.allclose(out, 0.5 * wave, atol=1e-6)


def test_windows_lie_on_the_pooling_grid():
    model = ResUNet30(**SMALL)
    plan = plan_windows(model, RATE * 30, 10.0, 1.0)
    grid = 160 * model.time_downsample_ratio
    assert plan.window % grid == 0 and plan.overlap % grid == 0 and 0 < plan.overlap <= plan.window // 2
    starts = plan.starts()
    assert starts[-1] + plan.window >= RATE * 30 > starts[-1] + plan.overlap


@pytest.fixture(scope="module")
def model() -> ResUNet30:
    torch.manual_seed(0)
    return ResUNet30(**SMALL).eval()


def test_chunked_equals_whole_file_within_tolerance(model):
    t = torch.arange(RATE * 12) / RATE
    wave = 0.3 * torch.sin(2 * torch.pi * 440 * t) * (torch.sin(2 * torch.pi * 0.3 * t) > 0) + 0.05 * torch.randn_like(t)
    condition = torch.randn(16)
    with torch.no_grad():
        whole = model(wave[None], condition[None])[0]
    chunked = separate_waveform(model, wave, condition, window_seconds=4.0, overlap_seconds=1.0)
    relative = float((chunked - whole).norm() / whole.norm())
    assert relative < WHOLE_FILE_TOLERANCE


@pytest.mark.parametrize("length", [50, 300, 4000, RATE * 3])
def test_inputs_shorter_than_a_window_take_one_whole_pass(model, length):
    wave = 0.2 * torch.randn(length)
    condition = torch.randn(16)
    out = separate_waveform(model, wave, condition, window_seconds=10.0)
    with torch.no_grad():
        whole = model(wave[None], condition[None])[0]
    assert out.shape == (length,) and torch.equal(out, whole)
    assert float(out.abs().max()) > 0  # never silence (the reference's chunking returns zeros below 5 s)


def test_file_path_resamples_and_downmixes_like_the_whole_signal(model, tmp_path):
    rng = np.random.default_rng(0)
    stereo = (0.2 * rng.standard_normal((22050 * 7, 2))).astype(np.float32)
    path = tmp_path / "in.wav"
    sf.write(path, stereo, 22050, subtype="FLOAT")
    condition = torch.randn(16)
    out_path = tmp_path / "out.wav"
    report = separate_file(model, condition, path, out_path, window_seconds=2.0, overlap_seconds=0.5)
    written, rate = sf.read(out_path, dtype="float32")
    mono = resample(torch.from_numpy(stereo.mean(axis=1)), 22050, RATE)
    expected = separate_waveform(model, mono, condition, 2.0, 0.5)
    assert rate == RATE and sf.info(out_path).subtype == "FLOAT" and report["seconds"] == pytest.approx(7.0, abs=1e-3)
    assert written.shape == expected.shape
    assert float(np.abs(written - expected.numpy()).max()) < 1e-3


def test_pcm16_output_is_clipped_not_wrapped(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, np.full(RATE, 0.9, dtype=np.float32), RATE)
    report = separate_file(ScaleModel(gain=2.0), torch.zeros(4), path, tmp_path / "o.wav", output_format="pcm16")
    data, _ = sf.read(tmp_path / "o.wav", dtype="int16")
    assert report["clipped"] == RATE and data.min() > 0 and data.max() == 32767


def test_silent_file_gives_finite_silence(model, tmp_path):
    sf.write(tmp_path / "silent.wav", np.zeros(RATE * 2, dtype=np.float32), RATE)
    separate_file(model, torch.randn(16), tmp_path / "silent.wav", tmp_path / "o.wav")
    data, _ = sf.read(tmp_path / "o.wav")
    assert np.isfinite(data).all() and np.abs(data).max() < 1e-3


def lasr_checkpoint(tmp_path, model: ResUNet30, query_spec: dict) -> str:
    path = tmp_path / "sep.ckpt"
    torch.save({"state_dict": {f"separator.{k}": v for k, v in model.state_dict().items()},
                LASR_KEY: {"format": 1, "separator": model.config(), "query": query_spec}}, path)
    return str(path)


def test_cli_single_and_batch_modes(tmp_path, capsys):
    torch.manual_seed(1)
    model = ResUNet30(n_fft=512, hop_length=160, condition_size=384, channels=[4, 8])
    ckpt = lasr_checkpoint(tmp_path, model, {"class_path": "lasr.models.separation.query.HFTextQuery",
                                             "init_args": {"name_or_path": "minilm"}})
    sf.write(tmp_path / "a.wav", (0.1 * np.random.default_rng(1).standard_normal(RATE * 3)).astype(np.float32), RATE)
    assert main(["separate", "--ckpt", ckpt, "--audio", str(tmp_path / "a.wav"), "--text", "a dog barks",
                 "--out", str(tmp_path / "dog.wav")]) == 0
    assert sf.info(tmp_path / "dog.wav").frames == RATE * 3
    with open(tmp_path / "jobs.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["audio", "text"], ["a.wav", "a dog barks"], ["a.wav", "rain falls"]])
    assert main(["separate", "--ckpt", ckpt, "--csv", str(tmp_path / "jobs.csv"), "--out", str(tmp_path / "batch"),
                 "--format", "pcm16"]) == 0
    assert sorted(p.name for p in (tmp_path / "batch").iterdir()) == ["a_a_dog_barks.wav", "a_rain_falls.wav"]
    assert main(["separate", "--ckpt", ckpt, "--audio", str(tmp_path / "a.wav"), "--text", "  ",
                 "--out", str(tmp_path / "x.wav")]) == 2
    assert "empty text query" in capsys.readouterr().err


def test_cli_runs_a_published_checkpoint_layout(tmp_path, monkeypatch):
    """An AudioSep-layout Lightning checkpoint (CLAP query tower) separates without any lasr metadata."""
    from lasr.models.separation import query as query_module
    from lasr.models.separation.checkpoint import lasr_to_published

    tiny = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
            "projection_dim": 512, "vocab_size": 300, "max_position_embeddings": 80}
    original = query_module.ClapTextQuery
    monkeypatch.setattr(query_module, "ClapTextQuery", lambda path=None: original(path, random_config=tiny))
    model = ResUNet30(channels=[4, 4, 4, 4, 4, 4])  # 16 kHz, 1024 / 160: the DCASE baseline settings
    state = lasr_to_published(model) | {"query_encoder.model.dummy": torch.zeros(2)}
    torch.save({"state_dict": state}, tmp_path / "baseline.ckpt")
    sf.write(tmp_path / "a.wav", (0.1 * np.random.default_rng(2).standard_normal(RATE * 2)).astype(np.float32), RATE)
    assert main(["separate", "--ckpt", str(tmp_path / "baseline.ckpt"), "--audio", str(tmp_path / "a.wav"),
                 "--text", "a dog barks", "--out", str(tmp_path / "o.wav")]) == 0
    assert sf.info(tmp_path / "o.wav").frames == RATE * 2
