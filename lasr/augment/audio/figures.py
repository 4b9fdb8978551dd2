"""Spectrogram figures of transformed demo clips with their captions (for docs/audio_augment.md).

    lasr augment figures --manifest demo_data/manifests/clotho_development.jsonl.gz \
        --out docs/images
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import torch
import torchaudio

from lasr.augment.audio.dataset import AudioAugmentConfig, AugmentedPairDataset
from lasr.data.manifest import read_manifest

OFF = dict(p_gain=0.0, p_pitch=0.0, p_speed=0.0, p_crop=0.0, p_concat=0.0, p_mix=0.0)
EXAMPLES = {  # file stem -> (config overrides, required prefix of the item's ``augment`` description)
    "audioaug_gain": (dict(p_gain=1.0, gain_db=(8.0, 10.0)), "single:level"),
    "audioaug_pitch": (dict(p_pitch=1.0, pitch_semitones=(4.0, 6.0)), "single:pitch"),
    "audioaug_concat": (dict(p_concat=1.0, concat_clips=(2, 2)), "concat"),
    "audioaug_mix": (dict(p_mix=1.0, p_speed=0.5), "mix:speed"),
}


def find_item(data: AugmentedPairDataset, prefix: str, start: int, tries: int = 400) -> tuple[dict, dict]:
    """First training item (from ``start``) whose augmentation matches ``prefix``, with its untransformed item."""
    for n in range(tries):
        index, epoch = (start + n) % len(data), n // len(data)
        item = data[(index, epoch)]
        if item["augment"].startswith(prefix) and item.get("hard_negative"):
            return item, data[index]
    raise RuntimeError(f"no item with augmentation {prefix!r} in {tries} draws")


def plot(original: dict, item: dict, sample_rate: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mel = torchaudio.transforms.MelSpectrogram(sample_rate, n_fft=512, hop_length=160, n_mels=64)
    figure, axes = plt.subplots(1, 2, figsize=(11, 3.4), dpi=80, sharey=True)
    for axis, entry, label in ((axes[0], original, "original"), (axes[1], item, "transformed")):
        frames = int(entry["duration"] * sample_rate)
        power_db = 10 * torch.log10(mel(entry["audio"][:frames]) + 1e-10)
        axis.imshow(power_db.numpy(), origin="lower", aspect="auto", vmin=-40, vmax=40, cmap="magma",
                    extent=(0, frames / sample_rate, 0, 64))
        axis.set_xlabel("time (s)")
        lines = [f"{label}: {entry['caption']}"]
        if label != "original":
            lines.append(f"hard negative: {entry['hard_negative']}")
        axis.set_title("\n".join(w for line in lines for w in textwrap.wrap(line, 70)), fontsize=8, loc="left")
    axes[0].set_ylabel("mel bin")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_figures(manifest: str | Path, out: str | Path, sample_rate: int = 16000, seconds: float = 8.0,
                  seed: int = 0) -> None:
    """One PNG per example of :data:`EXAMPLES` into ``out``; prints ``path, caption || hard negative``."""
    records = read_manifest(manifest)
    Path(out).mkdir(parents=True, exist_ok=True)
    for number, (stem, (overrides, prefix)) in enumerate(EXAMPLES.items()):
        config = AudioAugmentConfig(**{**OFF, **overrides})
        data = AugmentedPairDataset(records, sample_rate, seconds, seed=seed, config=config)
        item, original = find_item(data, prefix, start=40 * number)
        path = Path(out) / f"{stem}.png"
        plot(original, item, sample_rate, path)
        print(f"{path}\t{item['caption']}\t|| {item['hard_negative']}")
