import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from lasr.losses.contrastive import ContrastiveLoss, multi_positive_nce, positive_mask


def _embeddings(n: int, dim: int = 8, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    audio = F.normalize(torch.randn(n, dim, generator=gen), dim=-1)
    text = F.normalize(torch.randn(n, dim, generator=gen), dim=-1)
    return audio, text


def test_unique_keys_equal_symmetric_cross_entropy():
    audio, text = _embeddings(6)
    scale = torch.tensor(20.0)
    loss = ContrastiveLoss()(audio, text, torch.arange(6), scale)["contrastive_loss"]
    logits = scale * audio @ text.T
    labels = torch.arange(6)
    expected = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    torch.testing.assert_close(loss, expected)


def test_shared_clip_pools_all_positive_cells():
    # items 0 and 1 share a clip: 4 positive cells (0,0),(0,1),(1,0),(1,1) plus (2,2)
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.5, 3.0, -1.0], [0.0, 0.0, 1.0]])
    keys = torch.tensor([7, 7, 9])
    mask = positive_mask(keys)
    assert mask.sum() == 5
    lsm0, lsm1 = torch.log_softmax(logits, 0), torch.log_softmax(logits, 1)
    cells = [(0, 0), (0, 1), (1, 0), (1, 1), (2, 2)]
    expected = -0.5 * (sum(lsm0[c] for c in cells) / 5 + sum(lsm1[c] for c in cells) / 5)
    torch.testing.assert_close(multi_positive_nce(logits, mask), expected)


def test_shape_error_names_expected_shapes():
    audio, text = _embeddings(4)
    with pytest.raises(ValueError, match=r"audio_emb \(B, E\)"):
        ContrastiveLoss()(audio, text[:3], torch.arange(4), torch.tensor(20.0))


def _ddp_worker(rank: int, world: int, init_file: str, audio, text, keys, out_dir: str):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        per = audio.shape[0] // world
        local_a = audio[rank * per:(rank + 1) * per].clone().requires_grad_(True)
        local_t = text[rank * per:(rank + 1) * per].clone().requires_grad_(True)
        loss = ContrastiveLoss()(local_a, local_t, keys[rank * per:(rank + 1) * per], torch.tensor(20.0))
        loss["contrastive_loss"].backward()
        torch.save({"loss": loss["contrastive_loss"].detach(), "ga": local_a.grad, "gt": local_t.grad},
                   os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_gather_equals_single_process():
    world, n = 2, 8
    audio, text = _embeddings(n, seed=3)
    keys = torch.tensor([0, 1, 1, 2, 3, 4, 0, 5])  # positives that straddle the two ranks
    a, t = audio.clone().requires_grad_(True), text.clone().requires_grad_(True)
    single = ContrastiveLoss()(a, t, keys, torch.tensor(20.0))["contrastive_loss"]
    single.backward()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_ddp_worker, args=(world, os.path.join(tmp, "init"), audio, text, keys, tmp), nprocs=world)
        results = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(world)]
    for r, res in enumerate(results):
        torch.testing.assert_close(res["loss"], single.detach())
        # the gather's backward sums every rank's (identical) loss gradient; DDP then averages over ranks
        rows = slice(r * n // world, (r + 1) * n // world)
        torch.testing.assert_close(res["ga"] / world, a.grad[rows])
        torch.testing.assert_close(res["gt"] / world, t.grad[rows])
