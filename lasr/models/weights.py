"""Registry of the pretrained weights the shipped recipes use, and how a config value names them.

A weight argument in a config (``audio_encoder.init_args.checkpoint``, ...) is either a **registry name**
(``passt-audioset``), which resolves to ``$LASR_WEIGHTS/<file>`` (default ``~/.cache/lasr/weights``), or an
explicit path. ``lasr weights list|check|download`` works on the same registry.

Random initialisation of an encoder that is meant to be pretrained is an explicit choice
(``allow_random_init: true``), never the silent result of a missing key: :func:`require_weights`.

URLs and sizes were read from the projects' own pages and code (see ``source``); ``verified`` says whether the
URL was seen in the model authors' own README or code. Checksums are listed only where the authors publish one.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lasr.errors import LasrError

_log = logging.getLogger(__name__)

WEIGHTS_ENV = "LASR_WEIGHTS"
DEFAULT_WEIGHTS_DIR = Path("~/.cache/lasr/weights")
ENCODER_KEY = "model.init_args.model.init_args.{tower}.init_args.{arg}"  # where a retrieval recipe names weights


@dataclass(frozen=True)
class RemoteFile:
    """One file of a weight entry: its local name (relative to the entry's folder, or the file itself) and URL."""

    name: str
    url: str
    size: int | None = None  # bytes, when the host states it
    sha256: str | None = None  # only where the authors publish it


@dataclass(frozen=True)
class WeightEntry:
    """A published weight file (or a folder of files, e.g. a Hugging Face model).

    ``local`` is the file or folder name under the weights directory; ``check`` is ``module:function`` that reads
    the local path and raises :class:`LasrError` when it is not a usable file of this model.
    """

    name: str
    description: str
    local: str
    files: tuple[RemoteFile, ...]
    source: str
    config_key: str
    used_by: str
    verified: bool = True
    check: str | None = None
    notes: str = ""
    is_folder: bool = False

    @property
    def size(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if None in sizes else sum(sizes)  # type: ignore[arg-type]


_HF = "https://huggingface.co/{repo}/resolve/main/{file}"
_BEATS_SAS = ("sv=2020-08-04&st=2023-03-01T07%3A51%3A05Z&se=2033-03-02T07%3A51%3A00Z&sr=c&sp=rl&"
              "sig=QJXmSJG9DbMKf48UDIU1MfzIro8HQOf3sqlNXiflY1I%3D")  # signed link from microsoft/unilm beats/README.md
_ROBERTA_FILES = ("config.json", "merges.txt", "vocab.json", "tokenizer.json", "model.safetensors")
_AUDIOSEP_SPACE = "https://huggingface.co/spaces/Audio-AGI/AudioSep/resolve/main/checkpoint/{file}"
_AUDIO_KEY = ENCODER_KEY.format(tower="audio_encoder", arg="checkpoint")

REGISTRY: dict[str, WeightEntry] = {e.name: e for e in (
    WeightEntry(
        "passt-audioset", "PaSST-S AudioSet, 16x16 patches, stride 16 (hear21passt passt_s_p16_s16_128_ap468)",
        "passt-s-f128-p16-s16-ap.468.pt",
        (RemoteFile("passt-s-f128-p16-s16-ap.468.pt",
                    "https://github.com/kkoutini/PaSST/releases/download/v0.0.2-audioset/passt-s-f128-p16-s16-ap.468.pt"),),
        "github.com/kkoutini/PaSST release v0.0.2-audioset (the URL hear21passt 0.0.26 downloads)",
        _AUDIO_KEY, "lasr.models.audio.passt.PaSSTEncoder (configs/stage1_pretrain.yaml)",
        check="lasr.models.audio.passt:read_passt_checkpoint"),
    WeightEntry(
        "beats-iter3", "BEATs iter3, AudioSet self-supervised (microsoft/unilm)", "BEATs_iter3.pt",
        (RemoteFile("BEATs_iter3.pt", f"https://valle.blob.core.windows.net/share/BEATs/BEATs_iter3.pt?{_BEATS_SAS}"),),
        "github.com/microsoft/unilm beats/README.md, table of pre-trained models (signed link, expires 2033)",
        _AUDIO_KEY, "lasr.models.audio.beats.BEATsEncoder (configs/pipeline/beats_stage1.yaml)",
        check="lasr.models.audio.beats:read_beats_checkpoint"),
    WeightEntry(
        "eat-base-pretrain", "EAT-base, 30 epochs AudioSet pre-training (Hugging Face port of cwx-worst-one/EAT)",
        "EAT-base_epoch30_pretrain.safetensors",
        (RemoteFile("EAT-base_epoch30_pretrain.safetensors",
                    _HF.format(repo="worstchan/EAT-base_epoch30_pretrain", file="model.safetensors")),),
        "huggingface.co/worstchan/EAT-base_epoch30_pretrain (linked from the cwx-worst-one/EAT README); the "
        "fairseq .pt of the README's Google Drive link loads too (pass its path)",
        _AUDIO_KEY, "lasr.models.audio.eat.EATEncoder (configs/pipeline/eat_stage1.yaml)", verified=False,
        check="lasr.models.audio.eat:read_eat_checkpoint"),
    WeightEntry(
        "roberta-large", "RoBERTa-large text tower (FacebookAI/roberta-large)", "roberta-large",
        tuple(RemoteFile(f, _HF.format(repo="FacebookAI/roberta-large", file=f)) for f in _ROBERTA_FILES),
        "huggingface.co/FacebookAI/roberta-large", ENCODER_KEY.format(tower="text_encoder", arg="name_or_path"),
        "lasr.models.text.HFTextEncoder (every retrieval recipe)", is_folder=True,
        check="lasr.models.text:check_local_model",
        notes="the local Hugging Face cache (`hf download roberta-large`) works as well"),
    WeightEntry(
        "clap-music-speech-audioset", "LAION-CLAP HTSAT-base music_speech_audioset_epoch_15_esc_89.98 (text tower "
        "of AudioSep and the DCASE 2024 Task 9 baseline)", "music_speech_audioset_epoch_15_esc_89.98.pt",
        (RemoteFile("music_speech_audioset_epoch_15_esc_89.98.pt",
                    _HF.format(repo="lukewys/laion_clap", file="music_speech_audioset_epoch_15_esc_89.98.pt")),),
        "huggingface.co/lukewys/laion_clap (LAION-CLAP README); about 2.35 GB",
        "model.init_args.model.init_args.query.init_args.checkpoint", "separation recipes (CLAP query tower)",
        verified=False),
    WeightEntry(
        "audiosep-base", "AudioSep base, 4M steps (Audio-AGI/AudioSep)", "audiosep_base_4M_steps.ckpt",
        (RemoteFile("audiosep_base_4M_steps.ckpt", _AUDIOSEP_SPACE.format(file="audiosep_base_4M_steps.ckpt")),),
        "huggingface.co/spaces/Audio-AGI/AudioSep checkpoint/ (AudioSep README); about 1.26 GB",
        "model.init_args.init_from", "separation recipes (published separator)", verified=False),
    WeightEntry(
        "dcase2024-t9-baseline", "DCASE 2024 Task 9 baseline separator (AudioSep 16 kHz, 200k steps)",
        "audiosep_16k,baseline,step=200000.ckpt",
        (RemoteFile("audiosep_16k,baseline,step=200000.ckpt",
                    "https://zenodo.org/records/10887460/files/audiosep_16k,baseline,step=200000.ckpt"),),
        "zenodo.org/records/10887460 (DCASE 2024 Task 9 baseline README)", "model.init_args.init_from",
        "separation recipes (published separator)", verified=False),
    WeightEntry(
        "dcase2025-t6-baseline", "DCASE 2025 Task 6 baseline, trained on Clotho + AudioCaps + WavCaps (PaSST + "
        "RoBERTa-large); import with `lasr weights import-baseline`", "dcase2025_t6_baseline.ckpt",
        (RemoteFile("dcase2025_t6_baseline.ckpt", "https://cloud.cp.jku.at/index.php/s/6ZTQ3mcwk9AAS4i/download"),),
        "CPJKU/dcase2025_task6_baseline README (share page cloud.cp.jku.at/index.php/s/6ZTQ3mcwk9AAS4i)",
        "--ckpt_path (after import)", "docs/pipeline.md, baseline cross-check", verified=False,
        notes="the /download suffix of the share page is Nextcloud's direct link; not tried from here"),
)}


def weights_dir() -> Path:
    """``$LASR_WEIGHTS`` or ``~/.cache/lasr/weights``."""
    return Path(os.environ.get(WEIGHTS_ENV) or DEFAULT_WEIGHTS_DIR).expanduser()


def local_path(entry: WeightEntry) -> Path:
    return weights_dir() / entry.local


def resolve_weights(value: str | os.PathLike | None) -> str | None:
    """A config's weight value as a local path: a registry name -> its file in :func:`weights_dir`; a path or
    ``None`` as it is."""
    if value is None:
        return None
    value = str(value)
    return str(local_path(REGISTRY[value])) if value in REGISTRY else value


def how_to_get(name: str) -> str:
    """One line telling how to obtain registry entry ``name``."""
    entry = REGISTRY[name]
    return (f"`lasr weights download {name}` (or fetch {entry.files[0].url if len(entry.files) == 1 else entry.source} "
            f"into {local_path(entry)}); docs/weights.md")


def require_weights(value: str | None, allow_random_init: bool, what: str, registry_name: str) -> str | None:
    """The local path of a pretrained encoder's weights, or ``None`` for an explicitly allowed random start.

    Raises :class:`LasrError` when no weights are named and ``allow_random_init`` is false: a pretrained
    encoder never starts from random weights without the config saying so.
    """
    if value is None:
        if not allow_random_init:
            raise LasrError(
                f"{what}: no pretrained weights configured (checkpoint: null). Set checkpoint: {registry_name} "
                f"after {how_to_get(registry_name)}; or set allow_random_init: true to train from random weights")
        _log.info("%s starts from random weights (allow_random_init: true)", what)
        return None
    return resolve_weights(value)


def call_check(entry: WeightEntry, path: str | Path) -> None:
    """Run the entry's reader on ``path`` (raises :class:`LasrError` when it is not a usable file)."""
    if entry.check:
        module, _, function = entry.check.partition(":")
        reader: Callable[[Any], Any] = getattr(importlib.import_module(module), function)
        reader(path)


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CheckResult:
    """Outcome of checking one entry's local copy."""

    name: str
    path: Path
    present: bool
    problems: list[str] = field(default_factory=list)


def check_entry(entry: WeightEntry, load: bool = True) -> CheckResult:
    """Is the entry present under :func:`weights_dir`, of the published size/checksum, and readable?"""
    path = local_path(entry)
    files = [(path / f.name if entry.is_folder else path, f) for f in entry.files]
    result = CheckResult(entry.name, path, all(p.is_file() for p, _ in files))
    for file_path, remote in files:
        if not file_path.is_file():
            result.problems.append(f"missing {file_path}")
            continue
        if remote.size is not None and file_path.stat().st_size != remote.size:
            result.problems.append(f"{file_path}: {file_path.stat().st_size} bytes, published {remote.size}")
        elif remote.sha256 and sha256_of(file_path) != remote.sha256:
            result.problems.append(f"{file_path}: sha256 differs from the published {remote.sha256}")
    if load and result.present and not result.problems:
        try:
            call_check(entry, path)
        except LasrError as err:
            result.problems.append(str(err))
    return result


def without_pretrained_files(section: Any) -> Any:
    """A copy of a ``class_path``/``init_args`` tree whose encoders read no pretrained file.

    For rebuilding a trained model whose checkpoint holds every weight: each class that declares
    ``WEIGHTS_FROM_CHECKPOINT`` (init args that skip the pretrained files, e.g. ``checkpoint: None,
    allow_random_init: True``) gets those values, so the published files need not be on the machine.
    """
    if isinstance(section, list):
        return [without_pretrained_files(item) for item in section]
    if not isinstance(section, dict):
        return section
    out = {key: without_pretrained_files(value) for key, value in section.items()}
    class_path = section.get("class_path")
    if isinstance(class_path, str) and "." in class_path:
        module, _, name = class_path.rpartition(".")
        try:
            overrides = getattr(getattr(importlib.import_module(module), name), "WEIGHTS_FROM_CHECKPOINT", None)
        except (ImportError, AttributeError):
            overrides = None  # the builder reports unknown classes
        if overrides:
            out["init_args"] = dict(out.get("init_args") or {}, **overrides)
    return out
