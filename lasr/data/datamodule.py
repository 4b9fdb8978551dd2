"""The shared LightningDataModule: audio with captions from one or more manifests, for every lasr task."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import lightning as L
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.utils.data import DataLoader, Dataset

from lasr.data.added import AddedTrainingSet, TrainingParts
from lasr.data.audio import LENGTH_TOLERANCE_SECONDS
from lasr.data.captions import CaptionPolicy
from lasr.data.datasets import CaptionPairDataset, ClipDataset, collate_clips, collate_pairs
from lasr.data.manifest import ClipRecord, read_manifest
from lasr.data.sampler import WeightedEpochSampler
from lasr.data.verify import CHECK_MODES, verify_eval_records
from lasr.errors import DataError, LasrError

log = logging.getLogger(__name__)


@dataclass
class ManifestSource:
    """A manifest file with its sampling weight and an optional filter on the records' ``split`` field."""

    path: str
    weight: float = 1.0
    splits: list[str] | None = None

    def load(self) -> list[ClipRecord]:
        """The manifest's records (of ``splits`` when given); an empty result is a :class:`DataError`."""
        records = read_manifest(self.path)
        if self.splits:
            records = [r for r in records if r.split in self.splits]
        if not records:
            where = f" in splits {self.splits}" if self.splits else ""
            raise DataError(f"the manifest lists no clips{where}", self.path)
        return records


def check_sizes(**values: float | None) -> None:
    """Raise one :class:`LasrError` naming every ``data.<key>`` that is negative, or zero where a size must be
    positive (``num_workers`` and ``max_retries`` may be 0; ``None`` means unset)."""
    may_be_zero = {"num_workers", "max_retries"}
    bad = [f"data.{k}={v}" for k, v in values.items()
           if v is not None and (v < 0 or (v == 0 and k not in may_be_zero))]
    if bad:
        raise LasrError(f"{', '.join(bad)}: must be positive")


def _as_sources(items: Sequence[ManifestSource | str] | None) -> list[ManifestSource]:
    return [ManifestSource(i) if isinstance(i, (str, Path)) else i for i in (items or [])]


class AudioTextDataModule(L.LightningDataModule):
    """Retrieval batches from manifests: flattened (clip, caption) pairs for training, per-clip for evaluation.

    Args:
        train: training manifests (concatenated; each with a sampling ``weight``).
        val: validation manifests.
        test: test manifests.
        test_relevance: DCASE 2025 relevance CSV (``query,audio_filenames``) for the multi-positive mAP@k.
        sample_rate: rate in Hz the audio encoder expects; files are resampled to it.
        train_seconds: training crop/pad length in s (random crop of longer files; baseline 30 s).
        eval_seconds: evaluation crop/pad length in s (crop from the start).
        min_seconds: clips shorter than this are bad items (e.g. shorter than one analysis frame).
        batch_size / eval_batch_size: per-device batch sizes (training batch counts caption pairs, evaluation
            batch counts clips).
        num_workers: DataLoader workers per device; ``persistent_workers`` is used only when > 0.
        caption_policy: which caption text is served for a clip's caption slot (identity by default).
        strict: a bad training file stops the run instead of being skipped and reported. Evaluation sets are
            always strict: at setup every listed clip is checked against its manifest (see ``eval_check``) and
            the run stops listing every mismatch; no evaluation clip is ever replaced.
        eval_check: ``header`` (rate and length from the header, plus one frame read at the end of the
            stream, which finds cut FLAC files) or ``full`` (decode every evaluation clip at setup, which also
            finds NaN and silent files).
        eval_tolerance_seconds: allowed difference between a file's length and its manifest's.
        seed: base seed of the epoch order and of per-item randomness.
        added: training sets built from the training clips and added after the manifests, each with its own
            sampling ``weight`` (e.g. AISTAT's LLM-mixed pairs, :class:`lasr.augment.audio.llm_mix.LLMMixPairs`).
    """

    accepts_added = True  # whether ``data.added`` sets fit this module's training items

    def __init__(
        self,
        train: list[ManifestSource] | None = None,
        val: list[ManifestSource] | None = None,
        test: list[ManifestSource] | None = None,
        test_relevance: str | None = None,
        sample_rate: int = 32000,
        train_seconds: float = 30.0,
        eval_seconds: float = 30.0,
        min_seconds: float = 0.1,
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        num_workers: int = 8,
        pin_memory: bool = True,
        caption_policy: CaptionPolicy | None = None,
        strict: bool = False,
        max_retries: int = 10,
        seed: int = 0,
        eval_check: str = "header",
        eval_tolerance_seconds: float = LENGTH_TOLERANCE_SECONDS,
        added: list[AddedTrainingSet] | None = None,
    ):
        super().__init__()
        check_sizes(batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers,
                    max_retries=max_retries, train_seconds=train_seconds, eval_seconds=eval_seconds,
                    sample_rate=sample_rate)
        if eval_check not in CHECK_MODES:
            raise LasrError(f"data.eval_check: must be one of {list(CHECK_MODES)}, got {eval_check!r}")
        self.eval_check, self.eval_tolerance_seconds = eval_check, eval_tolerance_seconds
        self.train_sources, self.val_sources, self.test_sources = map(_as_sources, (train, val, test))
        self.test_relevance = test_relevance
        self.sample_rate, self.train_seconds, self.eval_seconds = sample_rate, train_seconds, eval_seconds
        self.min_seconds, self.strict, self.max_retries, self.seed = min_seconds, strict, max_retries, seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.caption_policy = caption_policy or CaptionPolicy()
        self.added = list(added or [])
        if self.added and not self.accepts_added:
            raise LasrError(f"data.added: {type(self).__name__} serves no added training sets "
                            f"({[a.name for a in self.added]})")
        self.datasets: dict[str, Dataset] = {}
        self._train_parts: list[int] = []
        self._train_sampler: WeightedEpochSampler | None = None
        self._sampler_state: dict | None = None  # from a checkpoint, applied to the next training sampler

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and "train" not in self.datasets and self.train_sources:
            parts = [s.load() for s in self.train_sources]
            records = [r for p in parts for r in p]
            dataset = self.build_train_dataset(records)
            self._train_parts = self.part_sizes(parts)
            log.info("training items per manifest: %s", dict(zip((s.path for s in self.train_sources), self._train_parts)))
            if self.added:
                added = [a.build(records, self) for a in self.added]
                self._train_parts += [len(d) for d in added]
                log.info("added training items: %s", {a.name: len(d) for a, d in zip(self.added, added)})
                dataset = TrainingParts(dataset, added)
            self.datasets["train"] = dataset
        for name, sources in (("val", self.val_sources), ("test", self.test_sources)):
            wanted = stage in (None, "fit", "validate") if name == "val" else stage in (None, "test", "predict")
            if wanted and name not in self.datasets and sources:
                records = [r for s in sources for r in s.load()]
                verify_eval_records(records, name, self.min_seconds, self.eval_tolerance_seconds, self.eval_check)
                self.datasets[name] = self.build_eval_dataset(records, name)

    @property
    def added_changes_audio(self) -> list[str]:
        """Names of the added sets whose items are not plain clips (precomputed teachers do not describe them)."""
        return [a.name for a in self.added if a.changes_audio and a.weight > 0]

    # ---- hooks: subclasses (e.g. separation mixtures) override these four and keep the rest -------------------
    def build_train_dataset(self, records: list[ClipRecord]) -> Dataset:
        """Training dataset over the concatenated training records (retrieval: one item per caption)."""
        return CaptionPairDataset(records, self.sample_rate, self.train_seconds, self.caption_policy,
                                  self.min_seconds, self.strict, self.max_retries, self.seed)

    def part_sizes(self, parts: list[list[ClipRecord]]) -> list[int]:
        """Number of training items contributed by each manifest, in order (for the weighted sampler)."""
        return [sum(len(r.captions) for r in part) for part in parts]

    def build_eval_dataset(self, records: list[ClipRecord], stage: str) -> Dataset:
        """Validation/test dataset (retrieval: one item per clip with all its captions)."""
        return ClipDataset(records, self.sample_rate, self.eval_seconds, self.min_seconds, strict=True)

    train_collate = staticmethod(collate_pairs)
    eval_collate = staticmethod(collate_clips)

    def eval_records(self, stage: str) -> list[ClipRecord]:
        """Records of the ``val`` or ``test`` set in dataset order (clip indices in batches refer to these)."""
        return self.datasets[stage].records

    def _loader(self, dataset, batch_size: int, collate, sampler=None, shuffle=False, drop_last=False) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=shuffle, drop_last=drop_last,
                          num_workers=self.num_workers, collate_fn=collate, pin_memory=self.pin_memory,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        if "train" not in self.datasets:
            raise ValueError("no training data: set data.train to one or more manifests")
        weights = [s.weight for s in self.train_sources] + [a.weight for a in self.added]
        sampler = WeightedEpochSampler(self._train_parts, weights, shuffle=True, seed=self.seed)
        if self._sampler_state is not None:
            try:
                sampler.load_state_dict(self._sampler_state)
            except ValueError as err:
                raise LasrError(f"--ckpt_path: {err} (resume with the same data, data.seed and devices)") from None
            self._sampler_state = None
        self._train_sampler = sampler
        # drop_last keeps every global batch the same size on every rank (needed by the gathered loss)
        return self._loader(self.datasets["train"], self.batch_size, self.train_collate, sampler=sampler, drop_last=True)

    # ---- mid-epoch resume: Lightning stores these in every checkpoint and restores them before training ------
    def state_dict(self) -> dict:
        """Where training is in the sampler's epoch: ``{"train_sampler": {seed, epoch, position, ...}}``.

        The position counts the batches Lightning has trained in this epoch (``batch_progress.current.processed``,
        the count it resumes its own batch index from), not the loader's, which runs ahead by its prefetch.
        """
        trainer = self.trainer
        if self._train_sampler is None or trainer is None:
            return {}
        trained = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {"train_sampler": self._train_sampler.state_dict(trained * self.batch_size)}

    def load_state_dict(self, state: dict) -> None:
        self._sampler_state = state.get("train_sampler")
        if self._sampler_state is not None:  # Lightning only sees stateful DataLoaders, not this module's state
            warnings.filterwarnings("ignore", "You're resuming from a checkpoint that ended before the epoch ended",
                                    PossibleUserWarning)

    def val_dataloader(self) -> DataLoader:
        if "val" not in self.datasets:
            return []
        return self._loader(self.datasets["val"], self.eval_batch_size, self.eval_collate)

    def test_dataloader(self) -> DataLoader:
        if "test" not in self.datasets:
            raise ValueError("no test data: set data.test to one or more manifests")
        return self._loader(self.datasets["test"], self.eval_batch_size, self.eval_collate)

    def predict_dataloader(self) -> DataLoader:
        """Prediction runs over the test set."""
        return self.test_dataloader()
