"""Two CPU processes (gloo): evaluation embeddings gathered by torchmetrics give the single-process metrics."""

import os
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from lasr.metrics.retrieval import RetrievalEmbeddings, retrieval_metrics


def _data(n_clips=9, captions=3, dim=16):
    gen = torch.Generator().manual_seed(0)
    audio = F.normalize(torch.randn(n_clips, dim, generator=gen), dim=-1)
    text = F.normalize(audio.repeat_interleave(captions, 0) + 0.8 * torch.randn(n_clips * captions, dim, generator=gen), dim=-1)
    return audio, text, captions


def _update(store, audio, text, captions, clips):
    clips = torch.tensor(clips)
    rows = (clips[:, None] * captions + torch.arange(captions)).flatten()
    store.update(audio[clips], clips, text[rows], clips.repeat_interleave(captions), torch.arange(captions).repeat(len(clips)))


def _metrics(store):
    out = store.compute()
    return retrieval_metrics(out["audio_emb"], out["text_emb"], out["text_owner"], chunk_size=4)


def _worker(rank, world, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        audio, text, captions = _data()
        store = RetrievalEmbeddings()
        # DistributedSampler-like sharding of 9 clips over 2 ranks: rank 1 gets clip 0 again as padding,
        # and the shards arrive in two batches of different sizes
        shard = [0, 2, 4, 6, 8] if rank == 0 else [1, 3, 5, 7, 0]
        _update(store, audio, text, captions, shard[:3])
        _update(store, audio, text, captions, shard[3:])
        torch.save(_metrics(store), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_metrics_equal_single_process():
    audio, text, captions = _data()
    single = RetrievalEmbeddings()
    _update(single, audio, text, captions, list(range(9)))
    expected = _metrics(single)
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_worker, args=(2, os.path.join(tmp, "init"), tmp), nprocs=2)
        results = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(2)]
    assert 0.0 < expected["t2a/R@1"] < 1.0  # a non-trivial case
    for result in results:
        assert result == expected
