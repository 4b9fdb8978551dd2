"""Does training with level modifiers teach the model to tell "Loud: X" from "Faint: X"? (CPU, demo data)

Trains the same small dual encoder twice from the same initialisation on the demo development set: once
plain (no augmentation) and once with audio augmentation (gain with "loud"/"faint" template captions plus the
other transforms, and hard negatives); optionally a third run without hard negatives. Then, for every
validation clip with a caption that says nothing about loudness (caption X), it builds a loud version (+gain,
clamped to the headroom) and a faint version (-gain) of the audio and measures:

* text choice: share of (audio version) for which the model scores the true modifier caption above the flipped
  one ("Loud: X" vs "Faint: X"); chance 0.5.
* audio choice: share of queries "Loud: X" / "Faint: X" that score the matching version above the other one;
  chance 0.5.
* t2a R@1 on the plain validation captions (does augmentation hurt ordinary retrieval?).

The CNN uses BatchNorm input normalisation: the default per-utterance normalisation removes the absolute level,
so no model with it can hear "loud" vs "faint" of the same clip (both versions give identical features).

    .venv/bin/python benchmarks/modifier_eval.py [--epochs 3] [--seconds 4] [--limit-train 0] [--no-hard-ablation]
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import lightning as L
import numpy as np
import torch

from lasr.augment.audio import transforms as T
from lasr.augment.audio.dataset import AudioAugmentConfig, AugmentedPairDataset, collate_augmented
from lasr.augment.audio.modifiers import mentions
from lasr.data.datasets import ClipDataset
from lasr.data.manifest import read_manifest
from lasr.data.sampler import WeightedEpochSampler
from lasr.losses.contrastive import ContrastiveLoss
from lasr.models.audio.cnn import CNNEncoder
from lasr.models.dual_encoder import DualEncoder
from lasr.models.text import HFTextEncoder
from lasr.tasks.retrieval import RetrievalTask
from lasr.tasks.schedule import WarmupCosineSchedule

RATE = 16000
OFF = dict(p_gain=0.0, p_pitch=0.0, p_speed=0.0, p_crop=0.0, p_concat=0.0, p_mix=0.0, hard_negatives=False)


def build_model(seed: int) -> DualEncoder:
    torch.manual_seed(seed)
    audio = CNNEncoder(sample_rate=RATE, n_fft=512, hop_length=160, n_mels=64, channels=[16, 32, 64, 128],
                       normalization="batchnorm")
    text = HFTextEncoder(name_or_path="minilm", pooling="mean", max_length=48, hidden_dropout=0.1, attention_dropout=0.1)
    return DualEncoder(audio, text, embed_dim=128, tau=0.05)


def train(records, config: AudioAugmentConfig, args, hard_weight: float) -> tuple[DualEncoder, float]:
    data = AugmentedPairDataset(records, RATE, args.seconds, seed=args.seed, config=config)
    sampler = WeightedEpochSampler([len(data)], [1.0], shuffle=True, seed=args.seed)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch_size, sampler=sampler, drop_last=True,
                                         num_workers=args.workers, collate_fn=collate_augmented,
                                         persistent_workers=args.workers > 0)
    model = build_model(args.seed)
    task = RetrievalTask(model, loss=ContrastiveLoss(hard_negative_weight=hard_weight),
                         optimizer=lambda params: torch.optim.AdamW(params, lr=args.lr),
                         schedule=WarmupCosineSchedule(warmup_epochs=0.5, rampdown_epochs=args.epochs, min_lr=1e-6),
                         lr_multipliers={"model.text_encoder": 0.05})
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(task, train_dataloaders=loader)
    return model.eval(), time.perf_counter() - start


def probe_items(records, seconds: float, gain_db: float, min_up_db: float):
    """(caption X, loud wave, faint wave, duration) per validation clip with a caption free of level words."""
    clips = ClipDataset(records, RATE, seconds)
    out = []
    for index, record in enumerate(records):
        caption = next((c for c in record.captions if not mentions(c, "level")), None)
        if caption is None:
            continue
        item = clips[index]
        wave = item["audio"]
        up = min(gain_db, T.headroom_db(wave))
        if up < min_up_db:
            continue
        out.append((caption.rstrip("."), T.apply_gain(wave, up), T.apply_gain(wave, -gain_db), item["duration"]))
    return out


@torch.no_grad()
def evaluate(model: DualEncoder, probes, records, seconds: float) -> dict[str, float]:
    loud = torch.stack([p[1] for p in probes])
    faint = torch.stack([p[2] for p in probes])
    duration = torch.tensor([p[3] for p in probes], dtype=torch.float32)
    a_loud, a_faint = model.encode_audio(loud, duration), model.encode_audio(faint, duration)
    t_loud = model.encode_text([f"Loud: {p[0][:1].lower() + p[0][1:]}." for p in probes])
    t_faint = model.encode_text([f"Faint: {p[0][:1].lower() + p[0][1:]}." for p in probes])
    dot = lambda a, b: (a * b).sum(-1)  # noqa: E731
    text_choice = torch.cat([dot(a_loud, t_loud) > dot(a_loud, t_faint), dot(a_faint, t_faint) > dot(a_faint, t_loud)])
    audio_choice = torch.cat([dot(t_loud, a_loud) > dot(t_loud, a_faint), dot(t_faint, a_faint) > dot(t_faint, a_loud)])
    clips = ClipDataset(records, RATE, seconds)
    items = [clips[i] for i in range(len(records))]
    audio = model.encode_audio(torch.stack([i["audio"] for i in items]), torch.tensor([i["duration"] for i in items]))
    text = model.encode_text([r.captions[0] for r in records])
    r_at_1 = (text @ audio.T).argmax(dim=1).eq(torch.arange(len(records))).float().mean()
    return {"text_choice": float(text_choice.float().mean()), "audio_choice": float(audio_choice.float().mean()),
            "t2a_R@1": float(r_at_1), "probes": len(probes)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default="demo_data/manifests/clotho_development.jsonl.gz")
    parser.add_argument("--val", default="demo_data/manifests/clotho_validation.jsonl.gz")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--limit-train", type=int, default=0, help="use only the first N training clips (0 = all)")
    parser.add_argument("--p-gain", type=float, default=0.5)
    parser.add_argument("--probe-gain-db", type=float, default=8.0)
    parser.add_argument("--no-hard-ablation", action="store_true", help="also train with modifiers but no hard negatives")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="write the results here too")
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)
    L.seed_everything(args.seed, verbose=False)
    records = read_manifest(args.train)
    records = records[: args.limit_train] if args.limit_train else records
    val = read_manifest(args.val)
    probes = probe_items(val, args.seconds, args.probe_gain_db, min_up_db=3.0)
    runs = {"plain (no augmentation)": (AudioAugmentConfig(**OFF), 1.0),
            "modifiers + hard negatives": (AudioAugmentConfig(p_gain=args.p_gain, hard_negatives=True), 1.0)}
    if args.no_hard_ablation:
        runs["modifiers, no hard negatives"] = (AudioAugmentConfig(p_gain=args.p_gain, hard_negatives=False), 1.0)
    results = {}
    for name, (config, weight) in runs.items():
        model, seconds = train(records, config, args, weight)
        results[name] = {**evaluate(model, probes, val, args.seconds), "train_s": round(seconds, 1)}
        print(f"{name}: {results[name]}", flush=True)
    print(f"\n{len(records)} training clips, {args.epochs} epochs, {len(probes)} loud/faint probe clips (chance 0.5)")
    print(f"{'run':<30}{'text choice':>13}{'audio choice':>14}{'t2a R@1':>10}{'train s':>9}")
    for name, r in results.items():
        print(f"{name:<30}{r['text_choice']:>13.3f}{r['audio_choice']:>14.3f}{r['t2a_R@1']:>10.3f}{r['train_s']:>9.0f}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
