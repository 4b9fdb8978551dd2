"""BEATs audio tower: Kaldi fbank of 16 kHz audio, the BEATs transformer, token pooling, 10 s segments.

Weights come only from a local file (``checkpoint``), an official BEATs ``.pt`` from microsoft/unilm
(``{"cfg": {...}, "model": state_dict}``); see docs/weights.md.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
import torchaudio.compliance.kaldi as kaldi
from torch import Tensor

from lasr.errors import LasrError
from lasr.models.audio import AudioEncoder, check_wave_batch
from lasr.models.audio._beats_backbone import BEATsArch, BEATsBackbone, BEATsRegularization
from lasr.models.audio._checkpoint import load_state_strict
from lasr.models.checkpoints import read_checkpoint
from lasr.models.audio._frontend import kaldi_frames, real_samples_per_segment
from lasr.models.audio.segments import average_segments, cut_segments, segments_per_clip
from lasr.models.weights import require_weights

_log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Hz; the fbank frontend and the pretrained weights assume it
BEATS_WEIGHTS_FILE = "BEATs_iter3.pt"
BEATS_WEIGHTS_PAGE = "https://github.com/microsoft/unilm/tree/master/beats"
_WEIGHTS_HINT = (
    f"the default arch expects {BEATS_WEIGHTS_FILE} (or a fine-tuned BEATs_iter3 .pt) linked from "
    f"{BEATS_WEIGHTS_PAGE} (see docs/weights.md)"
)
POOLINGS = ("mean", "max")
# Values the official BEATsConfig falls back to when a checkpoint's "cfg" omits a key.
_OFFICIAL_CFG_DEFAULTS = dict(
    dataclasses.asdict(BEATsArch()), input_patch_size=-1, deep_norm=False, relative_position_embedding=False,
    max_distance=1280, gru_rel_pos=False,
)
_WEIGHT_NORM_RENAMES = {  # torch.nn.utils.parametrizations.weight_norm names -> the published ones
    "encoder.pos_conv.0.parametrizations.weight.original0": "encoder.pos_conv.0.weight_g",
    "encoder.pos_conv.0.parametrizations.weight.original1": "encoder.pos_conv.0.weight_v",
}


class BEATsEncoder(AudioEncoder):
    """BEATs (iter3 architecture by default) on 10 s segments of a 16 kHz clip of up to 30 s.

    Frontend per segment, in fp32 without gradients: samples x ``waveform_scale`` -> Kaldi fbank (``n_mels``
    bins, 25 ms windows, 10 ms shift) -> ``(fbank - fbank_mean) / (2 * fbank_std)``. A clip of ``d`` seconds uses
    its first ``segments_per_clip(d)`` segments (as PaSSTEncoder); only those run, in one batch, and their
    pooled token embeddings are averaged.

    With ``mask_padding`` (default) the zero padding after a clip's end is masked as the official
    ``padding_mask`` does (padded tokens are zeroed before the convolutional position embedding and never attended
    to) and pooling covers the real tokens only, so a short clip gives the embedding of its unpadded audio.
    Without it, each segment is encoded as a plain 10 s input and all its tokens are pooled.

    Args:
        checkpoint: ``beats-iter3`` (registry name, see ``lasr weights list``) or a local path to an official
            BEATs ``.pt``; None needs ``allow_random_init: true`` (random weights), else it is an error.
            The architecture args must equal the checkpoint's ``"cfg"`` (same key names); a difference is a
            :class:`LasrError` that lists the values to set, so the config always describes the model that runs.
            The regularisation args (dropouts, layer drop, gradient decay) are ours and are not compared.
        input_patch_size ... gru_rel_pos: architecture, defaults = BEATs_iter3 (see ``BEATsArch``).
        dropout, attention_dropout, activation_dropout, encoder_layerdrop, dropout_input: training-time
            probabilities (iter3 cfg: all 0.0 except encoder_layerdrop 0.05, kept at 0.0 here because a skipped
            layer leaves unused parameters, which DDP rejects unless ``find_unused_parameters``).
        layer_wise_gradient_decay_ratio: gradients are multiplied by it at the input of every layer
            (iter3 cfg: 0.6; 1.0 turns it off).
        waveform_scale, n_mels, frame_length_ms, frame_shift_ms, fbank_mean, fbank_std: frontend.
        pooling: "mean" or "max" over tokens. mask_padding: see above.
        segment_seconds, max_segments: segment length (s) and the most segments per clip.

    Shape:
        wave: (B, S) samples at 16 kHz, zero after each clip's end; duration: (B,) seconds.
        Returns (B, encoder_embed_dim).
    """

    sample_rate = SAMPLE_RATE
    PRETRAINED = {"checkpoint": "beats-iter3"}  # weight init arg -> registry name (preflight, lasr weights)
    WEIGHTS_FROM_CHECKPOINT = {"checkpoint": None, "allow_random_init": True}  # rebuilding a trained model

    def __init__(
        self,
        checkpoint: str | None = None,
        input_patch_size: int = 16,
        embed_dim: int = 512,
        conv_bias: bool = False,
        encoder_layers: int = 12,
        encoder_embed_dim: int = 768,
        encoder_ffn_embed_dim: int = 3072,
        encoder_attention_heads: int = 12,
        activation_fn: str = "gelu",
        layer_norm_first: bool = False,
        deep_norm: bool = True,
        conv_pos: int = 128,
        conv_pos_groups: int = 16,
        relative_position_embedding: bool = True,
        num_buckets: int = 320,
        max_distance: int = 800,
        gru_rel_pos: bool = True,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        encoder_layerdrop: float = 0.0,
        dropout_input: float = 0.0,
        layer_wise_gradient_decay_ratio: float = 0.6,
        waveform_scale: float = 32768.0,
        n_mels: int = 128,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        fbank_mean: float = 15.41663,
        fbank_std: float = 6.55582,
        pooling: str = "mean",
        mask_padding: bool = True,
        segment_seconds: float = 10.0,
        max_segments: int = 3,
        allow_random_init: bool = False,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        given = locals()
        checkpoint = require_weights(checkpoint, allow_random_init, "BEATsEncoder", "beats-iter3")
        arch = _from_args(BEATsArch, given)
        reg = _from_args(BEATsRegularization, given)
        state = None
        if checkpoint is not None:  # fail before the build
            state, cfg = read_beats_checkpoint(checkpoint)
            if cfg is not None:
                check_beats_arch(cfg, arch, checkpoint)
        self.output_dim = encoder_embed_dim
        self.segment_seconds, self.max_segments = segment_seconds, max_segments
        self.segment_samples = round(segment_seconds * SAMPLE_RATE)
        self.waveform_scale, self.n_mels = waveform_scale, n_mels
        self.frame_length_ms, self.frame_shift_ms = frame_length_ms, frame_shift_ms
        self.fbank_mean, self.fbank_std = fbank_mean, fbank_std
        self.pooling, self.mask_padding = pooling, mask_padding
        self.beats = BEATsBackbone(arch, reg)
        if state is not None:
            load_state_strict(self.beats, state, checkpoint, "BEATs", _WEIGHTS_HINT)

    def fbank(self, segments: Tensor) -> Tensor:
        """(N, S) samples at 16 kHz -> (N, frames, n_mels) normalised Kaldi fbank, fp32, no gradient."""
        with torch.no_grad(), torch.autocast(segments.device.type, enabled=False):
            frames = [
                kaldi.fbank(
                    segment.float().unsqueeze(0) * self.waveform_scale, num_mel_bins=self.n_mels,
                    sample_frequency=SAMPLE_RATE, frame_length=self.frame_length_ms, frame_shift=self.frame_shift_ms,
                )
                for segment in segments
            ]
            return (torch.stack(frames) - self.fbank_mean) / (2 * self.fbank_std)

    def forward(self, wave: Tensor, duration: Tensor) -> Tensor:
        check_wave_batch(wave, duration)
        counts = segments_per_clip(duration, self.segment_seconds, self.max_segments)
        segments, owner = cut_segments(wave, counts, self.segment_samples)  # (N, segment_samples), (N,)
        real_frames = None
        if self.mask_padding:
            real = real_samples_per_segment(duration, counts, self.segment_samples, SAMPLE_RATE)
            window = round(self.frame_length_ms * SAMPLE_RATE / 1000)
            shift = round(self.frame_shift_ms * SAMPLE_RATE / 1000)
            real_frames = kaldi_frames(real, window, shift)
        tokens, padding = self.beats(self.fbank(segments), real_frames)  # (N, L, D), (N, L) or None
        return average_segments(pool_tokens(tokens, padding, self.pooling), owner, wave.shape[0])


def pool_tokens(tokens: Tensor, padding: Tensor | None, pooling: str) -> Tensor:
    """(N, L, D) tokens, (N, L) bool padding mask or None -> (N, D) mean or max over the real tokens."""
    if padding is None:
        return tokens.mean(dim=1) if pooling == "mean" else tokens.amax(dim=1)
    real = ~padding.unsqueeze(-1)
    if pooling == "mean":
        return (tokens * real).sum(dim=1) / real.sum(dim=1).clamp(min=1)
    return tokens.masked_fill(~real, float("-inf")).amax(dim=1)


def read_beats_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """The encoder state dict and the ``"cfg"`` dict (None if absent) of a BEATs file.

    Accepts the official ``{"cfg", "model"}`` layout, a ``{"state_dict"}`` wrapper or a bare state dict. The
    AudioSet classifier of fine-tuned checkpoints (``predictor.*``) is dropped: it does not feed the embedding.
    Raises :class:`LasrError` naming the file when it is missing, unreadable or not a BEATs checkpoint.
    """
    stored = read_checkpoint(path, "BEATs checkpoint", _WEIGHTS_HINT, trusted=False)
    cfg = stored.get("cfg") if isinstance(stored, dict) and isinstance(stored.get("cfg"), dict) else None
    state = stored
    for wrapper_key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper_key), dict):
            state = state[wrapper_key]
    if not isinstance(state, dict) or "patch_embedding.weight" not in state:
        raise LasrError(f"{path} is not a BEATs checkpoint (no 'patch_embedding.weight'); {_WEIGHTS_HINT}")
    state = {_WEIGHT_NORM_RENAMES.get(key, key): value for key, value in state.items()}
    classifier = [key for key in state if key.startswith("predictor.")]
    if classifier:
        _log.info("ignoring the classifier weights %s of %s (not used for embeddings)", classifier, path)
    state = {key: value for key, value in state.items() if not key.startswith("predictor.")}
    _share_relative_bias(state)
    return state, cfg


def _share_relative_bias(state: dict[str, Tensor]) -> None:
    """Fill every layer's name of the shared relative position table from layer 0 when only it was saved."""
    first = "encoder.layers.0.self_attn.relative_attention_bias.weight"
    if first not in state:
        return
    layers = {key.split(".")[2] for key in state if key.startswith("encoder.layers.")}
    for layer in layers:
        state.setdefault(f"encoder.layers.{layer}.self_attn.relative_attention_bias.weight", state[first])


def check_beats_arch(cfg: dict[str, Any], arch: BEATsArch, path: str | Path) -> None:
    """Raise :class:`LasrError` listing every architecture key whose checkpoint value differs from ``arch``."""
    differences = []
    for field in dataclasses.fields(BEATsArch):
        stored, configured = cfg.get(field.name, _OFFICIAL_CFG_DEFAULTS[field.name]), getattr(arch, field.name)
        if stored != configured:
            differences.append(f"{field.name}={stored!r} (configured {configured!r})")
    if differences:
        raise LasrError(
            f"{path} was trained with other BEATs hyper-parameters than configured: {', '.join(differences)}; "
            "set these BEATsEncoder init args to the checkpoint's values"
        )


def _from_args(config_class: type, args: dict[str, Any]) -> Any:
    """An instance of the dataclass ``config_class`` from the same-named entries of ``args``."""
    return config_class(**{field.name: args[field.name] for field in dataclasses.fields(config_class)})
