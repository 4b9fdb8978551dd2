"""Training clips/s read from litdata shards vs from individual files, on a corpus of many small files.

Makes ``--clips`` short FLAC files (default 10,000 x 2 s at 32 kHz, like small WavCaps/FreeSound clips) and their
manifest, shards them with ``lasr data shard``'s code, then times the lasr training dataset (seek + read +
downmix + resample + crop, through a DataLoader) over both, same seed, same order, in one run. With
``--drop-caches`` (root only) the page cache is emptied before each timed pass, so both read from disk: the
case of a cluster's network filesystem, where every file open is a metadata round trip, is closer to this
than to the warm-cache pass.

    .venv/bin/python benchmarks/shards.py [--clips 10000] [--workers 0 2] [--drop-caches] [--keep DIR]

Measured 2026-12-01 on the 2-core machine, root (so ``--drop-caches`` worked before every pass), under heavy
load from other jobs (1-min load average 12.7 at the start, 9.3 at the end, a metrics benchmark of this
project running beside it):  ``--keep /tmp/i15b/corpus10k --drop-caches --batches 20 --workers 0 2`` on
10,000 FLAC files of 2 s (827 MiB, 14 litdata chunks of ~64 MB): files 2.1 / shards 5.8 clips/s with 0 workers,
files 80.2 / shards 30.2 clips/s with 2 workers, all cold page cache.  20 batches of 32 per case only (the
default 150 took ~15 min per case at 5.5 clips/s); the load changed during the run, so the two worker counts
are not comparable with each other, and the 2-worker figures need a rerun on a quiet machine before any claim.
Quiet rerun (session 4, nothing else running): ``--keep /tmp/i15b/corpus10k --drop-caches --batches 20 --workers
2``: files 250.6, shards 26.9 clips/s, cold page cache.  Explained in session 5: litdata 0.2.76's reader (with its
POSIX-fast mode off) read the whole 64 MB chunk for every shuffled item (86 ms per 85 kB clip, warm cache;
0.5 ms in file order); lasr now reads items at their offsets itself (``lasr/data/shards.py``: 26 us per item).
Session 5, nothing else running, same corpus, ``--drop-caches --workers 0 2``: 20 batches: files 160.7 / shards
235.6 (0 workers), 346.1 / 344.6 (2 workers); 80 batches: files 218.2 / shards 253.2 (0 workers), 423.5 / 402.7
(2 workers) clips/s.  On this local disk decoding is the limit with 2 workers; shards remove the per-file opens
that a network filesystem makes expensive.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from lasr.data.datamodule import AudioTextDataModule
from lasr.data.manifest import ClipRecord, read_manifest, write_manifest
from lasr.data.shards import write_shards


def make_corpus(root: Path, clips: int, seconds: float, rate: int) -> Path:
    rng = np.random.default_rng(0)
    records = []
    for i in range(clips):
        path = root / "audio" / f"{i // 1000:03d}" / f"clip{i:06d}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        tone = np.sin(2 * np.pi * rng.uniform(200, 2000) * np.arange(int(seconds * rate)) / rate)
        sf.write(path, (0.3 * tone + 0.01 * rng.standard_normal(tone.shape)).astype(np.float32), rate)
        records.append(ClipRecord(id=f"clip{i:06d}", audio_path=str(path), captions=(f"a tone number {i}",),
                                  dataset="bench", duration=seconds, sample_rate=rate,
                                  num_frames=int(seconds * rate), channels=1))
    write_manifest(records, root / "files.jsonl.gz")
    return root / "files.jsonl.gz"


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def clips_per_second(manifest: str, workers: int, batches: int, seconds: float, cold: bool) -> tuple[float, bool]:
    module = AudioTextDataModule(train=[manifest], sample_rate=32000, train_seconds=seconds, batch_size=32,
                                 num_workers=workers, pin_memory=False, seed=0)
    module.setup("fit")
    loader = module.train_dataloader()
    dropped = drop_caches() if cold else False
    start, seen = time.perf_counter(), 0
    for _, batch in zip(range(batches), loader):
        seen += batch["audio"].shape[0]
    return seen / (time.perf_counter() - start), dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each clip")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batches", type=int, default=150, help="batches of 32 timed per case")
    parser.add_argument("--drop-caches", action="store_true", help="empty the page cache before each pass (root)")
    parser.add_argument("--dir", type=Path, help="where to build the corpus (default: a temporary folder)")
    parser.add_argument("--keep", type=Path,
                        help="build the corpus in this folder and keep it; a later run with the same folder reuses it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = args.keep or Path(tmp)
        files = root / "files.jsonl.gz"
        if (root / "shards" / "index.json").is_file() and files.is_file():
            print(f"reusing the corpus in {root} ({len(read_manifest(files)):,} files)")
        else:
            root.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            files = make_corpus(root, args.clips, args.seconds, 32000)
            made = time.perf_counter() - start
            start = time.perf_counter()
            summary = write_shards(read_manifest(files), root / "shards", progress=False)
            sharded = time.perf_counter() - start
            chunks = len(list((root / "shards").glob("chunk-*.bin")))
            print(f"{args.clips:,} FLAC files of {args.seconds} s ({summary.bytes / 2**20:.0f} MiB) made in {made:.0f} s; "
                  f"sharded into {chunks} chunk files in {sharded:.1f} s")
        for workers in args.workers:
            for name, manifest in (("files", str(files)), ("shards", str(root / "shards"))):
                rate, dropped = clips_per_second(manifest, workers, args.batches, args.seconds, args.drop_caches)
                cache = "cold page cache" if dropped else "warm page cache"
                print(f"{name:<7} workers {workers}: {rate:8.1f} clips/s  ({cache})")


if __name__ == "__main__":
    main()
