"""Separation data: mixtures made on the fly for training, mixtures from a (source, noise, snr, caption) CSV
for evaluation, both served by :class:`SeparationDataModule` from the same manifests as retrieval.

Training (as the AudioSep / DCASE 2024 T9 mixer, made exact): a target segment plus one interferer whose captions
differ from the query (and which shares no class label with the target when both have labels); the interferer is
energy-matched to the target and then scaled to a target-to-interferer ratio drawn uniformly from
``[min_snr_db, max_snr_db]`` (integers by default, as the reference); when the mixture peaks above 1, target and
mixture are scaled to a peak of 0.9. The query is the target's caption through the DataModule's caption policy.

``mixer: baseline`` reproduces the reference ``SegmentMixer`` instead: the interferer of batch item n is item
n+1 of the shuffled batch (per caption entry, no caption or class check), energy-matched with the energy ratio
clamped to [0.02, 50], scaled by a whole-dB gain, then energy-matched and scaled again (the second gain sets the
final level), with the same peak rule; see :func:`baseline_mix`.

Evaluation: each CSV row is mixed exactly as the DCASE evaluator does (``noise *= sqrt(Ps / (10^(snr/10) Pn))``,
same peak rule). ``lasr data mixtures`` writes such a CSV deterministically from manifests.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from lasr.data.audio import load_clip, pad_or_crop
from lasr.data.captions import CaptionPolicy
from lasr.data.datamodule import AudioTextDataModule
from lasr.data.datasets import _AudioSource, _SkippingDataset
from lasr.data.manifest import ClipRecord, read_manifest
from lasr.data.text import caption_identity_key
from lasr.data.verify import verify_audio_files
from lasr.errors import AudioError, DataError
from lasr.utils.atomic import atomic_open

log = logging.getLogger(__name__)

SILENT_POWER = 1e-10  # mean square below this (-100 dB) counts as silent: energy matching would divide by ~0
SILENT_DB = -100.0
CSV_COLUMNS = ("source", "noise", "snr", "caption")
MIXERS = ("lasr", "baseline")
REFERENCE_ENERGY_RATIO_CLAMP = (0.02, 50.0)  # Audio-AGI/AudioSep:data/waveform_mixers.py get_energy_ratio


@dataclass(frozen=True)
class MixtureSpec:
    """One evaluation mixture: audio paths, target-to-noise ratio in dB, query text."""

    source: str
    noise: str
    snr: float
    caption: str
    row: int | None = None  # CSV line, for error messages


def power(wave: Tensor) -> float:
    """Mean square of a waveform (energy per sample)."""
    return float(wave.double().pow(2).mean())


def mix_at_snr(target: Tensor, interferer: Tensor, snr_db: float, peak_limit: float = 1.0,
               peak_scale: float = 0.9, allow_silent: bool = False) -> tuple[Tensor, Tensor]:
    """Scale ``interferer`` so that ``10 log10(P_target / P_noise) = snr_db``, add, protect the peak.

    Args:
        target, interferer: (S,) waveforms of equal length.
        snr_db: target-to-interferer ratio in dB.
        peak_limit: when ``max|mixture|`` exceeds this, target and mixture are scaled to a peak of ``peak_scale``
            (the SNR is unchanged).
        allow_silent: evaluation behaviour for a silent target or interferer (mean square < ``SILENT_POWER``):
            the interferer is dropped (mixture = target) instead of raising.

    Returns:
        (mixture, target), both (S,) float32.

    Raises:
        AudioError: a silent target or interferer when ``allow_silent`` is False.
    """
    if target.shape != interferer.shape:
        raise ValueError(f"target {tuple(target.shape)} and interferer {tuple(interferer.shape)} differ in shape")
    p_target, p_noise = power(target), power(interferer)
    if p_target < SILENT_POWER or p_noise < SILENT_POWER:
        if not allow_silent:
            raise AudioError(f"silent {'target' if p_target < SILENT_POWER else 'interferer'} segment")
        gain = 0.0
    else:
        gain = math.sqrt(p_target / (p_noise * 10.0 ** (snr_db / 10.0)))  # energy match, then the drawn ratio
    target = target.double()
    mixture = target + gain * interferer.double()
    peak = float(mixture.abs().max())
    if peak > peak_limit:
        target, mixture = target * (peak_scale / peak), mixture * (peak_scale / peak)
    return mixture.float(), target.float()


def baseline_mix(segments: Tensor, first_db: Tensor, second_db: Tensor, peak_scale: float = 0.9,
                 ratio_clamp: tuple[float, float] = REFERENCE_ENERGY_RATIO_CLAMP) -> tuple[Tensor, Tensor]:
    """The reference batch mixer: item n is the target, item (n+1) mod B its interferer.

    The interferer is divided by ``sqrt(E_interferer / E_target)`` clamped to ``ratio_clamp`` and multiplied by
    ``10^(first_db/20)``; the result is matched and scaled the same way with ``second_db`` (so, unclamped, the
    target-to-interferer ratio is ``-second_db``). Energies are means over the whole segment, the target's
    floored at 1e-10. A mixture peaking above 1 is scaled, with its target, to ``peak_scale``.

    Args:
        segments: (B, S) target segments in batch order.
        first_db, second_db: (B,) gains in dB of the two loudness steps.

    Returns:
        (mixtures, targets), both (B, S) float32.
    """
    targets = segments.double()
    target_energy = targets.pow(2).mean(-1).clamp(min=SILENT_POWER)

    def matched(audio: Tensor, gain_db: Tensor) -> Tensor:
        ratio = (audio.pow(2).mean(-1) / target_energy).sqrt().clamp(*ratio_clamp)
        return audio / ratio[:, None] * (10.0 ** (gain_db.double() / 20.0))[:, None]

    noise = matched(matched(targets.roll(-1, dims=0), first_db), second_db)
    mixtures = targets + noise
    peak = mixtures.abs().amax(-1, keepdim=True)
    scale = torch.where(peak > 1.0, peak_scale / peak, torch.ones_like(peak))
    return (mixtures * scale).float(), (targets * scale).float()


def draw_snr(rng: np.random.Generator, low: float, high: float, integer: bool) -> float:
    """Uniform target-to-interferer ratio in dB; integers in [low, high] when ``integer`` (the reference)."""
    if integer:
        return float(rng.integers(math.ceil(low), math.floor(high) + 1))
    return float(rng.uniform(low, high))


def compatible(target: ClipRecord, other: ClipRecord, query: str) -> bool:
    """Can ``other`` interfere with ``target`` queried by ``query``: another clip, none of its captions equal to
    the query, and no shared class label when both clips have labels."""
    if other.key == target.key or other.audio_path == target.audio_path:
        return False
    if any(caption_identity_key(c) == caption_identity_key(query) for c in other.captions):
        return False
    return not (target.labels and other.labels and set(target.labels) & set(other.labels))


def pick_interferer(records: Sequence[ClipRecord], target: ClipRecord, query: str, rng: np.random.Generator,
                    tries: int) -> ClipRecord:
    """A random compatible interferer; :class:`DataError` after ``tries`` incompatible draws."""
    for _ in range(tries):
        other = records[int(rng.integers(len(records)))]
        if compatible(target, other, query):
            return other
    raise DataError(f"no interferer for {target.key!r} after {tries} draws: every clip drawn shares its caption "
                    "or a class label", target.audio_path)


# ---- evaluation mixtures: plan, CSV ------------------------------------------------------------------------------
def plan_mixtures(records: Sequence[ClipRecord], per_clip: int = 1, seed: int = 0, min_snr_db: float = -15.0,
                  max_snr_db: float = 15.0, integer_snr: bool = True, tries: int = 100) -> list[MixtureSpec]:
    """Deterministic evaluation mixtures: for each captioned clip, ``per_clip`` rows with one of its captions,
    a compatible noise clip and an SNR (the DCASE validation set uses -15..15 dB).
    """
    captioned = [r for r in records if any(c.strip() for c in r.captions)]
    if len(records) < 2 or not captioned:
        raise DataError(f"need at least two clips and one caption to plan mixtures, got {len(records)} clips")
    specs = []
    for i, record in enumerate(captioned):
        rng = np.random.default_rng((seed, i))
        captions = [c for c in record.captions if c.strip()]
        for _ in range(per_clip):
            caption = captions[int(rng.integers(len(captions)))]
            noise = pick_interferer(records, record, caption, rng, tries)
            specs.append(MixtureSpec(record.audio_path, noise.audio_path,
                                     draw_snr(rng, min_snr_db, max_snr_db, integer_snr), caption))
    return specs


def write_mixture_csv(specs: Sequence[MixtureSpec], path: str | Path) -> int:
    """Write ``source,noise,snr,caption`` rows (the DCASE layout, here with audio paths) atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for spec in specs:
            snr = int(spec.snr) if float(spec.snr).is_integer() else spec.snr
            writer.writerow([spec.source, spec.noise, snr, spec.caption])
    return len(specs)


def _resolve_audio(name: str, bases: Sequence[Path]) -> str:
    for base in bases:
        for candidate in (base / name, base / f"{name}.wav"):
            if candidate.is_file():
                return str(candidate)
    return str(bases[0] / name)  # reported as missing when loaded


def read_mixture_csv(path: str | Path, audio_dir: str | Path | None = None) -> list[MixtureSpec]:
    """Rows of a ``source,noise,snr,caption`` CSV (header skipped). ``source``/``noise`` are paths or DCASE ids
    (``<audio_dir>/<id>.wav``), relative to ``audio_dir`` or else to the CSV's folder."""
    path = Path(path)
    if not path.is_file():
        raise DataError("mixture CSV not found", path)
    bases = [Path(audio_dir)] if audio_dir else []
    bases.append(path.parent)
    specs = []
    with open(path, encoding="utf-8", newline="") as handle:
        for row_no, row in enumerate(csv.reader(handle), start=1):
            if row_no == 1 or not row:
                continue
            if len(row) != 4:
                raise DataError(f"expected 4 columns {CSV_COLUMNS}, got {len(row)}", path, row_no)
            try:
                snr = float(row[2])
            except ValueError:
                raise DataError(f"snr {row[2]!r} is not a number", path, row_no) from None
            if not row[3].strip():
                raise DataError("empty caption (query)", path, row_no)
            specs.append(MixtureSpec(_resolve_audio(row[0], bases), _resolve_audio(row[1], bases), snr, row[3],
                                     row_no))
    if not specs:
        raise DataError("no mixtures in the CSV", path)
    return specs


# ---- datasets ----------------------------------------------------------------------------------------------------
class MixtureTrainDataset(_SkippingDataset):
    """One item per (clip, caption) target, mixed with a random interferer on every access.

    Items keyed ``(index, epoch)`` draw crops, interferer and SNR from ``(seed, epoch, index)``; plain indices
    from ``(seed, index)``. Returns ``mixture``/``target`` (S,) float32, ``caption``, ``snr_db``, ids.

    With ``mixer="baseline"`` an item is only the target crop (as the reference: one random crop, no silence
    redraw) with its two whole-dB interferer gains ``gains_db``; :class:`BaselineMixtureCollate` mixes the
    batch.
    """

    def __init__(self, records: Sequence[ClipRecord], sample_rate: int, segment_seconds: float,
                 caption_policy: CaptionPolicy | None = None, min_snr_db: float = -10.0, max_snr_db: float = 10.0,
                 integer_snr: bool = True, peak_scale: float = 0.9, min_seconds: float = 0.0,
                 interferer_tries: int = 50, silence_db: float = SILENT_DB, crop_tries: int = 5,
                 strict: bool = False, max_retries: int = 10, seed: int = 0, mixer: str = "lasr"):
        super().__init__(strict, max_retries, seed)
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")
        self.mixer = mixer
        self.records = list(records)
        uncaptioned = [r for r in self.records if not any(text.strip() for text in r.captions)]
        if uncaptioned:  # it would only ever be an interferer, never a target: almost surely a wrong manifest
            raise DataError(f"{len(uncaptioned)} of {len(self.records)} training clips have no caption (e.g. "
                            f"{uncaptioned[0].key!r}); every separation training clip needs a text query "
                            "(FSD50K: lasr data prepare-fsd50k --auto-captions)", uncaptioned[0].audio_path)
        self.pairs = [(c, s) for c, r in enumerate(self.records) for s, text in enumerate(r.captions) if text.strip()]
        if len(self.records) < 2:
            raise DataError("separation training needs at least two captioned clips")
        self.audio = _AudioSource(sample_rate, segment_seconds, min_seconds)
        self.caption_policy = caption_policy or CaptionPolicy()
        self.snr_range, self.integer_snr, self.peak_scale = (min_snr_db, max_snr_db), integer_snr, peak_scale
        self.interferer_tries, self.crop_tries = interferer_tries, crop_tries
        self.min_power = max(10.0 ** (silence_db / 10.0), SILENT_POWER)

    def __len__(self) -> int:
        return len(self.pairs)

    def _item(self, index: int, rng: np.random.Generator | None) -> dict[str, Any]:
        rng = rng if rng is not None else np.random.default_rng((self.seed, index))
        clip, slot = self.pairs[index]
        record = self.records[clip]
        caption = self.caption_policy.caption(record, slot, rng)
        if self.mixer == "baseline":
            target = self._segment(record, rng, tries=1, min_power=0.0)
            gains = [draw_snr(rng, *self.snr_range, self.integer_snr) for _ in range(2)]  # the reference's d1, d2
            return {"target": target, "caption": caption, "gains_db": gains, "snr_db": -gains[1],
                    "target_id": record.id, "dataset": record.dataset, "index": index}
        target = self._segment(record, rng)
        if target is None:
            raise AudioError(f"no crop of the target above the silence level in {self.crop_tries} draws",
                             record.audio_path)
        noise, other = self._interferer(record, caption, rng)
        snr = draw_snr(rng, *self.snr_range, self.integer_snr)
        mixture, target = mix_at_snr(target, noise, snr, peak_scale=self.peak_scale)
        return {"mixture": mixture, "target": target, "caption": caption, "snr_db": snr, "target_id": record.id,
                "interferer_id": other.id, "dataset": record.dataset, "index": index}

    def _interferer(self, record: ClipRecord, caption: str, rng: np.random.Generator) -> tuple[Tensor, ClipRecord]:
        for _ in range(self.interferer_tries):
            other = pick_interferer(self.records, record, caption, rng, self.interferer_tries)
            try:
                noise = self._segment(other, rng)
            except AudioError as err:  # a bad interferer costs a redraw, not the target
                log.debug("interferer %s skipped: %s", other.key, err)
                continue
            if noise is not None:
                return noise, other
        raise AudioError(f"no usable (readable, non-silent) interferer after {self.interferer_tries} draws",
                         record.audio_path)

    def _segment(self, record: ClipRecord, rng: np.random.Generator, tries: int | None = None,
                 min_power: float | None = None) -> Tensor | None:
        """A random crop whose mean power reaches the silence level (redrawn up to ``crop_tries`` times)."""
        min_power = self.min_power if min_power is None else min_power
        for _ in range(self.crop_tries if tries is None else tries):  # the loader's own silence check is off
            wave = pad_or_crop(self.audio.read(record, rng, check_silence=False)[0], self.audio.length)
            if power(wave) >= min_power:
                return wave
        return None


class MixtureEvalDataset(Dataset):
    """Evaluation mixtures, mixed as the DCASE evaluator does; the target sets the length (noise cropped/padded).

    Args:
        specs: rows (paths, snr, caption).
        sample_rate: Hz; files are resampled.
        max_seconds: longer targets are cut to this many seconds from the start (``None``: whole files).
    """

    def __init__(self, specs: Sequence[MixtureSpec], sample_rate: int, max_seconds: float | None = None,
                 source_name: str = "mixtures"):
        self.specs, self.sample_rate, self.max_seconds = list(specs), sample_rate, max_seconds
        self.source_name = source_name

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        spec = self.specs[index]
        try:
            target, _ = load_clip(spec.source, self.sample_rate, self.max_seconds, check_silence=False)
            noise, _ = load_clip(spec.noise, self.sample_rate, self.max_seconds, check_silence=False)
        except AudioError as err:
            raise DataError(str(err), self.source_name, spec.row if spec.row is not None else index) from None
        noise = pad_or_crop(noise, target.shape[-1])
        degenerate = power(target) < SILENT_POWER or power(noise) < SILENT_POWER
        mixture, target = mix_at_snr(target, noise, spec.snr, allow_silent=True)
        return {"mixture": mixture, "target": target, "caption": spec.caption, "snr_db": spec.snr,
                "source": spec.source, "noise": spec.noise, "index": index, "degenerate": degenerate}


def collate_mixtures(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Training batch: ``mixture``/``target`` (B, S), ``snr_db`` (B,), ``index`` (B,), lists ``caption``,
    ``target_id``, ``interferer_id``, ``dataset``, ``skipped``."""
    return {
        "mixture": torch.stack([i["mixture"] for i in items]), "target": torch.stack([i["target"] for i in items]),
        "snr_db": torch.tensor([i["snr_db"] for i in items], dtype=torch.float32),
        "index": torch.tensor([i["index"] for i in items], dtype=torch.long),
        "caption": [i["caption"] for i in items], "target_id": [i["target_id"] for i in items],
        "interferer_id": [i["interferer_id"] for i in items], "dataset": [i["dataset"] for i in items],
        "skipped": [s for i in items for s in i["skipped"]],
    }


class BaselineMixtureCollate:
    """Training batch mixed as the reference ``SegmentMixer`` (:func:`baseline_mix`); same keys as
    :func:`collate_mixtures`, ``interferer_id`` being the next item's clip."""

    def __init__(self, peak_scale: float = 0.9, ratio_clamp: tuple[float, float] = REFERENCE_ENERGY_RATIO_CLAMP):
        self.peak_scale, self.ratio_clamp = peak_scale, tuple(ratio_clamp)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        gains = torch.tensor([i["gains_db"] for i in items], dtype=torch.float64)
        mixture, target = baseline_mix(torch.stack([i["target"] for i in items]), gains[:, 0], gains[:, 1],
                                       self.peak_scale, self.ratio_clamp)
        ids = [i["target_id"] for i in items]
        return collate_mixtures([item | {"mixture": mixture[n], "target": target[n],
                                         "interferer_id": ids[(n + 1) % len(ids)]} for n, item in enumerate(items)])


def collate_eval_mixtures(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Evaluation batch, zero-padded to the longest item: ``mixture``/``target`` (B, S), ``length`` (B,) samples,
    ``snr_db`` (B,), ``index`` (B,), ``degenerate`` (B,) bool, lists ``caption``, ``source``, ``noise``."""
    length = max(i["mixture"].shape[-1] for i in items)
    return {
        "mixture": torch.stack([pad_or_crop(i["mixture"], length) for i in items]),
        "target": torch.stack([pad_or_crop(i["target"], length) for i in items]),
        "length": torch.tensor([i["mixture"].shape[-1] for i in items], dtype=torch.long),
        "snr_db": torch.tensor([i["snr_db"] for i in items], dtype=torch.float32),
        "index": torch.tensor([i["index"] for i in items], dtype=torch.long),
        "degenerate": torch.tensor([i["degenerate"] for i in items], dtype=torch.bool),
        "caption": [i["caption"] for i in items], "source": [i["source"] for i in items],
        "noise": [i["noise"] for i in items], "skipped": [],
    }


# ---- DataModule --------------------------------------------------------------------------------------------------
class SeparationDataModule(AudioTextDataModule):
    """Mixture batches from the shared manifests (all :class:`AudioTextDataModule` arguments apply:
    ``train_seconds`` is the training segment, ``eval_seconds`` the longest evaluation target).

    Args:
        min_snr_db, max_snr_db: training target-to-interferer ratio range in dB (reference -10..10).
        integer_snr: draw whole dB values as the reference (False: continuous uniform).
        peak_scale: peak of a mixture that exceeded 1 after scaling (reference 0.9).
        interferer_tries: random draws allowed to find a compatible, usable interferer.
        silence_db: a training crop whose mean power (dB re full scale) is below this counts as silent and is
            redrawn (up to ``crop_tries`` times; then a silent target is skipped, a silent interferer replaced).
            Default -100 dB (only true silence, as energy matching needs); raise it for corpora of short events
            in long clips, where random crops often hold only background.
        val_csv, test_csv: evaluation mixture CSVs (``source,noise,snr,caption``, e.g. DCASE's
            ``lass_synthetic_validation.csv``); used instead of planning mixtures from ``val``/``test`` manifests.
        csv_audio_dir: folder the CSV ids / relative paths refer to (default: the CSV's folder).
        eval_min_snr_db, eval_max_snr_db, eval_mixtures_per_clip, eval_seed: how mixtures are planned from the
            ``val``/``test`` manifests (DCASE validation: -15..15 dB).
        mixture_csv_dir: where the planned evaluation mixtures are written (``<stage>_mixtures.csv``).
        mixer: training mixtures: ``lasr`` (a random compatible interferer per item, the drawn ratio exact) or
            ``baseline`` (the reference: next item of the batch, energy ratio clamped to ``energy_ratio_clamp``).
        energy_ratio_clamp: the ``baseline`` mixer's bounds on the energy-matching amplitude ratio.
    """

    accepts_added = False  # added caption pairs are retrieval items, not separation mixtures

    def __init__(self, min_snr_db: float = -10.0, max_snr_db: float = 10.0, integer_snr: bool = True,
                 peak_scale: float = 0.9, interferer_tries: int = 50, silence_db: float = SILENT_DB,
                 crop_tries: int = 5, val_csv: str | None = None,
                 test_csv: str | None = None, csv_audio_dir: str | None = None, eval_min_snr_db: float = -15.0,
                 eval_max_snr_db: float = 15.0, eval_mixtures_per_clip: int = 1, eval_seed: int = 0,
                 mixture_csv_dir: str | None = None, mixer: str = "lasr",
                 energy_ratio_clamp: tuple[float, float] = REFERENCE_ENERGY_RATIO_CLAMP, **kwargs: Any):
        super().__init__(**kwargs)
        if mixer not in MIXERS:
            raise ValueError(f"mixer must be one of {MIXERS}, got {mixer!r}")
        self.mixer = mixer
        if mixer == "baseline":
            self.train_collate = BaselineMixtureCollate(peak_scale, energy_ratio_clamp)
        if min_snr_db > max_snr_db or eval_min_snr_db > eval_max_snr_db:
            raise ValueError("SNR ranges need min <= max")
        self.snr = {"min_snr_db": min_snr_db, "max_snr_db": max_snr_db, "integer_snr": integer_snr}
        self.eval_snr = {"min_snr_db": eval_min_snr_db, "max_snr_db": eval_max_snr_db, "integer_snr": integer_snr}
        self.peak_scale, self.interferer_tries = peak_scale, interferer_tries
        self.silence_db, self.crop_tries = silence_db, crop_tries
        self.csvs = {"val": val_csv, "test": test_csv}
        self.csv_audio_dir, self.mixture_csv_dir = csv_audio_dir, mixture_csv_dir
        self.eval_mixtures_per_clip, self.eval_seed = eval_mixtures_per_clip, eval_seed

    def setup(self, stage: str | None = None) -> None:
        wanted = {"val": stage in (None, "fit", "validate"), "test": stage in (None, "test", "predict")}
        for name, path in self.csvs.items():
            if path and wanted[name] and name not in self.datasets:  # an explicit CSV wins over planned mixtures
                specs = read_mixture_csv(path, self.csv_audio_dir)
                verify_audio_files([f for spec in specs for f in (spec.source, spec.noise)], f"{name} ({path})")
                self.datasets[name] = MixtureEvalDataset(specs, self.sample_rate, self.eval_seconds, str(path))
        super().setup(stage)

    def build_train_dataset(self, records: list[ClipRecord]) -> Dataset:
        return MixtureTrainDataset(records, self.sample_rate, self.train_seconds, self.caption_policy,
                                   peak_scale=self.peak_scale, min_seconds=self.min_seconds,
                                   interferer_tries=self.interferer_tries, silence_db=self.silence_db,
                                   crop_tries=self.crop_tries, strict=self.strict,
                                   max_retries=self.max_retries, seed=self.seed, mixer=self.mixer, **self.snr)

    def part_sizes(self, parts: list[list[ClipRecord]]) -> list[int]:
        return [sum(1 for r in part for c in r.captions if c.strip()) for part in parts]

    def build_eval_dataset(self, records: list[ClipRecord], stage: str) -> Dataset:
        specs = plan_mixtures(records, self.eval_mixtures_per_clip, self.eval_seed,
                              tries=self.interferer_tries, **self.eval_snr)
        if self.mixture_csv_dir and (self.trainer is None or self.trainer.is_global_zero):  # one writer under DDP
            path = Path(self.mixture_csv_dir) / f"{stage}_mixtures.csv"
            write_mixture_csv(specs, path)
            log.info("%s: %d planned mixtures written to %s", stage, len(specs), path)
        return MixtureEvalDataset(specs, self.sample_rate, self.eval_seconds, f"{stage} mixtures")

    train_collate = staticmethod(collate_mixtures)
    eval_collate = staticmethod(collate_eval_mixtures)

    def eval_records(self, stage: str) -> list[MixtureSpec]:
        """The evaluation mixtures of ``val`` / ``test`` in dataset order."""
        return self.datasets[stage].specs

    def query_strings(self) -> set[str]:
        """Every query text the set-up datasets can serve: training captions (and their LLM variants when the
        caption policy has ``variants(record, slot)`` returning ``{kind: [texts]}`` or a list) plus the evaluation
        queries."""
        strings: set[str] = set()
        train = self.datasets.get("train")
        variants = getattr(self.caption_policy, "variants", None)
        if train is not None:
            for clip, slot in train.pairs:
                record = train.records[clip]
                strings.add(record.captions[slot])
                if callable(variants):
                    found = variants(record, slot)  # AugmentedCaptionPolicy: {kind: [texts]}; or a list
                    if isinstance(found, dict):
                        found = [text for texts in found.values() for text in texts]
                    strings.update(found)
        for stage in ("val", "test"):
            if stage in self.datasets:
                strings.update(spec.caption for spec in self.datasets[stage].specs)
        return {s for s in strings if s.strip()}


# ---- command: lasr data mixtures ---------------------------------------------------------------------------------
def make_mixture_csv(manifests: Sequence[str], out: str | Path, per_clip: int = 1, seed: int = 0,
                     min_snr_db: float = -15.0, max_snr_db: float = 15.0, integer_snr: bool = True) -> int:
    """Plan evaluation mixtures over the clips of ``manifests`` and write them to ``out``; returns the row count."""
    records = [r for path in manifests for r in read_manifest(path)]
    specs = plan_mixtures(records, per_clip, seed, min_snr_db, max_snr_db, integer_snr)
    return write_mixture_csv(specs, out)
