"""ContrastiveLoss with the optional hard-negative columns, and the task helper that embeds them."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from lasr.losses.contrastive import ContrastiveLoss, multi_positive_nce, positive_mask
from lasr.tasks.terms import hard_negative_inputs


def embeddings(seed: int, rows: int = 6, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    audio = F.normalize(torch.randn(rows, dim, generator=g), dim=-1)
    text = F.normalize(audio + 0.5 * torch.randn(rows, dim, generator=g), dim=-1)
    hard = F.normalize(torch.randn(rows, dim, generator=g), dim=-1)
    return audio, text, hard


def test_without_hard_negatives_the_loss_is_unchanged():
    audio, text, hard = embeddings(0)
    keys, scale = torch.tensor([1, 2, 2, 3, 4, 5]), torch.tensor(20.0)
    expected = multi_positive_nce(scale * audio @ text.T, positive_mask(keys))
    assert torch.equal(ContrastiveLoss()(audio, text, keys, scale)["contrastive_loss"], expected)
    zero_weight = ContrastiveLoss(hard_negative_weight=0.0)(audio, text, keys, scale, hard)
    assert torch.equal(zero_weight["contrastive_loss"], expected) and len(zero_weight) == 1
    all_masked = ContrastiveLoss()(audio, text, keys, scale, hard, torch.zeros(6, dtype=torch.bool))
    assert all_masked["contrastive_loss"] == pytest.approx(float(expected), abs=1e-6)


def test_hard_negatives_are_extra_audio_to_text_columns_only():
    audio, text, hard = embeddings(1)
    keys, scale = torch.arange(6), torch.tensor(10.0)
    mask = torch.tensor([True, False, True, True, False, True])
    out = ContrastiveLoss(hard_negative_weight=2.0)(audio, text, keys, scale, hard, mask)
    logits = scale * audio @ text.T
    extra = (scale * audio @ hard.T + torch.log(torch.tensor(2.0)))[:, mask]  # (B, H)
    positives = positive_mask(keys)
    over_audio = torch.log_softmax(logits, 0)[positives].mean()  # text->audio: unchanged
    over_text = torch.log_softmax(torch.cat([logits, extra], 1), 1)[:, :6][positives].mean()  # B x (B + H)
    assert out["contrastive_loss"] == pytest.approx(float(-0.5 * (over_audio + over_text)), abs=1e-5)
    own = (torch.diagonal(logits) > torch.diagonal(scale * audio @ hard.T))[mask].float().mean()
    assert out["hard_negative_accuracy"] == pytest.approx(float(own))


def test_a_hard_negative_equal_to_the_positive_raises_the_loss_and_gets_gradient():
    audio, text, _ = embeddings(2)
    keys, scale = torch.arange(6), torch.tensor(10.0)
    hard = text.clone().requires_grad_(True)
    base = ContrastiveLoss()(audio, text, keys, scale)["contrastive_loss"]
    out = ContrastiveLoss()(audio, text, keys, scale, hard)
    assert out["contrastive_loss"] > base
    out["contrastive_loss"].backward()
    assert hard.grad is not None and hard.grad.abs().sum() > 0


def test_bad_hard_negative_shapes_are_rejected():
    audio, text, hard = embeddings(3)
    with pytest.raises(ValueError, match="hard_negative_emb"):
        ContrastiveLoss()(audio, text, torch.arange(6), torch.tensor(1.0), hard[:, :4])
    with pytest.raises(ValueError, match="rows"):
        ContrastiveLoss()(audio, text, torch.arange(6), torch.tensor(1.0), hard[:4])
    with pytest.raises(ValueError):
        ContrastiveLoss(hard_negative_weight=-1.0)


def test_task_embeds_only_the_present_hard_negatives():
    encoded = []

    def encode_text(captions):
        encoded.append(list(captions))
        return torch.full((len(captions), 4), 0.5)

    stub = SimpleNamespace(encode_text=encode_text)
    text = torch.ones(3, 4, requires_grad=True)
    out = hard_negative_inputs([None, "Faint: a dog barks.", None], text, stub)
    assert encoded == [["Faint: a dog barks."]]
    assert out["hard_negative_mask"].tolist() == [False, True, False]
    assert torch.equal(out["hard_negative_emb"][1], torch.full((4,), 0.5)) and out["hard_negative_emb"][0].abs().sum() == 0
    none = hard_negative_inputs([None, None, None], text, stub)
    assert none["hard_negative_emb"].requires_grad and not none["hard_negative_mask"].any()


def _ddp_worker(rank: int, world: int, init_file: str, audio, text, hard, mask, out_dir: str):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        rows = slice(rank * audio.shape[0] // world, (rank + 1) * audio.shape[0] // world)
        local_h = hard[rows].clone().requires_grad_(True)
        loss = ContrastiveLoss()(audio[rows], text[rows], torch.arange(audio.shape[0])[rows], torch.tensor(10.0),
                                 local_h, mask[rows])
        loss["contrastive_loss"].backward()
        torch.save({"loss": loss["contrastive_loss"].detach(), "gh": local_h.grad}, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_hard_negatives_are_gathered_across_ranks(tmp_path):
    import torch.multiprocessing as mp

    audio, text, hard = embeddings(4, rows=8)
    mask = torch.tensor([True, False, True, True, True, False, False, True])  # rank 1 has fewer hard negatives
    h = hard.clone().requires_grad_(True)
    single = ContrastiveLoss()(audio, text, torch.arange(8), torch.tensor(10.0), h, mask)["contrastive_loss"]
    single.backward()
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), audio, text, hard, mask, str(tmp_path)), nprocs=2)
    for rank in range(2):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        torch.testing.assert_close(result["loss"], single.detach())
        torch.testing.assert_close(result["gh"] / 2, h.grad[rank * 4 : (rank + 1) * 4])
