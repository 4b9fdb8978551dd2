"""Multi-positive symmetric contrastive loss with embeddings gathered across ranks (DCASE 2025 T6 baseline).

Under DDP every rank gathers all ranks' embeddings *with* gradient, so negatives come from the global batch,
and computes the loss over the global similarity matrix.  Each rank's loss is then identical; the gradient
that flows back through the gather reaches every rank's local embeddings, and DDP's gradient averaging
yields exactly the single-process gradient of the global batch.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
from torch import Tensor, nn


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def gather_features(*tensors: Tensor, with_grad: bool = True) -> list[Tensor]:
    """Concatenate each tensor over ranks along dim 0 (rank order). Identity on a single process.

    With ``with_grad`` the autograd-aware collective is used, so gradients reach every rank's inputs.
    Without it, the local tensor is put back in its slot so local gradients still flow (open_clip's trick).
    All ranks must pass tensors of equal shape (the training sampler guarantees equal batch sizes).
    """
    rank, world = _world()
    if world == 1:
        return list(tensors)
    out = []
    for tensor in tensors:
        if with_grad and tensor.requires_grad:
            parts = dist_fn.all_gather(tensor)
        else:
            parts = [torch.empty_like(tensor) for _ in range(world)]
            dist.all_gather(parts, tensor.contiguous())
            parts[rank] = tensor
        out.append(torch.cat(list(parts), dim=0))
    return out


def positive_mask(audio_keys: Tensor) -> Tensor:
    """(B,) integer clip keys -> (B, B) bool: item i's audio and item j's caption belong to the same clip."""
    return audio_keys[:, None] == audio_keys[None, :]


def multi_positive_nce(logits: Tensor, positives: Tensor) -> Tensor:
    """Baseline loss on (A, T) logits: -1/2 [mean_P log_softmax(dim=0) + mean_P log_softmax(dim=1)].

    All positive cells are pooled into one mean (not per-anchor averaging), other positives stay in the
    denominators, exactly as the DCASE 2025 baseline computes it.
    """
    over_audio = torch.log_softmax(logits, dim=0)[positives].mean()
    over_text = torch.log_softmax(logits, dim=1)[positives].mean()
    return -0.5 * (over_audio + over_text)


class ContrastiveLoss(nn.Module):
    """Symmetric contrastive loss with multiple positives per row, global over ranks.

    Shape:
        audio_emb: (B, E) L2-normalised; text_emb: (B, E) L2-normalised; audio_keys: (B,) int64 clip keys
        (two items are positives when their keys are equal); logit_scale: scalar (1/tau). Optional
        hard_negative_emb: (B, E) L2-normalised counterfactual captions, row i belonging to audio i, with
        hard_negative_mask: (B,) bool (False = row has none); they add H columns to the audio->text softmax.
    Args:
        gather_with_grad: gather other ranks' embeddings with gradient (see :func:`gather_features`).
        hard_negative_weight: weight w of hard-negative columns in the softmax (1 = NegCLIP; 0 ignores them).
    Returns:
        ``{"contrastive_loss": scalar}`` (plus ``hard_negative_accuracy`` when hard negatives are given)
    """

    def __init__(self, gather_with_grad: bool = True, hard_negative_weight: float = 1.0):
        super().__init__()
        if hard_negative_weight < 0:
            raise ValueError(f"hard_negative_weight must be >= 0, got {hard_negative_weight}")
        self.gather_with_grad = gather_with_grad
        self.hard_negative_weight = hard_negative_weight

    def forward(self, audio_emb: Tensor, text_emb: Tensor, audio_keys: Tensor, logit_scale: Tensor,
                hard_negative_emb: Tensor | None = None, hard_negative_mask: Tensor | None = None) -> dict[str, Tensor]:
        if audio_emb.shape != text_emb.shape or audio_emb.ndim != 2 or audio_keys.shape != audio_emb.shape[:1]:
            raise ValueError(
                f"expected audio_emb (B, E), text_emb (B, E), audio_keys (B,); got {tuple(audio_emb.shape)}, "
                f"{tuple(text_emb.shape)}, {tuple(audio_keys.shape)}"
            )
        audio_all, text_all = gather_features(audio_emb, text_emb, with_grad=self.gather_with_grad)
        (keys_all,) = gather_features(audio_keys, with_grad=False)
        logits = logit_scale * audio_all.float() @ text_all.float().T  # (B_global, B_global): audios x captions
        if hard_negative_emb is None or self.hard_negative_weight == 0:
            return {"contrastive_loss": multi_positive_nce(logits, positive_mask(keys_all))}
        return self._with_hard_negatives(logits, positive_mask(keys_all), audio_all, hard_negative_emb,
                                         hard_negative_mask, logit_scale)

    def _with_hard_negatives(self, logits: Tensor, positives: Tensor, audio_all: Tensor, hard_emb: Tensor,
                             hard_mask: Tensor | None, logit_scale: Tensor) -> dict[str, Tensor]:
        """NegCLIP-style: H extra caption columns in the audio->text direction only, never positives.

        ``hard_emb`` (B, E) holds row i's counterfactual caption (any value where ``hard_mask`` (B,) is False);
        it is gathered like the captions. The weight w enters as log(w) on those logits, i.e. each hard
        negative counts w times in the softmax denominator (w = 1: plain NegCLIP, w = 0: none).
        Extra output ``hard_negative_accuracy``: share of rows whose own caption outscores their own hard
        negative (not a loss term).
        """
        if hard_emb.shape[1:] != audio_all.shape[1:] or hard_emb.ndim != 2:
            raise ValueError(f"expected hard_negative_emb (B, {audio_all.shape[1]}), got {tuple(hard_emb.shape)}")
        if hard_mask is None:
            hard_mask = torch.ones(hard_emb.shape[0], dtype=torch.bool, device=hard_emb.device)
        (hard_all,) = gather_features(hard_emb, with_grad=self.gather_with_grad)
        (mask_all,) = gather_features(hard_mask.bool(), with_grad=False)
        if hard_all.shape[0] != audio_all.shape[0]:
            raise ValueError(f"hard negatives: {hard_all.shape[0]} rows for {audio_all.shape[0]} audio rows")
        raw = logit_scale * audio_all.float() @ hard_all.float().T  # (B_global, H = B_global)
        hard_logits = (raw + math.log(self.hard_negative_weight)).masked_fill(~mask_all[None, :], float("-inf"))
        over_audio = torch.log_softmax(logits, dim=0)[positives].mean()
        over_text = torch.log_softmax(torch.cat([logits, hard_logits], dim=1), dim=1)[:, : logits.shape[1]][positives].mean()
        out = {"contrastive_loss": -0.5 * (over_audio + over_text)}
        if mask_all.any():
            own = torch.diagonal(logits)[mask_all] > torch.diagonal(raw)[mask_all]
            out["hard_negative_accuracy"] = own.float().mean().detach()
        return out

