"""EAT audio tower: HTK-style Kaldi fbank of 16 kHz audio, the EAT ViT encoder, CLS embedding, 10 s segments.

Weights come only from a local file (``checkpoint``): an EAT fairseq checkpoint from cwx-worst-one/EAT
(pre-trained or AudioSet fine-tuned), or the ``model.safetensors`` of a Hugging Face port; see docs/weights.md.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi
from torch import Tensor

from lasr.errors import LasrError
from lasr.models.audio import AudioEncoder, check_wave_batch
from lasr.models.audio._checkpoint import load_state_strict, plain_config
from lasr.models.checkpoints import read_checkpoint
from lasr.models.audio._eat_backbone import EATArch, EATBackbone, EATRegularization
from lasr.models.audio._frontend import real_samples_per_segment
from lasr.models.audio.segments import average_segments, cut_segments, segments_per_clip
from lasr.models.weights import require_weights

_log = logging.getLogger(__name__)

SAMPLE_RATE = 16000  # Hz; the fbank frontend and the pretrained weights assume it
EAT_WEIGHTS_NAME = "EAT-base_epoch30 pre-training checkpoint"
EAT_WEIGHTS_PAGE = "https://github.com/cwx-worst-one/EAT#model-checkpoints"
_WEIGHTS_HINT = (
    f"the default arch expects the {EAT_WEIGHTS_NAME} (or the EAT-base_epoch30 fine-tuned one) linked from "
    f"{EAT_WEIGHTS_PAGE} (see docs/weights.md)"
)
POOLINGS = ("cls", "mean")
_FRONT = "modality_encoders.IMAGE."
_POSITIONS = _FRONT + "fixed_positional_encoder.positions"
# Pre-training and classification parts of the published files that do not feed the embedding.
_UNUSED_PREFIXES = (_FRONT + "decoder.", "shared_decoder.", "recon_proj.", "cls_proj.")
_CLASSIFIER_PREFIXES = ("fc_norm.", "head.", "model.fc_norm.", "model.head.")  # fine-tuned: fairseq / HF port
_UNUSED_KEYS = {"_ema", "center", _FRONT + "encoder_mask"}
# Hugging Face port (worstchan/EAT-*) -> fairseq names. Inferred from code that uses the port, not from its files.
_HF_RENAMES = (
    ("model.local_encoder.", _FRONT + "local_encoder."),
    ("model.extra_tokens", _FRONT + "extra_tokens"),
    ("model.fixed_positional_encoder.", _FRONT + "fixed_positional_encoder."),
    ("model.pre_norm.", _FRONT + "context_encoder.norm."),
    ("model.blocks.", "blocks."),
)


class EATEncoder(AudioEncoder):
    """EAT (base architecture by default) on 10 s segments of a 16 kHz clip of up to 30 s.

    Frontend per segment, in fp32 without gradients, as the official feature extraction: the segment's real
    samples (zero padding after the clip's end excluded) minus their mean -> Kaldi fbank (``htk_compat``, Hann
    window, ``n_mels`` bins, 25 ms / 10 ms) -> zero-padded or cut to ``target_length`` frames ->
    ``(fbank - norm_mean) / (2 * norm_std)``. A clip of ``d`` seconds uses its first ``segments_per_clip(d)``
    segments (as PaSSTEncoder); only those run, in one batch, and their embeddings are averaged.

    Args:
        checkpoint: ``eat-base-pretrain`` (registry name, see ``lasr weights list``) or a local path to an EAT
            fairseq ``.pt`` (pre-trained or fine-tuned) or a Hugging Face ``model.safetensors`` (or its
            directory); None needs ``allow_random_init: true`` (random weights), else it is an error. The architecture
            args must match the file (sizes read from the weights, ``num_heads`` / ``norm_eps`` from its config
            when readable); a difference is a :class:`LasrError` naming the values to set.
        embed_dim, depth, num_heads, mlp_ratio, patch_size, n_mels, target_length, norm_eps: architecture
            (EAT-base; ``target_length`` fbank frames, a multiple of ``patch_size``).
        encoder_dropout, attention_dropout, activation_dropout, post_mlp_dropout, dropout_input,
            drop_path_rate: training-time regularisation (EAT pre-training: all 0; its AudioSet fine-tuning
            uses drop_path_rate 0.1).
        frame_length_ms, frame_shift_ms, norm_mean, norm_std: frontend.
        pooling: "cls" (the utterance embedding of EAT) or "mean" over the patch tokens.
        segment_seconds, max_segments: segment length (s) and the most segments per clip.

    Shape:
        wave: (B, S) samples at 16 kHz, zero after each clip's end; duration: (B,) seconds. Returns (B, embed_dim).
    """

    sample_rate = SAMPLE_RATE
    PRETRAINED = {"checkpoint": "eat-base-pretrain"}  # weight init arg -> registry name (preflight, lasr weights)
    WEIGHTS_FROM_CHECKPOINT = {"checkpoint": None, "allow_random_init": True}  # rebuilding a trained model

    def __init__(
        self,
        checkpoint: str | None = None,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        patch_size: int = 16,
        n_mels: int = 128,
        target_length: int = 1024,
        norm_eps: float = 1e-6,
        encoder_dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        post_mlp_dropout: float = 0.0,
        dropout_input: float = 0.0,
        drop_path_rate: float = 0.0,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        norm_mean: float = -4.268,
        norm_std: float = 4.569,
        pooling: str = "cls",
        segment_seconds: float = 10.0,
        max_segments: int = 3,
        allow_random_init: bool = False,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        given = locals()
        checkpoint = require_weights(checkpoint, allow_random_init, "EATEncoder", "eat-base-pretrain")
        arch = _from_args(EATArch, given)
        reg = _from_args(EATRegularization, given)
        state = None
        if checkpoint is not None:  # fail before the build
            state, cfg = read_eat_checkpoint(checkpoint)
            check_eat_arch(state, cfg, arch, checkpoint)
        self.output_dim = embed_dim
        self.segment_seconds, self.max_segments = segment_seconds, max_segments
        self.segment_samples = round(segment_seconds * SAMPLE_RATE)
        self.frame_length_ms, self.frame_shift_ms = frame_length_ms, frame_shift_ms
        self.n_mels, self.target_length = n_mels, target_length
        self.norm_mean, self.norm_std = norm_mean, norm_std
        self.pooling = pooling
        self.eat = EATBackbone(arch, reg)
        if state is not None:
            state.setdefault(_POSITIONS, self.eat.state_dict()[_POSITIONS])  # a fixed table; absent in some ports
            state[_POSITIONS] = first_positions(state[_POSITIONS], self.eat.state_dict()[_POSITIONS].shape[1], checkpoint)
            load_state_strict(self.eat, state, checkpoint, "EAT", _WEIGHTS_HINT)

    def fbank(self, segments: Tensor, real_samples: Tensor) -> Tensor:
        """(N, S) samples at 16 kHz, (N,) real samples each -> (N, target_length, n_mels) normalised, fp32."""
        window = round(self.frame_length_ms * SAMPLE_RATE / 1000)
        spectrograms = []
        with torch.no_grad(), torch.autocast(segments.device.type, enabled=False):
            for segment, real in zip(segments, real_samples.tolist()):
                audio = segment[: max(real, window)].float()
                mel = kaldi.fbank(
                    (audio - audio.mean()).unsqueeze(0), htk_compat=True, sample_frequency=SAMPLE_RATE,
                    use_energy=False, window_type="hanning", num_mel_bins=self.n_mels, dither=0.0,
                    frame_length=self.frame_length_ms, frame_shift=self.frame_shift_ms,
                )[: self.target_length]
                spectrograms.append(F.pad(mel, (0, 0, 0, self.target_length - mel.shape[0])))
            return (torch.stack(spectrograms) - self.norm_mean) / (2 * self.norm_std)

    def forward(self, wave: Tensor, duration: Tensor) -> Tensor:
        check_wave_batch(wave, duration)
        counts = segments_per_clip(duration, self.segment_seconds, self.max_segments)
        segments, owner = cut_segments(wave, counts, self.segment_samples)  # (N, segment_samples), (N,)
        real = real_samples_per_segment(duration, counts, self.segment_samples, SAMPLE_RATE)
        tokens = self.eat(self.fbank(segments, real))  # (N, 1 + L, D)
        embeddings = tokens[:, 0] if self.pooling == "cls" else tokens[:, 1:].mean(dim=1)
        return average_segments(embeddings, owner, wave.shape[0])


def read_eat_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """The encoder state dict, in fairseq names, and the plain model config (None if unreadable) of an EAT file.

    Accepts a fairseq checkpoint (``{"cfg", "model", ...}``) of the pre-trained model (EMA teacher, CNN decoder
    dropped) or of a fine-tuned classifier (``model.`` prefix; ``fc_norm`` and ``head`` dropped), a bare state
    dict, and a Hugging Face ``model.safetensors`` file or directory (names mapped to fairseq's).
    Raises :class:`LasrError` naming the file when it is missing, unreadable or not an EAT checkpoint.
    """
    path = Path(path).expanduser()
    cfg = None
    if path.is_dir() or path.suffix == ".safetensors":
        state = _read_safetensors(path / "model.safetensors" if path.is_dir() else path)
    else:
        stored = read_checkpoint(path, "EAT checkpoint", _WEIGHTS_HINT, trusted=False)
        state = stored.get("model", stored) if isinstance(stored, dict) else stored
        cfg = _model_config(stored.get("cfg")) if isinstance(stored, dict) else None
    if not isinstance(state, dict):
        raise LasrError(f"{path} is not an EAT checkpoint (no state dict); {_WEIGHTS_HINT}")
    if any(key.startswith("model." + _FRONT) for key in state):  # fine-tuned: Data2VecMultiModel under "model."
        state = {key.removeprefix("model."): value for key, value in state.items()}
    for old, new in _HF_RENAMES:
        state = {new + key[len(old):] if key.startswith(old) else key: value for key, value in state.items()}
    classifier = sorted(key for key in state if key.startswith(_CLASSIFIER_PREFIXES))
    if classifier:
        _log.info("%s: dropping the classifier head %s (fine-tuned file; the embedding does not use it)", path, classifier)
        state = {key: value for key, value in state.items() if key not in set(classifier)}
    if _FRONT + "local_encoder.proj.weight" not in state:
        raise LasrError(f"{path} is not an EAT checkpoint (no '{_FRONT}local_encoder.proj.weight'); {_WEIGHTS_HINT}")
    return {
        key: value for key, value in state.items()
        if key not in _UNUSED_KEYS and not key.startswith(_UNUSED_PREFIXES)
    }, cfg


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        raise LasrError(f"EAT checkpoint not found: {path}; {_WEIGHTS_HINT}")
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as err:
        raise LasrError(f"cannot read EAT checkpoint {path} ({err}); {_WEIGHTS_HINT}") from None


def _model_config(cfg: Any) -> dict[str, Any] | None:
    """``cfg.model`` of a fairseq checkpoint (of the pre-trained model inside a fine-tuning config), or None."""
    plain = plain_config(cfg)
    model = plain.get("model") if isinstance(plain, dict) else None
    if isinstance(model, dict) and isinstance(model.get("pretrained_model_args"), dict):
        model = model["pretrained_model_args"].get("model")
    return model if isinstance(model, dict) else None


def check_eat_arch(state: dict[str, Tensor], cfg: dict[str, Any] | None, arch: EATArch, path: str | Path) -> None:
    """Raise :class:`LasrError` listing every architecture value of the file that differs from ``arch``.

    Sizes come from the weights; ``num_heads`` and ``norm_eps`` from the checkpoint's config when it is readable.
    """
    if cfg is not None and cfg.get("layer_norm_first"):
        raise LasrError(f"{path} is a pre-LN (layer_norm_first) model; EATEncoder implements EAT's post-LN blocks")
    patch = state[_FRONT + "local_encoder.proj.weight"]  # (D, 1, p, p)
    found: dict[str, Any] = {
        "embed_dim": patch.shape[0],
        "patch_size": patch.shape[-1],
        "depth": len({key.split(".")[1] for key in state if key.startswith("blocks.")}),
    }
    if "blocks.0.mlp.fc1.weight" in state:
        found["mlp_ratio"] = state["blocks.0.mlp.fc1.weight"].shape[0] / patch.shape[0]
    for name in ("num_heads", "norm_eps"):
        if cfg is not None and cfg.get(name) is not None:
            found[name] = cfg[name]
    differences = [
        f"{name}={value!r} (configured {getattr(arch, name)!r})"
        for name, value in found.items() if value != getattr(arch, name)
    ]
    tokens = (arch.target_length // arch.patch_size) * (arch.n_mels // arch.patch_size)
    if _POSITIONS in state and state[_POSITIONS].shape[1] < tokens:  # a larger table is cut, as EAT does
        differences.append(
            f"only {state[_POSITIONS].shape[1]} patch positions (configured target_length {arch.target_length} "
            f"and n_mels {arch.n_mels} need {tokens})"
        )
    if differences:
        raise LasrError(
            f"{path} holds an EAT model with other hyper-parameters than configured: {', '.join(differences)}; "
            "set these EATEncoder init args to the checkpoint's values"
        )


def first_positions(table: Tensor, tokens: int, path: str | Path) -> Tensor:
    """The first ``tokens`` rows of a (1, rows, D) fixed position table.

    Since April 2024 the official EAT code saves a table of 6144 rows and uses the first ``tokens`` (512 for
    10.24 s at 128 mel bins); a smaller table cannot serve the configured input and is an error.
    """
    if table.shape[1] < tokens:
        raise LasrError(f"{path}: the position table has {table.shape[1]} rows, the configured input needs {tokens}")
    if table.shape[1] > tokens:
        _log.info("%s: using the first %d of %d position-table rows (as the official EAT code)", path, tokens,
                  table.shape[1])
    return table[:, :tokens]


def _from_args(config_class: type, args: dict[str, Any]) -> Any:
    """An instance of the dataclass ``config_class`` from the same-named entries of ``args``."""
    return config_class(**{field.name: args[field.name] for field in dataclasses.fields(config_class)})
