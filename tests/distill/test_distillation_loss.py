import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from lasr.losses.distillation import (
    DistillationLoss, ensemble_cosine, soft_target_cross_entropy, symmetric_distillation,
)


def _unit(n: int, dim: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_soft_target_ce_on_hand_made_matrix():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[0.0, 0.0], [1.0, 3.0]])
    p = torch.softmax(teacher, 1)
    log_q = torch.log_softmax(logits, 1)
    by_hand = -(p[0, 0] * log_q[0, 0] + p[0, 1] * log_q[0, 1] + p[1, 0] * log_q[1, 0] + p[1, 1] * log_q[1, 1]) / 2
    torch.testing.assert_close(soft_target_cross_entropy(logits, teacher), by_hand)
    # row 0's teacher is uniform: its term is the mean negative log-probability
    torch.testing.assert_close(-log_q[0].mean(), -(p[0] * log_q[0]).sum())


def test_symmetric_loss_equals_cross_entropy_with_teacher_softmax_both_ways():
    logits = torch.randn(5, 5, generator=torch.Generator().manual_seed(1)) * 3
    teacher = torch.randn(5, 5, generator=torch.Generator().manual_seed(2)) * 3
    expected = 0.5 * (F.cross_entropy(logits, torch.softmax(teacher, 1))
                      + F.cross_entropy(logits.T, torch.softmax(teacher.T, 1)))
    torch.testing.assert_close(symmetric_distillation(logits, teacher), expected)


def test_one_hot_teacher_reduces_to_contrastive_cross_entropy():
    logits = torch.randn(4, 4, generator=torch.Generator().manual_seed(3))
    sharp_teacher = torch.eye(4) * 1e4  # softmax = identity matrix
    labels = torch.arange(4)
    expected = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    torch.testing.assert_close(symmetric_distillation(logits, sharp_teacher), expected)


def test_zero_gradient_when_student_logits_equal_teacher_logits():
    teacher = torch.randn(6, 6, generator=torch.Generator().manual_seed(4)) * 5
    logits = teacher.clone().requires_grad_(True)
    symmetric_distillation(logits, teacher).backward()
    assert logits.grad.abs().max() < 1e-6
    moved = (teacher + torch.randn(6, 6)).requires_grad_(True)
    symmetric_distillation(moved, teacher).backward()
    assert moved.grad.abs().max() > 1e-3  # and not zero elsewhere


def test_student_equal_to_single_teacher_gets_no_gradient_through_embeddings():
    audio, text = _unit(6, 8, 5), _unit(6, 8, 6)
    a, t = audio.clone().requires_grad_(True), text.clone().requires_grad_(True)
    out = DistillationLoss()(a, t, [audio], [text], torch.tensor(20.0))["distill_loss"]
    out.backward()
    assert a.grad.abs().max() < 1e-5 and t.grad.abs().max() < 1e-5


def test_teacher_targets_use_student_temperature_and_mean_over_teachers():
    audio, text = _unit(4, 8, 7), _unit(4, 8, 8)
    t1 = (_unit(4, 3, 9), _unit(4, 3, 10))   # teachers may have their own embedding sizes
    t2 = (_unit(4, 5, 11), _unit(4, 5, 12))
    scale = torch.tensor(20.0)
    mean_cos = 0.5 * (t1[0] @ t1[1].T + t2[0] @ t2[1].T)
    torch.testing.assert_close(ensemble_cosine([t1[0], t2[0]], [t1[1], t2[1]]), mean_cos)
    expected = symmetric_distillation(scale * audio @ text.T, scale * mean_cos)
    got = DistillationLoss()(audio, text, [t1[0], t2[0]], [t1[1], t2[1]], scale)["distill_loss"]
    torch.testing.assert_close(got, expected)


def test_shape_errors_name_expected_shapes():
    audio, text = _unit(4, 8, 0), _unit(4, 8, 1)
    with pytest.raises(ValueError, match=r"\(4, E_m\)"):
        DistillationLoss()(audio, text, [audio[:3]], [text[:3]], torch.tensor(20.0))
    with pytest.raises(ValueError, match="one \\(audio, text\\) pair per teacher"):
        ensemble_cosine([], [])


def _ddp_worker(rank, world, init_file, audio, text, teachers, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        per = audio.shape[0] // world
        rows = slice(rank * per, (rank + 1) * per)
        a = audio[rows].clone().requires_grad_(True)
        t = text[rows].clone().requires_grad_(True)
        loss = DistillationLoss()(a, t, [ta[rows] for ta, _ in teachers], [tt[rows] for _, tt in teachers],
                                  torch.tensor(20.0))["distill_loss"]
        loss.backward()
        torch.save({"loss": loss.detach(), "ga": a.grad, "gt": t.grad}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_process_gather_equals_single_process():
    world, n = 2, 8
    audio, text = _unit(n, 8, 20), _unit(n, 8, 21)
    teachers = [(_unit(n, 4, 22), _unit(n, 4, 23)), (_unit(n, 6, 24), _unit(n, 6, 25))]
    a, t = audio.clone().requires_grad_(True), text.clone().requires_grad_(True)
    single = DistillationLoss()(a, t, [x for x, _ in teachers], [y for _, y in teachers],
                                torch.tensor(20.0))["distill_loss"]
    single.backward()
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_ddp_worker, args=(world, os.path.join(tmp, "init"), audio, text, teachers, tmp), nprocs=world)
        results = [torch.load(os.path.join(tmp, f"rank{r}.pt")) for r in range(world)]
    for rank, res in enumerate(results):
        torch.testing.assert_close(res["loss"], single.detach())
        rows = slice(rank * n // world, (rank + 1) * n // world)
        # the gather's backward sums every rank's identical loss gradient; DDP then averages over ranks
        torch.testing.assert_close(res["ga"] / world, a.grad[rows])
        torch.testing.assert_close(res["gt"] / world, t.grad[rows])
