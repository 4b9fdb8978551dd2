"""Data-loading throughput: clips/s for 10 s training crops at 32 kHz from long files.

Compares the lasr training dataset (seek + read window, downmix, resample 44.1 -> 32 kHz, pad) through a
DataLoader with 0 and N workers, against a bare soundfile loop that reads the same random windows (the
ceiling: decode only), and a loop that decodes each whole file (what a non-seeking loader would pay).
The lasr rows have two columns: audio augmentation off, and on with the default AudioSetMix block
(``lasr.augment.audio``: each op p=0.3, concatenations of 2-5 windows, two-clip mixtures).

    .venv/bin/python benchmarks/dataloader.py [--files 16] [--file-seconds 120] [--clips 256]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from torch.utils.data import DataLoader

from lasr.augment.audio.dataset import AudioAugmentConfig, AugmentedPairDataset, collate_augmented
from lasr.data.audio import probe_audio
from lasr.data.datasets import CaptionPairDataset, collate_pairs
from lasr.data.manifest import ClipRecord
from lasr.data.sampler import WeightedEpochSampler


def make_files(folder: Path, count: int, seconds: float, sr: int) -> list[ClipRecord]:
    rng = np.random.default_rng(0)
    records = []
    for i in range(count):
        path = folder / f"long_{i:03d}.wav"
        sf.write(path, (0.1 * rng.standard_normal((int(seconds * sr), 2))).astype(np.float32), sr, subtype="PCM_16")
        info = probe_audio(path)
        records.append(ClipRecord(id=path.stem, audio_path=str(path), duration=info.duration, sample_rate=sr,
                                  captions=("noise",), num_frames=info.num_frames, channels=info.channels))
    return records


def bench_loader(records, clips: int, workers: int, batch: int, augment: bool = False) -> float:
    if augment:
        dataset = AugmentedPairDataset(records, sample_rate=32000, max_seconds=10.0, config=AudioAugmentConfig())
        collate = collate_augmented
    else:
        dataset, collate = CaptionPairDataset(records, sample_rate=32000, max_seconds=10.0), collate_pairs
    sampler = WeightedEpochSampler([len(dataset)], [max(1.0, clips / len(dataset))], seed=0)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers, collate_fn=collate)
    start, seen = time.perf_counter(), 0
    for b in loader:
        seen += b["audio"].shape[0]
        if seen >= clips:
            break
    return seen / (time.perf_counter() - start)


def bench_bare_windows(records, clips: int) -> float:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for i in range(clips):
        r = records[i % len(records)]
        want = int(10.0 * r.sample_rate)
        offset = int(rng.integers(0, r.num_frames - want))
        with sf.SoundFile(r.audio_path) as handle:
            handle.seek(offset)
            handle.read(want, dtype="float32")
    return clips / (time.perf_counter() - start)


def bench_whole_file(records, clips: int) -> float:
    start = time.perf_counter()
    for i in range(clips):
        sf.read(records[i % len(records)].audio_path, dtype="float32")
    return clips / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--file-seconds", type=float, default=120.0)
    parser.add_argument("--sample-rate", type=int, default=44100)
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        records = make_files(Path(tmp), args.files, args.file_seconds, args.sample_rate)
        print(f"{args.files} stereo files of {args.file_seconds:.0f} s at {args.sample_rate} Hz; 10 s crops -> 32 kHz mono")
        rows = [
            ("bare soundfile: seek + read window (ceiling)", bench_bare_windows(records, args.clips)),
            ("bare soundfile: decode whole file", bench_whole_file(records, min(args.clips, 32))),
        ]
        for name, rate in rows:
            print(f"{name:<48}{rate:10.1f} clips/s")
        print(f"{'lasr dataset (clips/s)':<48}{'augment off':>12}{'augment on':>12}")
        for workers in (0, args.workers):
            off = bench_loader(records, args.clips, workers, args.batch_size)
            on = bench_loader(records, args.clips, workers, args.batch_size, augment=True)
            print(f"{f'  {workers} workers':<48}{off:12.1f}{on:12.1f}")


if __name__ == "__main__":
    main()
