"""Teacher-embedding throughput on CPU: clips/s and captions/s of ``lasr teachers`` (shards written to a temp dir).

Default teacher: the demo stage-1 checkpoint (CNN audio tower + MiniLM) on the demo corpus. ``--passt`` measures a
randomly initialised PaSST-S + MiniLM teacher instead (the paper's audio encoder; 32 kHz, 10 s segments).

    .venv/bin/python benchmarks/teachers.py [--clips 64] [--captions 256] [--passt] [--seconds 12]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lasr.data.manifest import read_manifest
from lasr.models.embedding import embed_texts, iter_clip_embeddings
from lasr.models.run_config import LoadedModel, load_dual_encoder


def passt_teacher() -> LoadedModel:
    import warnings

    from lasr.models.audio.passt import PaSSTEncoder
    from lasr.models.dual_encoder import DualEncoder
    from lasr.models.text import HFTextEncoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "random weights" warning: throughput does not depend on the weights
        model = DualEncoder(PaSSTEncoder(allow_random_init=True), HFTextEncoder("minilm", pooling="mean"), embed_dim=1024)
    return LoadedModel(model.eval(), "random PaSST-S + MiniLM", {"eval_seconds": 30.0})


def measure(teacher: LoadedModel, records, captions, seconds: float, batch_size: int) -> tuple[float, float]:
    start = time.perf_counter()
    clips = sum(emb.shape[0] for _, emb in iter_clip_embeddings(teacher.model, records, seconds, batch_size))
    clip_rate = clips / (time.perf_counter() - start)
    start = time.perf_counter()
    embed_texts(teacher.model, captions, batch_size=64)
    return clip_rate, len(captions) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", default="checkpoints/demo/stage1/last.ckpt")
    parser.add_argument("--config", default="configs/demo/stage1_demo.yaml")
    parser.add_argument("--data", default="demo_data/manifests/clotho_development.jsonl.gz")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--captions", type=int, default=256)
    parser.add_argument("--seconds", type=float, help="crop in s (default: the teacher's eval_seconds)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--passt", action="store_true", help="random PaSST-S + MiniLM teacher instead")
    args = parser.parse_args()
    if not Path(args.data).is_file():
        raise SystemExit(f"{args.data} not found: run `lasr data demo --out demo_data --seed 0` (make demo)")
    records = read_manifest(args.data)[: args.clips]
    captions = [c for r in read_manifest(args.data) for c in r.captions][: args.captions]
    if args.passt:
        teacher = passt_teacher()
    elif Path(args.ckpt).is_file():
        teacher = load_dual_encoder(args.ckpt, args.config)
    else:
        raise SystemExit(f"{args.ckpt} not found: train the demo stage 1 (make demo) or pass --passt")
    seconds = args.seconds or teacher.eval_seconds or 30.0
    with torch.inference_mode(), tempfile.TemporaryDirectory():
        measure(teacher, records[:2], captions[:8], seconds, args.batch_size)  # warm-up
        clip_rate, text_rate = measure(teacher, records, captions, seconds, args.batch_size)
    audio = type(teacher.model.audio_encoder).__name__
    print(f"teacher: {teacher.checkpoint} ({audio}, {teacher.model.audio_sample_rate} Hz, {seconds:g} s crop), "
          f"{torch.get_num_threads()} CPU threads")
    print(f"audio: {clip_rate:8.1f} clips/s    ({len(records)} clips, batch {args.batch_size}, includes decoding)")
    print(f"text:  {text_rate:8.1f} captions/s ({len(captions)} captions, batch 64)")


if __name__ == "__main__":
    main()
