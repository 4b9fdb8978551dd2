"""PaSST audio tower, built with hear21passt exactly as the DCASE 2025 Task 6 baseline, without any download.

Weights come only from a local file (``checkpoint``); see docs/weights.md for where to get it.
"""

from __future__ import annotations

import logging
import warnings
from itertools import chain
from pathlib import Path

import torch
from hear21passt.models import passt as hear21_passt
from hear21passt.models import preprocess as hear21_preprocess
from torch import Tensor, nn

from lasr.errors import LasrError
from lasr.models.audio import AudioEncoder, check_wave_batch
from lasr.models.audio.segments import average_segments, cut_segments, segments_per_clip
from lasr.models.weights import require_weights

_log = logging.getLogger(__name__)
_hear21_log = logging.getLogger("hear21passt")

PASST_WEIGHTS_FILE = "passt-s-f128-p16-s16-ap.468.pt"
PASST_WEIGHTS_URL = (
    "https://github.com/kkoutini/PaSST/releases/download/v0.0.2-audioset/passt-s-f128-p16-s16-ap.468.pt"
)
AUDIOSET_CLASSES = 527  # size of the (unused) classifier heads stored in the AudioSet checkpoint
EMBED_DIM = 768
_WEIGHTS_HINT = f"the default arch expects {PASST_WEIGHTS_FILE} from {PASST_WEIGHTS_URL} (see docs/weights.md)"

# Deprecation warnings raised inside hear21passt's AugmentMelSTFT on torch 2.x; they are not actionable for users.
_FRONTEND_WARNINGS = (r"stft with return_complex=False", r".*torch\.cuda\.amp\.autocast")


def _print_to_debug_log(*args, sep: str = " ", **_ignored) -> None:
    if _hear21_log.isEnabledFor(logging.DEBUG):
        _hear21_log.debug(sep.join(str(arg) for arg in args))


# hear21passt print()s the model and tensor shapes; a module-global `print` in it sends those to a debug log instead.
for _module in (hear21_passt, hear21_preprocess):
    _module.print = _print_to_debug_log


class PaSSTEncoder(AudioEncoder):
    """PaSST-S (16x16 patches, stride 16) on 10 s segments of a 32 kHz clip of up to 30 s.

    A clip of ``d`` seconds uses its first ``segments_per_clip(d)`` segments of ``segment_seconds`` (1 if d <= 10,
    2 if d <= 20, else 3); only those are embedded (all clips' segments in one PaSST batch) and averaged.
    The embedding of a segment is the mean of the CLS and distillation tokens after the last LayerNorm.
    Structured patchout (``s_patchout_t`` time columns, ``s_patchout_f`` frequency rows) and the mel fmin/fmax
    jitter act in training mode only. The log-mel is computed in fp32 without gradients.

    Args:
        checkpoint: ``passt-audioset`` (the registry name, see ``lasr weights list``) or a local path to
            ``passt-s-f128-p16-s16-ap.468.pt`` (AudioSet weights); None needs ``allow_random_init``.
        allow_random_init: with ``checkpoint: None``, start from random weights (tests, or weights that come
            from ``init_from``); otherwise a missing checkpoint is an error.
        arch, input_tdim, fstride, tstride, s_patchout_t, s_patchout_f: passed to hear21passt ``get_model``.
        sample_rate, n_fft, win_length, hop_length, n_mels, fmin, fmax, fmin_aug_range, fmax_aug_range,
            freqm, timem: hear21passt ``AugmentMelSTFT`` (Hz, samples, mel bins); fmax None -> 15 kHz at 32 kHz.
        segment_seconds, max_segments: segment length (s) and the most segments per clip.

    Shape:
        wave: (B, S) samples at ``sample_rate`` (samples past ``max_segments * segment_seconds`` are ignored);
        duration: (B,) seconds. Returns (B, 768).
    """

    PRETRAINED = {"checkpoint": "passt-audioset"}  # weight init arg -> registry name (preflight, lasr weights)
    WEIGHTS_FROM_CHECKPOINT = {"checkpoint": None, "allow_random_init": True}  # rebuilding a trained model

    def __init__(
        self,
        checkpoint: str | None = None,
        arch: str = "passt_s_p16_s16_128_ap468",
        input_tdim: int = 1000,
        fstride: int = 16,
        tstride: int = 16,
        s_patchout_t: int = 15,
        s_patchout_f: int = 2,
        sample_rate: int = 32000,
        n_fft: int = 1024,
        win_length: int = 800,
        hop_length: int = 320,
        n_mels: int = 128,
        fmin: float = 0.0,
        fmax: float | None = None,
        fmin_aug_range: int = 10,
        fmax_aug_range: int = 2000,
        freqm: int = 0,
        timem: int = 0,
        segment_seconds: float = 10.0,
        max_segments: int = 3,
        allow_random_init: bool = False,
    ):
        super().__init__()
        checkpoint = require_weights(checkpoint, allow_random_init, "PaSSTEncoder", "passt-audioset")
        state = None if checkpoint is None else read_passt_checkpoint(checkpoint)  # fail before the slow build
        self.sample_rate = sample_rate
        self.output_dim = EMBED_DIM
        self.segment_seconds = segment_seconds
        self.max_segments = max_segments
        self.segment_samples = round(segment_seconds * sample_rate)
        self.mel = hear21_preprocess.AugmentMelSTFT(
            n_mels=n_mels, sr=sample_rate, win_length=win_length, hopsize=hop_length, n_fft=n_fft,
            freqm=freqm, timem=timem, htk=False, fmin=fmin, fmax=fmax, norm=1,
            fmin_aug_range=fmin_aug_range, fmax_aug_range=fmax_aug_range,
        )
        self.passt = hear21_passt.get_model(
            arch=arch, pretrained=False, n_classes=AUDIOSET_CLASSES, in_channels=1, fstride=fstride,
            tstride=tstride, input_fdim=n_mels, input_tdim=input_tdim,
            s_patchout_t=s_patchout_t, s_patchout_f=s_patchout_f,
        )
        # The classifier heads do not feed the embedding; frozen so that DDP sees no unused trainable parameters.
        for param in chain(self.passt.head.parameters(), self.passt.head_dist.parameters()):
            param.requires_grad_(False)
        if state is not None:
            load_passt_state(self.passt, state, checkpoint)

    def log_mel(self, segments: Tensor) -> Tensor:
        """(N, segment_samples) waveform -> (N, n_mels, frames) normalised log-mel, fp32, no gradient."""
        with torch.no_grad(), torch.autocast(segments.device.type, enabled=False), warnings.catch_warnings():
            for pattern in _FRONTEND_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            return self.mel(segments.float())

    def forward(self, wave: Tensor, duration: Tensor) -> Tensor:
        check_wave_batch(wave, duration)
        counts = segments_per_clip(duration, self.segment_seconds, self.max_segments)
        segments, owner = cut_segments(wave, counts, self.segment_samples)  # (N, segment_samples), (N,)
        embeddings = self.passt(self.log_mel(segments).unsqueeze(1))[-1]  # (N, 768)
        return average_segments(embeddings, owner, wave.shape[0])


def read_passt_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The PaSST state dict stored in a local file (plain, or wrapped under ``"model"``/``"state_dict"``).

    Raises :class:`LasrError` naming the file when it is missing, unreadable or not a PaSST checkpoint.
    """
    from lasr.models.checkpoints import read_checkpoint

    path = Path(path).expanduser()
    state = read_checkpoint(path, "PaSST checkpoint", _WEIGHTS_HINT, trusted=False)
    for wrapper_key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper_key), dict):
            state = state[wrapper_key]
    if not isinstance(state, dict) or "time_new_pos_embed" not in state:
        raise LasrError(f"{path} is not a PaSST checkpoint (no 'time_new_pos_embed' weights); {_WEIGHTS_HINT}")
    return state


def load_passt_state(model: nn.Module, state: dict[str, Tensor], path: str | Path) -> None:
    """Load ``state`` (read from ``path``) into a hear21passt model; every key and shape must match."""
    state = hear21_passt.checkpoint_filter_fn(state, model)  # hear21passt's conversion of older weight layouts
    expected, given = set(model.state_dict()), set(state)
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        raise LasrError(
            f"{path} does not match the PaSST model: {len(missing)} missing keys {missing[:5]}, "
            f"{len(unexpected)} unexpected keys {unexpected[:5]}; {_WEIGHTS_HINT}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:  # shape mismatch, e.g. weights of another arch or input size
        raise LasrError(f"{path} does not fit the PaSST model: {err}") from None
    _log.info("loaded PaSST weights from %s", path)
