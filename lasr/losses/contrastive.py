"""Multi-positive symmetric contrastive loss with embeddings gathered across ranks (DCASE 2025 T6 baseline).

Under DDP every rank gathers all ranks' embeddings *with* gradient, so negatives come from the global batch,
and computes the loss over the global similarity matrix.  Each rank's loss is then identical; the gradient
that flows back through the gather reaches every rank's local embeddings, and DDP's gradient averaging
yields exactly the single-process gradient of the global batch.
"""

from __future__ import annotations

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
        (two items are positives when their keys are equal); logit_scale: scalar (1/tau).
    Returns:
        ``{"contrastive_loss": scalar}``
    """

    def __init__(self, gather_with_grad: bool = True):
        super().__init__()
        self.gather_with_grad = gather_with_grad

    def forward(self, audio_emb: Tensor, text_emb: Tensor, audio_keys: Tensor, logit_scale: Tensor) -> dict[str, Tensor]:
        if audio_emb.shape != text_emb.shape or audio_emb.ndim != 2 or audio_keys.shape != audio_emb.shape[:1]:
            raise ValueError(
                f"expected audio_emb (B, E), text_emb (B, E), audio_keys (B,); got {tuple(audio_emb.shape)}, "
                f"{tuple(text_emb.shape)}, {tuple(audio_keys.shape)}"
            )
        audio_all, text_all = gather_features(audio_emb, text_emb, with_grad=self.gather_with_grad)
        (keys_all,) = gather_features(audio_keys, with_grad=False)
        logits = logit_scale * audio_all.float() @ text_all.float().T  # (B_global, B_global): audios x captions
        return {"contrastive_loss": multi_positive_nce(logits, positive_mask(keys_all))}

