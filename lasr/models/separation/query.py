"""Frozen query encoders (text -> condition vector) and a cache of their embeddings.

The separator's query tower is frozen, so the embedding of a caption string never changes: every string the data
can serve (captions, their augmented variants, validation queries) is embedded once, before training, and the
training loop only looks vectors up (:class:`QueryEmbeddingCache`). Models come from local files only.

* :class:`ClapTextQuery`: the CLAP text tower (RoBERTa -> 2-layer projection -> L2 norm, 512-d) as used by AudioSep
  and the DCASE 2024 T9 baseline, through ``transformers.ClapTextModelWithProjection``.
* :class:`HFTextQuery`: any local Hugging Face encoder with a pooling (``"minilm"`` = all-MiniLM-L6-v2), plus an
  optional frozen random projection to the separator's condition size.
* :class:`RetrievalTextQuery`: the text tower and projection of a lasr retrieval checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lasr.errors import DataError, LasrError
from lasr.utils.atomic import atomic_path

log = logging.getLogger(__name__)

ROBERTA_PAD_ID, ROBERTA_BOS_ID, ROBERTA_EOS_ID = 1, 0, 2
BYTE_TOKEN_OFFSET = 3  # ids 0..2 are <s>, <pad>, </s> in RoBERTa vocabularies


def check_queries(captions: list[str]) -> None:
    """Raise :class:`DataError` for a non-list or an empty / blank query."""
    if isinstance(captions, str) or not isinstance(captions, (list, tuple)):
        raise TypeError("queries must be a list of strings")
    for i, caption in enumerate(captions):
        if not isinstance(caption, str) or not caption.strip():
            raise DataError(f"empty text query {caption!r}", "queries", i)


class QueryEncoder(nn.Module):
    """Base class: frozen, always in eval mode, returns L2-normalised (B, output_dim) float32 embeddings.

    Subclasses implement ``_embed(captions) -> (B, D)`` and set ``output_dim`` and ``init_args`` (their constructor
    arguments, stored in checkpoints so a tool can rebuild the encoder).
    """

    output_dim: int
    init_args: dict[str, Any]

    def freeze(self) -> None:
        for param in self.parameters():
            param.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "QueryEncoder":
        return super().train(False)  # frozen: dropout stays off whatever the trainer asks

    def spec(self) -> dict[str, Any]:
        return {"class_path": f"{type(self).__module__}.{type(self).__qualname__}", "init_args": dict(self.init_args)}

    def fingerprint(self) -> str:
        """Hash of the class, arguments and weights: cached embeddings are valid only for the same fingerprint."""
        digest = hashlib.blake2b(json.dumps(self.spec(), sort_keys=True, default=str).encode(), digest_size=12)
        self._digest_weights(digest)
        return digest.hexdigest()

    def weights_fingerprint(self) -> str:
        """Hash of the class and weights only (not of file paths): the same tower wherever its files lie.
        Separation checkpoints record it; a tool rebuilding the tower refuses a different one."""
        digest = hashlib.blake2b(type(self).__qualname__.encode(), digest_size=12)
        self._digest_weights(digest)
        return digest.hexdigest()

    def _digest_weights(self, digest) -> None:
        for name, tensor in sorted(self.state_dict().items()):
            digest.update(name.encode())
            # the exact bytes: a float sum would depend on the thread count (parallel reduction order)
            digest.update(tensor.detach().cpu().float().contiguous().numpy().tobytes())

    @torch.no_grad()
    def forward(self, captions: list[str]) -> Tensor:
        check_queries(captions)
        return F.normalize(self._embed(list(captions)).float(), dim=-1)

    def _embed(self, captions: list[str]) -> Tensor:
        raise NotImplementedError


def build_query_encoder(spec: dict[str, Any]) -> QueryEncoder:
    """Instantiate a query encoder from ``{"class_path", "init_args"}`` (as stored in lasr checkpoints)."""
    import importlib

    module_name, _, class_name = spec["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, QueryEncoder)):
        raise LasrError(f"{spec['class_path']} is not a lasr query encoder")
    return cls(**spec.get("init_args", {}))


class _ByteTokenizer:
    """Stand-in tokenizer for a randomly initialised CLAP tower (no vocabulary on disk): UTF-8 bytes as ids."""

    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size

    def __call__(self, captions: list[str], max_length: int) -> dict[str, Tensor]:
        rows = [[ROBERTA_BOS_ID] + [BYTE_TOKEN_OFFSET + (b % (self.vocab_size - BYTE_TOKEN_OFFSET))
                                    for b in c.encode("utf-8")][: max_length - 2] + [ROBERTA_EOS_ID] for c in captions]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), ROBERTA_PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


LAION_CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
LAION_TEXT_PREFIXES = {"text_branch.": "text_model.", "text_projection.0.": "text_projection.linear1.",
                       "text_projection.2.": "text_projection.linear2."}
ROBERTA_LAYER_NORM_EPS = 1e-5  # laion_clap builds its text branch as RobertaModel("roberta-base")
ROBERTA_HEAD_SIZE = 64


def laion_text_state(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The text tower of a LAION-CLAP ``.pt`` (e.g. ``music_speech_audioset_epoch_15_esc_89.98.pt``, RoBERTa text
    branch) as a ``ClapTextModelWithProjection`` state dict, plus the ``ClapTextConfig`` its shapes imply.

    laion_clap keys: ``[module.]text_branch.*`` (a RobertaModel) and ``text_projection.{0,2}.*`` (Linear, ReLU,
    Linear); transformers: ``text_model.*`` and ``text_projection.linear{1,2}.*``. The audio tower is dropped.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same setup error
        raise LasrError(f"{path}: cannot read the LAION-CLAP checkpoint ({str(err)[:200]})") from None
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else {}
    text: dict[str, Tensor] = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        for old, new in LAION_TEXT_PREFIXES.items():
            if key.startswith(old):
                text[new + key[len(old):]] = value
    text.pop("text_model.embeddings.position_ids", None)  # a buffer in older transformers (LAION-AI/CLAP#113)
    if "text_model.embeddings.word_embeddings.weight" not in text or "text_projection.linear2.weight" not in text:
        raise LasrError(f"{path}: no LAION-CLAP RoBERTa text tower in this file (text_branch.*, text_projection.*)")
    vocab, hidden = text["text_model.embeddings.word_embeddings.weight"].shape
    layers = 1 + max(int(k.split(".")[3]) for k in text if k.startswith("text_model.encoder.layer."))
    config = {"vocab_size": vocab, "hidden_size": hidden, "num_hidden_layers": layers,
              "num_attention_heads": max(1, hidden // ROBERTA_HEAD_SIZE),
              "intermediate_size": text["text_model.encoder.layer.0.intermediate.dense.weight"].shape[0],
              "max_position_embeddings": text["text_model.embeddings.position_embeddings.weight"].shape[0],
              "type_vocab_size": text["text_model.embeddings.token_type_embeddings.weight"].shape[0],
              "projection_dim": text["text_projection.linear2.weight"].shape[0],
              "layer_norm_eps": ROBERTA_LAYER_NORM_EPS, "projection_hidden_act": "relu"}
    return text, config


class ClapTextQuery(QueryEncoder):
    """CLAP text tower: ``ClapTextModelWithProjection`` -> ``text_embeds`` (512-d) -> L2 norm.

    The DCASE baseline's CLAP is LAION's ``music_speech_audioset_epoch_15_esc_89.98.pt`` (HTSAT-base + RoBERTa).
    ``name_or_path`` may be that file itself (the text tower is read out of it; ``tokenizer`` must then name a local
    RoBERTa tokenizer folder, e.g. roberta-base or any CLAP conversion, which all ship roberta-base's) or a local
    Hugging Face CLAP folder. Which HF conversion holds these weights is not settled (docs/separation.md, "CLAP");
    :func:`laion_text_state` and a test check that both layouts give the same embeddings. lasr never downloads.

    Args:
        name_or_path: LAION ``.pt`` / local HF folder / cached hub id. ``None`` is a setup error unless
            ``allow_random_init``.
        max_length: token limit (the reference pads every caption to 512; padding is masked, so padding to the
            longest caption gives the same embedding at a fraction of the cost).
        tokenizer: local tokenizer folder (default: ``name_or_path`` when it is a folder).
        allow_random_init: with no weights, build a random tower seeded by ``random_seed`` and a byte-level
            stand-in tokenizer (for tests and pipelines only: queries are meaningless, but reproducible from the
            checkpoint's record).
        random_config: ``ClapTextConfig`` overrides for the random tower (e.g. a tiny one in tests).
        random_seed: seed of the random tower.
    """

    def __init__(self, name_or_path: str | None = None, max_length: int = 512, tokenizer: str | None = None,
                 allow_random_init: bool = False, random_config: dict[str, Any] | None = None,
                 random_seed: int = 0):
        super().__init__()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer, ClapTextConfig, ClapTextModelWithProjection

        self.init_args = {"name_or_path": name_or_path, "max_length": max_length, "tokenizer": tokenizer,
                          "allow_random_init": allow_random_init, "random_config": random_config,
                          "random_seed": random_seed}
        self.max_length = max_length
        if name_or_path is None:
            if not allow_random_init:
                raise LasrError("ClapTextQuery: no CLAP text tower given (name_or_path is null); set it to the "
                                "baseline's music_speech_audioset_epoch_15_esc_89.98.pt or a local HF CLAP folder, "
                                "or set allow_random_init: true for a random tower (tests only)")
            log.warning("ClapTextQuery: allow_random_init and no weights: a RANDOM text tower (seed %d). Separation "
                        "queries are meaningless; see docs/separation.md", random_seed)
            config = ClapTextConfig(**(random_config or {}))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(random_seed)
                self.model = ClapTextModelWithProjection(config)
            self.tokenizer = _ByteTokenizer(config.vocab_size)
        elif Path(name_or_path).suffix in LAION_CHECKPOINT_SUFFIXES:
            if not Path(name_or_path).is_file():
                raise LasrError(f"LAION-CLAP checkpoint {name_or_path} not found")
            if tokenizer is None:
                raise LasrError(f"{name_or_path} holds no tokenizer: set tokenizer to a local RoBERTa tokenizer "
                                "folder (roberta-base, or any HF CLAP conversion)")
            state, config = laion_text_state(name_or_path)
            self.model = ClapTextModelWithProjection(ClapTextConfig(**config))
            missing, unexpected = self.model.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
            if missing or unexpected:
                raise LasrError(f"{name_or_path}: text tower keys do not match (missing {missing[:3]}, "
                                f"unexpected {unexpected[:3]})")
            self.tokenizer = self._load_tokenizer(AutoTokenizer, tokenizer)
        else:
            try:
                self.model = ClapTextModelWithProjection.from_pretrained(name_or_path, local_files_only=True)
            except (OSError, ValueError) as err:
                raise LasrError(f"CLAP text model {name_or_path!r} is not available locally ({str(err)[:200]}); "
                                "give the LAION .pt or a downloaded HF CLAP folder") from None
            self.tokenizer = self._load_tokenizer(AutoTokenizer, tokenizer or name_or_path)
        self.output_dim = int(self.model.config.projection_dim)
        self.freeze()

    @staticmethod
    def _load_tokenizer(auto, path: str):
        try:
            return auto.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:
            raise LasrError(f"tokenizer {path!r} is not available locally ({str(err)[:200]})") from None

    def _embed(self, captions: list[str]) -> Tensor:
        device = next(self.model.parameters()).device
        if isinstance(self.tokenizer, _ByteTokenizer):
            tokens = self.tokenizer(captions, self.max_length)
        else:
            tokens = self.tokenizer(captions, padding="longest", truncation=True, max_length=self.max_length,
                                    return_tensors="pt")
        tokens = {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        return self.model(**tokens).text_embeds


class HFTextQuery(QueryEncoder):
    """A local Hugging Face text encoder with a pooling, optionally projected to ``projection_dim``.

    The projection is a fixed random Gaussian matrix (seeded; scaled by 1/sqrt(dim)): it lets e.g. a 384-d MiniLM
    drive a separator built for 512-d CLAP conditions. A trainable projection would be redundant, since the
    separator's first use of the condition is already linear.

    Args:
        name_or_path: local folder / cached hub id, or ``"minilm"`` (all-MiniLM-L6-v2 shipped as a package).
        pooling: ``"mean"`` (sentence-transformers models) or ``"first"``.
        max_length: token limit.
        projection_dim: output size; ``None`` keeps the encoder's hidden size.
        projection_seed: seed of the random projection.
    """

    def __init__(self, name_or_path: str = "minilm", pooling: str = "mean", max_length: int = 128,
                 projection_dim: int | None = None, projection_seed: int = 0):
        super().__init__()
        from lasr.models.text import HFTextEncoder

        self.init_args = {"name_or_path": name_or_path, "pooling": pooling, "max_length": max_length,
                          "projection_dim": projection_dim, "projection_seed": projection_seed}
        self.encoder = HFTextEncoder(name_or_path, pretrained=True, pooling=pooling, max_length=max_length,
                                     lowercase=False, strip_punctuation=False, hidden_dropout=0.0,
                                     attention_dropout=0.0)
        hidden = self.encoder.output_dim
        projection = None
        if projection_dim is not None:
            generator = torch.Generator().manual_seed(projection_seed)
            projection = torch.randn(hidden, projection_dim, generator=generator) / projection_dim ** 0.5
        self.register_buffer("projection", projection)
        self.output_dim = int(projection_dim or hidden)
        self.freeze()

    def _embed(self, captions: list[str]) -> Tensor:
        hidden = self.encoder(captions)
        return hidden if self.projection is None else hidden @ self.projection


class RetrievalTextQuery(QueryEncoder):
    """Text tower + projection of a lasr retrieval (dual encoder) checkpoint; the audio tower is discarded.

    Args:
        checkpoint: ``RetrievalTask`` Lightning checkpoint.
        config: its training config (found automatically next to the checkpoint / under ``logs/`` if ``None``).
    """

    def __init__(self, checkpoint: str, config: str | None = None):
        super().__init__()
        from lasr.models.checkpoints import load_retrieval_model

        self.init_args = {"checkpoint": checkpoint, "config": config}
        dual = load_retrieval_model(checkpoint, config)
        self.text_encoder, self.text_projection = dual.text_encoder, dual.text_projection
        self.output_dim = int(self.text_projection.out_features)
        self.freeze()

    def _embed(self, captions: list[str]) -> Tensor:
        return self.text_projection(self.text_encoder(captions))


class QueryEmbeddingCache:
    """Embeddings of caption strings, computed once with a frozen :class:`QueryEncoder`.

    Args:
        encoder: the frozen query encoder.
        path: optional ``.pt`` file; reused when its fingerprint matches the encoder, rewritten after ``add``.
        batch_size: captions per encoder call.
        writable: rewrite ``path`` after ``add``; False for DDP ranks other than 0, which only read it.
    """

    def __init__(self, encoder: QueryEncoder, path: str | Path | None = None, batch_size: int = 64,
                 writable: bool = True):
        self.encoder, self.path, self.batch_size = encoder, Path(path) if path else None, batch_size
        self.writable = writable
        self.fingerprint = encoder.fingerprint()
        self.index: dict[str, int] = {}
        self.vectors = torch.empty(0, encoder.output_dim)
        self._warned = False
        if self.path is not None and self.path.is_file():
            self._load()

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, caption: str) -> bool:
        return caption in self.index

    def _load(self) -> None:
        data = torch.load(self.path, map_location="cpu", weights_only=True)
        if data.get("fingerprint") != self.fingerprint:
            log.info("%s: cached query embeddings are for another encoder; recomputing", self.path)
            return
        self.index = {c: i for i, c in enumerate(data["captions"])}
        self.vectors = data["embeddings"].float()
        log.info("loaded %d cached query embeddings from %s", len(self.index), self.path)

    def save(self) -> None:
        if self.path is None or not self.writable:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        captions = sorted(self.index, key=self.index.get)
        with atomic_path(self.path) as tmp:
            torch.save({"fingerprint": self.fingerprint, "captions": captions, "embeddings": self.vectors}, tmp)

    def add(self, captions: Iterable[str]) -> int:
        """Embed every string not yet cached (blank strings are ignored); returns how many were computed."""
        new = sorted({c for c in captions if isinstance(c, str) and c.strip() and c not in self.index})
        if not new:
            return 0
        chunks = [self.encoder(new[i: i + self.batch_size]).cpu() for i in range(0, len(new), self.batch_size)]
        start = len(self.index)
        self.index.update({c: start + i for i, c in enumerate(new)})
        self.vectors = torch.cat([self.vectors, *chunks])
        self.save()
        return len(new)

    def lookup(self, captions: list[str]) -> Tensor:
        """(B,) strings -> (B, D) embeddings on the CPU; strings missing from the cache are embedded now."""
        check_queries(captions)
        missing = [c for c in captions if c not in self.index]
        if missing:
            if not self._warned:
                log.warning("%d query string(s) were not pre-computed (e.g. %r); embedding them on the fly",
                            len(set(missing)), missing[0])
                self._warned = True
            self.add(missing)
        return self.vectors[torch.tensor([self.index[c] for c in captions], dtype=torch.long)]
