"""BEATs and EAT towers: shapes, segmenting and padding, frontends, official checkpoint layouts, configs, errors.

The expected parameter names below are written out from the official code (microsoft/unilm beats/BEATs.py,
backbone.py; cwx-worst-one/EAT models/EAT_pretraining.py, images.py, base.py, modules.py), independently of lasr.
"""

from __future__ import annotations

import contextlib
import logging
import math

import numpy as np
import pytest
import torch
import torchaudio.compliance.kaldi as kaldi

from lasr.errors import LasrError
from lasr.models.audio import AudioEncoder
from lasr.models.audio.beats import BEATsEncoder
from lasr.models.audio.eat import EATEncoder

RATE = 16000
TINY_BEATS = dict(
    embed_dim=16, encoder_layers=2, encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_attention_heads=4,
    conv_pos=16, conv_pos_groups=4, num_buckets=32, max_distance=64,
)
TINY_BEATS_CFG = dict(  # what an official "cfg" of that size would hold (BEATs_iter3 style, plus non-arch keys)
    TINY_BEATS, input_patch_size=16, conv_bias=False, activation_fn="gelu", layer_norm_first=False, deep_norm=True,
    relative_position_embedding=True, gru_rel_pos=True, dropout=0.1, encoder_layerdrop=0.05,
    layer_wise_gradient_decay_ratio=0.6, finetuned_model=False,
)
POSITIONS = "modality_encoders.IMAGE.fixed_positional_encoder.positions"
TINY_EAT = dict(embed_dim=32, depth=2, num_heads=4, allow_random_init=True)
DURATIONS = (3.0, 12.5, 25.0)  # 1, 2 and 3 segments of 10 s


@contextlib.contextmanager
def captured_warnings(logger_name: str):
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


def mixed_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 25 s) noise clips of DURATIONS seconds, zero after each clip's end."""
    generator = torch.Generator().manual_seed(seed)
    wave = 0.1 * torch.randn(len(DURATIONS), round(max(DURATIONS) * RATE), generator=generator)
    for row, seconds in enumerate(DURATIONS):
        wave[row, round(seconds * RATE):] = 0
    return wave, torch.tensor(DURATIONS)


def tone(frequency: float, seconds: float = 2.0) -> torch.Tensor:
    t = torch.arange(round(seconds * RATE)) / RATE
    return 0.5 * torch.sin(2 * math.pi * frequency * t)


def kaldi_bin_nearest(frequency: float, bins: int = 128, low: float = 20.0, high: float = RATE / 2) -> int:
    """Mel bin whose centre (Kaldi mel scale, 1127 ln(1 + f / 700)) is nearest to ``frequency``."""
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    step = (mel(high) - mel(low)) / (bins + 1)
    centres = [700.0 * (math.exp((mel(low) + (m + 1) * step) / 1127.0) - 1.0) for m in range(bins)]
    return min(range(bins), key=lambda m: abs(centres[m] - frequency))


def run_counting_segments(encoder, backbone, wave, duration):
    sizes = []
    hook = backbone.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[0]))
    try:
        with torch.no_grad():
            return encoder(wave, duration), sizes
    finally:
        hook.remove()


@pytest.fixture(scope="module")
def beats():
    torch.manual_seed(0)
    return BEATsEncoder(**TINY_BEATS, allow_random_init=True).eval()


@pytest.fixture(scope="module")
def eat():
    torch.manual_seed(0)
    return EATEncoder(**TINY_EAT).eval()


# ---------------------------------------------------------------- official key layouts, written out by hand


def official_beats_keys(layers: int) -> set[str]:
    keys = {
        "patch_embedding.weight", "layer_norm.weight", "layer_norm.bias", "post_extract_proj.weight",
        "post_extract_proj.bias", "encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v",
        "encoder.pos_conv.0.bias", "encoder.layer_norm.weight", "encoder.layer_norm.bias",
    }
    for i in range(layers):
        layer = f"encoder.layers.{i}."
        for linear in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                       "self_attn.grep_linear", "self_attn_layer_norm", "fc1", "fc2", "final_layer_norm"):
            keys |= {layer + linear + ".weight", layer + linear + ".bias"}
        keys |= {layer + "self_attn.relative_attention_bias.weight", layer + "self_attn.grep_a"}
    return keys


def official_eat_keys(depth: int) -> set[str]:
    front = "modality_encoders.IMAGE."
    keys = {
        front + "local_encoder.proj.weight", front + "local_encoder.proj.bias", front + "extra_tokens",
        front + "fixed_positional_encoder.positions", front + "context_encoder.norm.weight",
        front + "context_encoder.norm.bias",
    }
    for i in range(depth):
        for name in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2"):
            keys |= {f"blocks.{i}.{name}.weight", f"blocks.{i}.{name}.bias"}
    return keys


def test_beats_parameter_names_and_shapes_are_the_official_ones(beats):
    state = beats.beats.state_dict()
    assert set(state) == official_beats_keys(2)
    for name in ("encoder.layers.0.self_attn.k_proj.weight", "patch_embedding.weight", "post_extract_proj.weight",
                 "encoder.pos_conv.0.weight_g", "encoder.layers.1.self_attn.relative_attention_bias.weight"):
        assert name in state
    assert state["patch_embedding.weight"].shape == (16, 1, 16, 16)  # conv_bias False: no patch_embedding.bias
    assert state["encoder.pos_conv.0.weight_g"].shape == (1, 1, 16)  # weight_norm(dim=2): one gain per tap
    assert state["encoder.pos_conv.0.weight_v"].shape == (32, 8, 16)  # groups 4
    assert state["encoder.layers.0.self_attn.grep_linear.weight"].shape == (8, 8)  # head_dim 8 -> 8 gate units
    assert state["encoder.layers.0.self_attn.grep_a"].shape == (1, 4, 1, 1)
    assert state["encoder.layers.0.self_attn.relative_attention_bias.weight"].shape == (32, 4)


def test_eat_parameter_names_and_shapes_are_the_official_ones(eat):
    state = eat.eat.state_dict()
    assert set(state) == official_eat_keys(2)
    assert state["modality_encoders.IMAGE.local_encoder.proj.weight"].shape == (32, 1, 16, 16)
    assert state["modality_encoders.IMAGE.fixed_positional_encoder.positions"].shape == (1, 64 * 8, 32)
    assert state["modality_encoders.IMAGE.extra_tokens"].shape == (1, 1, 32)
    assert state["blocks.0.attn.qkv.weight"].shape == (96, 32)


def test_full_size_models_have_the_published_parameter_counts():
    """BEATs_iter3 ~90 M; EAT-base 88 M counts its 2.59 M pre-training CNN decoder, which the encoder drops."""
    with captured_warnings("lasr.models.audio"):
        beats_params = sum(p.numel() for p in BEATsEncoder(allow_random_init=True).parameters())
        eat_params = sum(p.numel() for p in EATEncoder(allow_random_init=True).parameters())
    assert 89.5e6 < beats_params < 91e6
    decoder = 6 * (768 * 48 * 3 * 3 + 768) + 768 * 768 + 768  # 6 grouped 3x3 convs (groups 16) + projection
    assert abs(eat_params + decoder - 88e6) < 0.5e6
    assert eat_params == 85_254_144


# ---------------------------------------------------------------- forward shapes and segmenting


@pytest.mark.parametrize("name", ["beats", "eat"])
def test_forward_runs_only_real_segments_in_one_batch(name, beats, eat):
    encoder, backbone = (beats, beats.beats) if name == "beats" else (eat, eat.eat)
    wave, duration = mixed_batch()
    embedding, batch_sizes = run_counting_segments(encoder, backbone, wave, duration)
    assert encoder.sample_rate == RATE and encoder.output_dim == 32
    assert embedding.shape == (3, 32) and torch.isfinite(embedding).all()
    assert batch_sizes == [6]  # 1 + 2 + 3 segments


@pytest.mark.parametrize("name", ["beats", "eat"])
def test_short_clip_embedding_does_not_depend_on_batch_padding(name, beats, eat):
    encoder = beats if name == "beats" else eat
    wave, duration = mixed_batch()
    with torch.no_grad():
        batched = encoder(wave, duration)
        alone = encoder(wave[:1, : round(3.0 * RATE)], duration[:1])
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_beats_short_clip_equals_the_model_on_its_unpadded_audio(beats):
    wave, duration = mixed_batch()
    with torch.no_grad():
        batched = beats(wave, duration)
        tokens, padding = beats.beats(beats.fbank(wave[:1, : round(3.0 * RATE)]))
    assert padding is None
    assert torch.allclose(tokens.mean(dim=1)[0], batched[0], atol=1e-5)


def test_beats_padding_mask_hides_samples_after_the_clip(beats):
    wave, duration = mixed_batch()
    noisy = wave.clone()
    noisy[0, round(3.0 * RATE):] = 0.3  # not zero padding: must not matter when masked
    unmasked = BEATsEncoder(**TINY_BEATS, allow_random_init=True, mask_padding=False).eval()
    unmasked.load_state_dict(beats.state_dict())
    with torch.no_grad():
        assert torch.allclose(beats(noisy, duration)[0], beats(wave, duration)[0], atol=1e-5)
        assert not torch.allclose(unmasked(noisy, duration)[0], unmasked(wave, duration)[0], atol=1e-3)


def test_pooling_options(beats, eat):
    wave, duration = mixed_batch()
    beats_max = BEATsEncoder(**TINY_BEATS, allow_random_init=True, pooling="max").eval()
    beats_max.load_state_dict(beats.state_dict())
    eat_mean = EATEncoder(**TINY_EAT, pooling="mean").eval()
    eat_mean.load_state_dict(eat.state_dict())
    with torch.no_grad():
        assert not torch.allclose(beats_max(wave, duration), beats(wave, duration))
        assert not torch.allclose(eat_mean(wave, duration), eat(wave, duration))
    with pytest.raises(ValueError, match="pooling"):
        BEATsEncoder(**TINY_BEATS, allow_random_init=True, pooling="first")
    with pytest.raises(ValueError, match="pooling"):
        EATEncoder(**TINY_EAT, pooling="max")


def test_gradients_reach_the_patch_embedding(beats, eat):
    wave, duration = mixed_batch()
    for encoder, first in ((beats, beats.beats.patch_embedding.weight),
                           (eat, eat.eat.modality_encoders["IMAGE"].local_encoder.proj.weight)):
        encoder.train()
        try:
            encoder.zero_grad()
            weights = torch.randn(2, 32, generator=torch.Generator().manual_seed(5))  # a plain sum of a
            # LayerNorm output is constant, so it would have no gradient
            (encoder(wave[:2, : 5 * RATE], torch.tensor([5.0, 2.0])) * weights).sum().backward()
            assert first.grad is not None and first.grad.abs().sum() > 0
        finally:
            encoder.eval()
            encoder.zero_grad()


# ---------------------------------------------------------------- frontends


def test_real_samples_per_segment_follows_the_segment_cut():
    from lasr.models.audio._frontend import kaldi_frames, real_samples_per_segment

    real = real_samples_per_segment(torch.tensor(DURATIONS), torch.tensor([1, 2, 3]), 10 * RATE, RATE)
    assert real.tolist() == [3 * RATE, 10 * RATE, round(2.5 * RATE), 10 * RATE, 10 * RATE, 5 * RATE]
    assert kaldi_frames(torch.tensor([0, 399, 400, 560, 10 * RATE]), 400, 160).tolist() == [0, 0, 1, 2, 998]


def test_beats_frontend_scales_and_normalises_kaldi_fbank(beats):
    clip = 0.2 * torch.randn(10 * RATE, generator=torch.Generator().manual_seed(3))
    expected = kaldi.fbank(clip[None] * 2**15, num_mel_bins=128, sample_frequency=RATE, frame_length=25,
                           frame_shift=10)
    expected = (expected - 15.41663) / (2 * 6.55582)
    got = beats.fbank(clip[None])[0]
    assert got.shape == (998, 128)  # 10 s: 1 + (160000 - 400) // 160 frames
    assert torch.allclose(got, expected, atol=1e-5)


def test_eat_frontend_removes_mean_pads_to_1024_frames_and_normalises(eat):
    clip = 0.2 * torch.randn(3 * RATE, generator=torch.Generator().manual_seed(4)) + 0.05  # DC offset
    segment = torch.nn.functional.pad(clip, (0, 7 * RATE))  # as cut from a 3 s clip: zero after the clip's end
    mel = kaldi.fbank((clip - clip.mean())[None], htk_compat=True, sample_frequency=RATE, use_energy=False,
                      window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10)
    expected = (torch.nn.functional.pad(mel, (0, 0, 0, 1024 - mel.shape[0])) + 4.268) / (2 * 4.569)
    got = eat.fbank(segment[None], torch.tensor([clip.numel()]))[0]
    assert got.shape == (1024, 128)
    assert torch.allclose(got, expected, atol=1e-5)
    assert torch.allclose(got[-1], torch.full((128,), 4.268 / (2 * 4.569)))  # padded frames: log-mel 0


@pytest.mark.parametrize("name", ["beats", "eat"])
@pytest.mark.parametrize("frequency", [440.0, 3000.0])
def test_tone_peaks_in_its_mel_bin(name, frequency, beats, eat):
    wave = tone(frequency)
    if name == "beats":
        spectrogram = beats.fbank(wave[None])[0]
    else:
        spectrogram = eat.fbank(wave[None], torch.tensor([wave.numel()]))[0, :190]  # real frames only
    assert int(spectrogram.mean(dim=0).argmax()) == kaldi_bin_nearest(frequency)


# ---------------------------------------------------------------- loading official checkpoint layouts


def other_weights(encoder_class, tiny, attribute):
    torch.manual_seed(123)
    with captured_warnings("lasr.models.audio"):
        return getattr(encoder_class(**dict(tiny, allow_random_init=True)), attribute).state_dict()


def assert_loaded(module, state):
    for name, tensor in module.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_beats_loads_official_checkpoint_strictly(tmp_path):
    state = other_weights(BEATsEncoder, TINY_BEATS, "beats")
    path = tmp_path / "BEATs_tiny.pt"
    torch.save({"cfg": TINY_BEATS_CFG, "model": state}, path)
    with captured_warnings("lasr.models.audio.beats") as records:
        loaded = BEATsEncoder(checkpoint=str(path), **TINY_BEATS)
    assert_loaded(loaded.beats, state)
    assert not records  # no random-weights warning


def test_beats_fine_tuned_checkpoint_drops_its_classifier(tmp_path):
    state = dict(other_weights(BEATsEncoder, TINY_BEATS, "beats"))
    state.update({"predictor.weight": torch.zeros(527, 32), "predictor.bias": torch.zeros(527)})
    path = tmp_path / "BEATs_tiny_finetuned.pt"
    cfg = dict(TINY_BEATS_CFG, finetuned_model=True, predictor_class=527)
    torch.save({"cfg": cfg, "model": state, "label_dict": {0: "/m/09x0r"}}, path)
    assert_loaded(BEATsEncoder(checkpoint=str(path), **TINY_BEATS).beats, state)


def test_beats_accepts_new_weight_norm_names_and_a_single_stored_bias_table(tmp_path):
    """A file re-saved with torch's parametrized weight norm, or with the shared table under layer 0 only."""
    state = dict(other_weights(BEATsEncoder, TINY_BEATS, "beats"))
    variant = dict(state)
    variant["encoder.pos_conv.0.parametrizations.weight.original0"] = variant.pop("encoder.pos_conv.0.weight_g")
    variant["encoder.pos_conv.0.parametrizations.weight.original1"] = variant.pop("encoder.pos_conv.0.weight_v")
    del variant["encoder.layers.1.self_attn.relative_attention_bias.weight"]
    path = tmp_path / "BEATs_resaved.pt"
    torch.save({"cfg": TINY_BEATS_CFG, "model": variant}, path)
    assert_loaded(BEATsEncoder(checkpoint=str(path), **TINY_BEATS).beats, state)


def test_beats_cfg_that_differs_from_the_args_is_a_clear_error(tmp_path):
    path = tmp_path / "BEATs_iter1_like.pt"
    torch.save({"cfg": dict(TINY_BEATS_CFG, deep_norm=False, layer_norm_first=True),
                "model": other_weights(BEATsEncoder, TINY_BEATS, "beats")}, path)
    with pytest.raises(LasrError, match=r"layer_norm_first=True \(configured False\).*deep_norm=False"):
        BEATsEncoder(checkpoint=str(path), **TINY_BEATS)


def test_beats_cfg_missing_keys_fall_back_to_official_defaults(tmp_path):
    path = tmp_path / "BEATs_old_cfg.pt"
    cfg = {key: value for key, value in TINY_BEATS_CFG.items() if key != "relative_position_embedding"}
    torch.save({"cfg": cfg, "model": other_weights(BEATsEncoder, TINY_BEATS, "beats")}, path)
    with pytest.raises(LasrError, match=r"relative_position_embedding=False \(configured True\)"):
        BEATsEncoder(checkpoint=str(path), **TINY_BEATS)


def test_beats_checkpoint_with_wrong_keys_names_them(tmp_path):
    state = dict(other_weights(BEATsEncoder, TINY_BEATS, "beats"))
    del state["encoder.layer_norm.bias"]
    state["encoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pt"
    torch.save({"cfg": TINY_BEATS_CFG, "model": state}, path)
    with pytest.raises(LasrError, match=r"1 missing keys \['encoder.layer_norm.bias'\].*'encoder.extra.weight'"):
        BEATsEncoder(checkpoint=str(path), **TINY_BEATS)


class FakeConfigNode:
    """Stands for an omegaconf value node (value under ``_val``), a class the restricted unpickler refuses."""

    def __init__(self, value):
        self._val = value
        self._metadata = None


class FakeDictConfig:
    """Stands for omegaconf's DictConfig as fairseq pickles it: children under ``_content``."""

    def __init__(self, content):
        self._content = {key: value if isinstance(value, FakeDictConfig) else FakeConfigNode(value)
                         for key, value in content.items()}
        self._metadata = None
        self._parent = None


OFFICIAL_POSITION_ROWS = 6144  # the table the official EAT code saves since April 2024 (it uses the first 512)


def official_positions(encoder_state):
    """``encoder_state`` with its 512-row position table extended to the official 6144 rows (first rows equal)."""
    state = dict(encoder_state)
    table = state[POSITIONS]
    extra = torch.randn(1, OFFICIAL_POSITION_ROWS - table.shape[1], table.shape[2])
    state[POSITIONS] = torch.cat([table, extra], dim=1)
    return state


def fairseq_eat_file(path, encoder_state, num_heads=4, fine_tuned=False):
    """An EAT checkpoint laid out as fairseq saves it (config objects, EMA teacher, decoder, numpy scalars)."""
    model_cfg = FakeDictConfig({"_name": "data2vec_multi", "depth": 2, "num_heads": num_heads, "embed_dim": 32,
                                "norm_eps": 1e-6, "layer_norm_first": False})
    state = official_positions(encoder_state)
    if fine_tuned:
        state = {"model." + key: value for key, value in state.items()}
        state.update({"fc_norm.weight": torch.ones(32), "fc_norm.bias": torch.zeros(32),
                      "head.weight": torch.zeros(527, 32), "head.bias": torch.zeros(527)})
        model_cfg = FakeDictConfig({"_name": "mae_image_classification",
                                    "pretrained_model_args": FakeDictConfig({"model": model_cfg})})
    else:
        state["_ema"] = {"blocks.0.attn.qkv.weight": torch.zeros(96, 32)}
        state["modality_encoders.IMAGE.decoder.blocks.0.0.weight"] = torch.zeros(32, 2, 3, 3)
        state["modality_encoders.IMAGE.decoder.proj.weight"] = torch.zeros(32, 32)
    torch.save({"cfg": FakeDictConfig({"model": model_cfg}), "model": state,
                "extra_state": {"best": np.float64(0.5)}, "optimizer_history": []}, path)


@pytest.mark.parametrize("fine_tuned", [False, True])
def test_eat_loads_fairseq_checkpoint_strictly_without_fairseq(tmp_path, fine_tuned):
    state = other_weights(EATEncoder, TINY_EAT, "eat")
    path = tmp_path / "EAT_tiny.pt"
    fairseq_eat_file(path, state, fine_tuned=fine_tuned)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)  # the plain safe loader refuses the config objects
    assert_loaded(EATEncoder(checkpoint=str(path), **TINY_EAT).eat, state)


def test_eat_config_and_weight_shapes_are_checked(tmp_path):
    state = other_weights(EATEncoder, TINY_EAT, "eat")
    path = tmp_path / "EAT_tiny.pt"
    fairseq_eat_file(path, state, num_heads=2)
    with pytest.raises(LasrError, match=r"num_heads=2 \(configured 4\)"):
        EATEncoder(checkpoint=str(path), **TINY_EAT)
    with pytest.raises(LasrError, match=r"depth=2 \(configured 3\)"):
        EATEncoder(checkpoint=str(path), **dict(TINY_EAT, depth=3))
    # the official 6144-row table serves up to 6144 patches; more is an error, never a silently different model
    with pytest.raises(LasrError, match=r"only 6144 patch positions \(configured target_length 16384 and n_mels 128 "
                                        r"need 8192"):
        EATEncoder(checkpoint=str(path), **dict(TINY_EAT, target_length=16384, num_heads=2))


@pytest.mark.parametrize(("fine_tuned", "with_positions"), [(False, True), (True, True), (False, False)])
def test_eat_loads_hugging_face_port_layout(tmp_path, fine_tuned, with_positions):
    """Names of the worstchan/EAT-* port as used by code that loads it (unverified against the files)."""
    from safetensors.torch import save_file

    state = other_weights(EATEncoder, TINY_EAT, "eat")
    renames = {"modality_encoders.IMAGE.context_encoder.norm.": "model.pre_norm.",
               "modality_encoders.IMAGE.": "model.", "blocks.": "model.blocks."}
    port = {}
    for key, value in official_positions(state).items():
        if key.endswith("positions") and not with_positions:
            continue  # a fixed table: rebuilt when absent
        prefix = next(p for p in renames if key.startswith(p))
        port[renames[prefix] + key[len(prefix):]] = value.contiguous()
    if fine_tuned:
        port.update({"model.fc_norm.weight": torch.ones(32), "model.fc_norm.bias": torch.zeros(32),
                     "model.head.weight": torch.zeros(527, 32), "model.head.bias": torch.zeros(527)})
    (tmp_path / "port").mkdir()
    save_file(port, str(tmp_path / "port" / "model.safetensors"))
    assert_loaded(EATEncoder(checkpoint=str(tmp_path / "port"), **TINY_EAT).eat, state)


# ---------------------------------------------------------------- errors, warnings, configs


@pytest.mark.parametrize("encoder_class", [BEATsEncoder, EATEncoder])
def test_missing_checkpoint_is_a_clear_error(encoder_class, tmp_path):
    with pytest.raises(LasrError, match=r"checkpoint not found: .*absent\.pt.*docs/weights\.md"):
        encoder_class(checkpoint=str(tmp_path / "absent.pt"))


@pytest.mark.parametrize("encoder_class", [BEATsEncoder, EATEncoder])
def test_file_of_another_model_is_a_clear_error(encoder_class, tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": {"encoder.weight": torch.zeros(2)}}, path)
    with pytest.raises(LasrError, match="is not an? (BEATs|EAT) checkpoint"):
        encoder_class(checkpoint=str(path))
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(LasrError, match="cannot read"):
        encoder_class(checkpoint=str(tmp_path / "garbage.pt"))


def test_checkpoint_naming_a_blocked_callable_is_refused(tmp_path):
    """Classes named in a file become inert placeholders; torch's blocklist (os, sys) still refuses the file."""
    import os

    path = tmp_path / "hostile.pt"
    torch.save({"cfg": {}, "model": {"patch_embedding.weight": torch.zeros(1)}, "hook": os.system}, path)
    with pytest.raises(LasrError, match="cannot read BEATs checkpoint"):
        BEATsEncoder(checkpoint=str(path), **TINY_BEATS)


@pytest.mark.parametrize(("encoder_class", "tiny", "registry_name"), [
    (BEATsEncoder, TINY_BEATS, "beats-iter3"), (EATEncoder, dict(TINY_EAT, allow_random_init=False), "eat-base-pretrain"),
])
def test_random_weights_need_allow_random_init(encoder_class, tiny, registry_name):
    with pytest.raises(LasrError, match=f"no pretrained weights.*lasr weights download {registry_name}.*allow_random_init"):
        encoder_class(**tiny)
    assert encoder_class(**dict(tiny, allow_random_init=True)).output_dim == 32


@pytest.mark.parametrize(("class_path", "tiny", "layers"), [
    ("lasr.models.audio.beats.BEATsEncoder", TINY_BEATS, "encoder_layers"),
    ("lasr.models.audio.eat.EATEncoder", TINY_EAT, "depth"),
])
def test_yaml_config_round_trip(class_path, tiny, layers):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--audio_encoder", type=AudioEncoder)
    init_args = "\n".join(f"    {key}: {value}" for key, value in tiny.items())
    text = (f"audio_encoder:\n  class_path: {class_path}\n  init_args:\n    checkpoint: null\n"
            f"    allow_random_init: true\n{init_args}\n")
    config = parser.parse_string(text)
    assert parser.parse_string(parser.dump(config)) == config
    assert config.audio_encoder.init_args[layers] == 2
    with captured_warnings("lasr.models.audio"):
        instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in 4.49
        encoder = instantiate(config).audio_encoder
    assert type(encoder).__name__ == class_path.rsplit(".", 1)[1] and encoder.output_dim == 32
    backbone = encoder.beats.encoder.layers if hasattr(encoder, "beats") else encoder.eat.blocks
    assert len(backbone) == 2
