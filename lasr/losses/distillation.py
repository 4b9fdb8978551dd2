"""Distillation from ensemble-estimated audio-caption correspondences (SALSA, DCASE 2024; used by AISTAT 2025).

Per batch, the teachers' soft targets are the mean over teachers m of their cosine matrices
``norm(a_m) @ norm(t_m).T`` between the batch's clips and captions, divided by the *student's* temperature.
The student's logits ``C`` (clips x captions) are trained against them with soft-target cross-entropy in both
directions::

    L_dist = 1/2 [ CE(C, softmax(C_T, dim=1)) + CE(C.T, softmax(C_T.T, dim=1)) ]

with ``CE(z, P) = mean_i sum_j -P_ij log_softmax(z)_ij`` (rows averaged, as ``F.cross_entropy`` does).  Under
DDP the student's embeddings are gathered with gradient and the teachers' without, exactly like the contrastive
loss, so every rank computes the loss of the global batch.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lasr.losses.contrastive import gather_features


def soft_target_cross_entropy(logits: Tensor, target_logits: Tensor) -> Tensor:
    """Mean over rows of ``-sum_j softmax(target_logits)_ij * log_softmax(logits)_ij``.

    Shape: logits (R, C), target_logits (R, C); returns a scalar.  The gradient w.r.t. ``logits`` is
    ``(softmax(logits) - softmax(target_logits)) / R``: zero when the logits equal the target logits.
    """
    targets = torch.softmax(target_logits, dim=1)
    return -(targets * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()


def symmetric_distillation(logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """SALSA's two-directional soft-target loss on (A, T) student and teacher logits (clips x captions)."""
    return 0.5 * (soft_target_cross_entropy(logits, teacher_logits)
                  + soft_target_cross_entropy(logits.T, teacher_logits.T))


def ensemble_cosine(teacher_audio: Sequence[Tensor], teacher_text: Sequence[Tensor]) -> Tensor:
    """Mean over teachers of the (A, T) cosine matrices; each teacher may have its own embedding size."""
    if not teacher_audio or len(teacher_audio) != len(teacher_text):
        raise ValueError(f"need one (audio, text) pair per teacher, got {len(teacher_audio)} audio and "
                         f"{len(teacher_text)} text tensors")
    total = None
    for audio, text in zip(teacher_audio, teacher_text):
        cosine = F.normalize(audio.float(), dim=-1) @ F.normalize(text.float(), dim=-1).T
        total = cosine if total is None else total + cosine
    return total / len(teacher_audio)


class DistillationLoss(nn.Module):
    """Soft-target cross-entropy against the teachers' mean cosine matrix scaled by the student's 1/tau.

    Shape:
        audio_emb: (B, E) student clip embeddings (unit vectors); text_emb: (B, E) student captions, item i's
        caption belongs to item i's clip; teacher_audio / teacher_text: one (B, E_m) tensor per teacher m for the
        same items (E_m may differ between teachers); logit_scale: scalar, the student's ``1 / |tau|``.
    Returns:
        ``{"distill_loss": scalar}``
    """

    def __init__(self, gather_with_grad: bool = True):
        super().__init__()
        self.gather_with_grad = gather_with_grad

    def forward(self, audio_emb: Tensor, text_emb: Tensor, teacher_audio: Sequence[Tensor],
                teacher_text: Sequence[Tensor], logit_scale: Tensor) -> dict[str, Tensor]:
        if audio_emb.ndim != 2 or audio_emb.shape != text_emb.shape:
            raise ValueError(f"expected audio_emb (B, E) and text_emb (B, E), got {tuple(audio_emb.shape)} "
                             f"and {tuple(text_emb.shape)}")
        rows = audio_emb.shape[0]
        for audio, text in zip(teacher_audio, teacher_text):
            if audio.ndim != 2 or text.ndim != 2 or audio.shape[0] != rows or text.shape[0] != rows \
                    or audio.shape[1] != text.shape[1]:
                raise ValueError(f"expected each teacher's audio and text as ({rows}, E_m), got "
                                 f"{tuple(audio.shape)} and {tuple(text.shape)}")
        audio_all, text_all = gather_features(audio_emb, text_emb, with_grad=self.gather_with_grad)
        gathered = gather_features(*teacher_audio, *teacher_text, with_grad=False)
        count = len(teacher_audio)
        scale = logit_scale.detach()
        teacher_logits = scale * ensemble_cosine(gathered[:count], gathered[count:])
        logits = logit_scale * audio_all.float() @ text_all.float().T  # (B_global, B_global)
        return {"distill_loss": symmetric_distillation(logits, teacher_logits)}
