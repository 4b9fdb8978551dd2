"""Language-based audio retrieval metrics, computed as the official DCASE 2025 Task 6 evaluation does.

Reference: the DCASE 2025 Task 6 baseline, ``d25_t6/retrieval_module.py``, ``on_validation_epoch_end``
(see ``shared/reference/retrieval.md`` section 3).  Similarity is the raw dot product of embeddings that
were L2-normalised upstream (cosine, no temperature).  Ranks are 0-based; ties are broken like a stable
descending sort: rank = (# scores strictly greater) + (# equal scores at a smaller column index).

* classic text->audio metrics, one relevant clip per caption (its own clip):
  ``R@k = mean[r < k]`` and ``mAP@10 = mean(1/(r+1) if r < 10 else 0)`` over all captions;
* audio->text recall: rank of the clip's best-ranked own caption among all captions;
* the DCASE 2025 multi-relevance mAP@k (official ranking metric: k=16) over the queries of
  ``metadata_eval.csv``: ``AP@k = (1/n) * sum_{i: r_i < k} i / (r_i + 1)`` with the n relevant ranks sorted
  ``r_1 < ... < r_n``.  It is normalised by n, *not* by min(n, k).

Memory is bounded: score blocks of ``chunk_size`` captions x N clips are computed one at a time; no full
argsort and no full score matrix is ever materialised.  Peak extra memory is about one such block
(chunk_size x N x 4 bytes in float32: 80 MiB for 1024 x 20,000), three 4 MiB comparison buffers and 16 MiB
of clips gathered for the own-score pre-pass (D=1024).  All metrics come from one pass over the blocks, each
block compared slice by slice, with one comparison and one count per score for text->audio and for
audio->text (``benchmarks/retrieval_metrics.py``: goal <= 1.2x the bare similarity pass).
Because each block is its own matrix product, a score can differ from a one-shot product in the last bit,
which can swap two near-tied items; with real embeddings this never shows in the reported digits.
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from lasr.errors import DataError

DEFAULT_CHUNK_SIZE = 1024
RELEVANCE_COLUMNS = ("query", "audio_filenames")
_EXAMPLES_IN_ERRORS = 5
_FINITE_CHECK_ROWS = 8192  # rows checked at a time, so the check needs no (rows, D) bool copy


# --------------------------------------------------------------------------- validation helpers


def _check_embeddings(name: str, emb: Tensor) -> Tensor:
    """Check a (rows, D) floating, finite embedding matrix; return it as float32 or float64."""
    if not isinstance(emb, Tensor) or emb.ndim != 2 or not emb.is_floating_point():
        shape = tuple(emb.shape) if isinstance(emb, Tensor) else type(emb).__name__
        raise ValueError(f"{name} must be a floating tensor of shape (rows, D), got {shape}")
    if not _all_finite(emb):
        raise ValueError(f"{name} contains NaN or infinite values")
    return emb if emb.dtype in (torch.float32, torch.float64) else emb.float()


def _all_finite(emb: Tensor) -> bool:
    """True if every value is finite.  A finite sum proves it at the cost of one read (NaN and inf propagate);
    only a sum that overflows or meets a bad value is checked value by value."""
    if bool(torch.isfinite(emb.sum())):
        return True
    return all(bool(torch.isfinite(block).all()) for block in emb.split(_FINITE_CHECK_ROWS))


def _check_pair(text_emb: Tensor, audio_emb: Tensor) -> tuple[Tensor, Tensor]:
    text_emb = _check_embeddings("text_emb", text_emb)
    audio_emb = _check_embeddings("audio_emb", audio_emb)
    if text_emb.shape[1] != audio_emb.shape[1]:
        raise ValueError(f"text_emb has D={text_emb.shape[1]} but audio_emb has D={audio_emb.shape[1]}")
    dtype = torch.promote_types(text_emb.dtype, audio_emb.dtype)
    return text_emb.to(dtype), audio_emb.to(dtype)


def _check_index(name: str, index: Tensor, length: int, upper: int) -> Tensor:
    """Check a (length,) integer tensor with values in [0, upper)."""
    index = torch.as_tensor(index)
    if index.ndim != 1 or index.shape[0] != length or index.is_floating_point():
        raise ValueError(f"{name} must be an integer tensor of shape ({length},), got {tuple(index.shape)}")
    if length and (int(index.min()) < 0 or int(index.max()) >= upper):
        raise ValueError(f"{name} values must lie in [0, {upper}), got [{int(index.min())}, {int(index.max())}]")
    return index.long()


def _check_chunk_size(chunk_size: int) -> int:
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return int(chunk_size)


def _check_k(k: int) -> int:
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return int(k)


# --------------------------------------------------------------------------- ranking core

# Each score block is compared in row slices of about this many bytes, with all threads: each comparison of
# a slice is big enough to share out (1M scores), and a slice is read from L3 rather than memory.  On the
# 2-core machine, 25,000 x 5,000: 4 MiB slices took 0.41 s of comparisons against 0.49 s at 2 MiB and 0.54 s at
# the whole 20 MiB block; all threads cut the time over one pass by about a third against one thread per slice.
_SLICE_BYTES = 1 << 22


def _score_blocks(queries: Tensor, items: Tensor, rows: int) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(start, queries[start:start+rows] @ items.T)``, all written into one reused buffer.

    Reusing the buffer avoids a fresh allocation (and its page faults) per block.
    """
    buffer = queries.new_empty(min(rows, queries.shape[0]), items.shape[0])
    for start in range(0, queries.shape[0], rows):
        block = queries[start : start + rows]
        scores = buffer[: block.shape[0]]
        torch.matmul(block, items.T, out=scores)
        yield start, scores


def _slice_starts(n_rows: int, block_rows: int, slice_rows: int) -> list[int]:
    """First row of every slice of every block of :func:`_score_blocks`, then ``n_rows``."""
    starts = [block + offset for block in range(0, n_rows, block_rows)
              for offset in range(0, min(block_rows, n_rows - block), slice_rows)]
    return starts + [n_rows]


def _slice_rows(n_columns: int, dtype: torch.dtype) -> int:
    return max(1, _SLICE_BYTES // (n_columns * dtype.itemsize))


class _Workspace(NamedTuple):
    """Buffers reused by every slice, each (rows, N): ``indicator`` for a slice's comparisons, ``threshold`` for
    per-score thresholds, ``pair_scores`` for the pairs' score rows."""

    indicator: Tensor
    threshold: Tensor
    pair_scores: Tensor

    @staticmethod
    def make(rows: int, n_columns: int, like: Tensor) -> "_Workspace":
        return _Workspace(*(like.new_empty(rows, n_columns) for _ in range(3)))


# Own columns spread over more than 1/_WIDE_BAND of a row are ranked with two comparisons per score, cheaper
# there than a threshold per score (multi-relevance pairs have clips all over the row).
_WIDE_BAND = 4


def _count(indicator: Tensor, dim: int) -> Tensor:
    """Count the ones of a 0./1. float indicator (P, N) along ``dim``, as long.

    Float indicators because this torch compares into float32 several times faster than into bool; sums of
    zeros and ones are exact below 2**24 terms in float32.
    """
    return indicator.sum(dim).long()


def _ranks_of_columns(scores: Tensor, columns: Tensor, work: _Workspace | None = None) -> tuple[Tensor, Tensor]:
    """0-based rank of ``scores[p, columns[p]]`` within row p of ``scores`` (P, N), stable descending order.

    Returns (ranks (P,) long, own scores (P,)).  ``work``: optional reusable buffers with at least P rows.
    Rank = scores > own, plus scores == own at smaller columns: that is scores >= own left of the own column
    and > own right of it.  Columns left of every row's own column take >=, those right of all of them take >,
    and only the band between the smallest and the largest own column needs a threshold per score: one
    comparison per score.  Captions sorted by clip (as evaluations store them) make that band a few columns
    wide; a wide band takes :func:`_ranks_checking_ties` instead.
    """
    n_rows, n_columns = scores.shape
    work = work or _Workspace.make(n_rows, n_columns, scores)
    low, high = (int(bound) for bound in torch.aminmax(columns))
    high += 1
    own = scores.gather(1, columns[:, None])  # (P, 1)
    if (high - low) * _WIDE_BAND > n_columns:
        return _ranks_checking_ties(scores, columns, own, work), own.squeeze(1)
    column_ids = torch.arange(low, high, device=scores.device)
    band_threshold = work.threshold[:n_rows, : high - low]
    torch.where(column_ids < columns[:, None], _next_below(own), own, out=band_threshold)
    indicator = work.indicator[:n_rows]
    torch.ge(scores[:, :low], own, out=indicator[:, :low])
    torch.gt(scores[:, low:high], band_threshold, out=indicator[:, low:high])
    torch.gt(scores[:, high:], own, out=indicator[:, high:])
    return _count(indicator, 1), own.squeeze(1)


def _ranks_checking_ties(scores: Tensor, columns: Tensor, own: Tensor, work: _Workspace) -> Tensor:
    """:func:`_ranks_of_columns` for own columns spread over the row (``own``: (P, 1) scores there): > and >=
    counted everywhere, and equal scores at smaller columns only on the rows that have a tie (rare with real
    embeddings)."""
    n_rows = scores.shape[0]
    ranks = _count(torch.gt(scores, own, out=work.indicator[:n_rows]), 1)
    at_least = _count(torch.ge(scores, own, out=work.threshold[:n_rows]), 1)
    tied_rows = (at_least - ranks > 1).nonzero().squeeze(1)
    if tied_rows.numel():
        column_ids = torch.arange(scores.shape[1], device=scores.device)
        earlier = column_ids[None, :] < columns[tied_rows, None]
        ranks[tied_rows] += ((scores[tied_rows] == own[tied_rows]) & earlier).sum(1)
    return ranks


def _next_below(values: Tensor) -> Tensor:
    """The largest float below each value: ``x > _next_below(v)`` is ``x >= v`` for finite floats."""
    return torch.nextafter(values, values.new_full((), float("-inf")))


class _A2TTargets(NamedTuple):
    """Per clip: the best own-caption score (N,), the next float below it (N,: ``> below`` is ``>= best``), the
    smallest caption index reaching it (N,); per caption: its own score as the pre-pass computed it (Q,) and
    its clip (Q,), to check that the pass reproduces them."""

    best: Tensor
    below: Tensor
    first: Tensor
    own: Tensor
    owner: Tensor


class _Pairs(NamedTuple):
    """(caption row, clip) pairs to rank, sorted by caption row: rows (P,) ascending, clips (P,)."""

    rows: Tensor
    clips: Tensor


class _ScanResult(NamedTuple):
    t2a: Tensor | None  # (Q,) rank of each caption's target clip
    own_scores: Tensor | None  # (Q,) the target scores as computed in the blocks
    a2t: Tensor | None  # (N,) column-wise audio->text ranks
    unreproduced: Tensor | None  # clips with an own score that did not come out the same in the pass
    pairs: Tensor | None  # (P,) rank of each pair's clip in its caption row


def _scan(text_emb: Tensor, audio_emb: Tensor, rows: int, target: Tensor | None = None,
          a2t: _A2TTargets | None = None, pairs: _Pairs | None = None) -> _ScanResult:
    """Every requested ranking from ONE pass over the (rows, N) caption x clip score blocks.

    The product is the cost (Q*N*D); text->audio and audio->text add one comparison and one count per score
    (Q*N) each, the multi-relevance pairs two of each per pair row, all made on cache-sized row slices of each
    block, so together they cost little more than the similarity pass.
    """
    n_captions, n_clips = text_emb.shape[0], audio_emb.shape[0]
    slice_rows = min(rows, n_captions, _slice_rows(n_clips, text_emb.dtype))
    starts = _slice_starts(n_captions, rows, slice_rows)
    work = _Workspace.make(slice_rows, n_clips, text_emb)
    t2a = own_scores = a2t_ranks = pair_ranks = None
    unreproduced: list[Tensor] = []
    if target is not None:
        t2a, own_scores = torch.empty_like(target), text_emb.new_empty(n_captions)
    if a2t is not None:
        a2t_ranks = torch.zeros(n_clips, dtype=torch.long, device=text_emb.device)
        clips_by_first = torch.argsort(a2t.first)
        firsts_at = _positions(a2t.first[clips_by_first], starts)  # clips_by_first[firsts_at[k]:...[k+1]]: slice k
    if pairs is not None:
        pair_ranks = torch.empty_like(pairs.clips)
        pairs_at = _positions(pairs.rows, starts)
    slice_index = 0
    for block_start, block in _score_blocks(text_emb, audio_emb, rows):
        for offset in range(0, block.shape[0], slice_rows):
            start, stop = starts[slice_index], starts[slice_index + 1]
            scores = block[offset : offset + slice_rows]
            if target is not None:
                t2a[start:stop], own_scores[start:stop] = _ranks_of_columns(scores, target[start:stop], work)
            if a2t is not None:
                firsts = clips_by_first[firsts_at[slice_index] : firsts_at[slice_index + 1]]
                _a2t_block(scores, start, a2t, firsts, a2t_ranks, work)
            if pairs is not None:
                _pair_block(scores, start, pairs, pairs_at[slice_index], pairs_at[slice_index + 1], pair_ranks, work)
            slice_index += 1
        if a2t is not None:
            unreproduced.append(_unreproduced_clips(block, block_start, a2t))
    return _ScanResult(t2a, own_scores, a2t_ranks, torch.cat(unreproduced).unique() if a2t is not None else None,
                       pair_ranks)


def _positions(sorted_values: Tensor, bounds: list[int]) -> list[int]:
    """For each bound, the number of ``sorted_values`` below it."""
    return torch.searchsorted(sorted_values, sorted_values.new_tensor(bounds)).tolist()


def _t2a_ranks(text_emb: Tensor, audio_emb: Tensor, target: Tensor, rows: int) -> tuple[Tensor, Tensor]:
    """Ranks (Q,) of each caption's target clip, and the target scores (Q,) as computed in the blocks."""
    result = _scan(text_emb, audio_emb, rows, target=target)
    return result.t2a, result.own_scores


def text_to_audio_ranks(
    text_emb: Tensor, audio_emb: Tensor, target: Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Tensor:
    """Rank of each caption's own clip among all clips.

    Shape:
        text_emb: (Q, D) caption embeddings; audio_emb: (N, D) clip embeddings;
        target: (Q,) long, index in ``audio_emb`` of each caption's clip.
        returns: (Q,) long 0-based ranks (0 = retrieved first).
    ``chunk_size`` captions are scored at a time (a (chunk_size, N) block).
    """
    text_emb, audio_emb = _check_pair(text_emb, audio_emb)
    target = _check_index("target", target, text_emb.shape[0], audio_emb.shape[0]).to(text_emb.device)
    return _t2a_ranks(text_emb, audio_emb, target, _check_chunk_size(chunk_size))[0]


# Audio->text ranks are computed from the same (captions x clips) blocks as text->audio, column-wise, because
# a (clips x all captions) product is memory-bound and about half as fast.  The best own caption of clip j
# (highest score, then smallest index) gives (best_j, first_j); each block then adds per column the captions
# scoring above best_j, plus those tied with it at a smaller index.  best_j must be known before the pass: the
# own scores are computed first, _MIN_GEMM_COLUMNS captions at a time against their own clips in batched
# products (Q*64*D, 1 % of a pass over 5,000 clips), which gives the bits of the full blocks on CPU BLAS (same
# depth, at least _MIN_GEMM_COLUMNS columns: the row count does not change the bits of a row; checked for
# D=1024 at 5,000 and 20,000 clips).  The pass checks every own score again; a clip with one that came out
# different (another BLAS, a GPU) is redone directly, so the ranks are exact either way.

_MIN_GEMM_COLUMNS = 64  # narrower products take a BLAS kernel (gemv-like) whose last bits differ
_GROUPS_PER_PRODUCT = 64  # caption groups per batched product: 4,096 captions, 16 MiB of gathered clips at D=1024


def _own_scores(text_emb: Tensor, audio_emb: Tensor, text_owner: Tensor, rows: int) -> Tensor:
    """Each caption's score with its own clip (Q,), with the bits of the blocks of :func:`_score_blocks`.

    Groups of _MIN_GEMM_COLUMNS captions are multiplied with their own clips, many groups per batched product.
    ``rows`` (the pass's block rows) is accepted for the signature; the row count does not change the bits.
    """
    n_captions, dim = text_emb.shape
    group = _MIN_GEMM_COLUMNS
    own = text_emb.new_empty(n_captions)
    for start in range(0, n_captions, group * _GROUPS_PER_PRODUCT):
        stop = min(start + group * _GROUPS_PER_PRODUCT, n_captions)
        captions = torch.arange(start, stop, device=own.device)
        padded = torch.cat([captions, captions[:1].expand(-len(captions) % group)])  # whole groups
        texts = text_emb[start:stop] if len(padded) == len(captions) else text_emb[padded]  # no copy when whole
        texts = texts.reshape(-1, group, dim)
        clips = audio_emb[text_owner[padded]].view(-1, group, dim)
        scores = torch.bmm(texts, clips.transpose(1, 2))  # (groups, group, group)
        own[captions] = scores.diagonal(dim1=1, dim2=2).reshape(-1)[: len(captions)]
    return own


def _best_own_captions(own_scores: Tensor, text_owner: Tensor, n_clips: int) -> tuple[Tensor, Tensor]:
    """Per clip: the highest own-caption score (N,) and the smallest caption index reaching it (N,)."""
    n_captions = own_scores.shape[0]
    best = own_scores.new_full((n_clips,), float("-inf")).scatter_reduce_(0, text_owner, own_scores, "amax")
    caption_ids = torch.arange(n_captions, device=own_scores.device)
    candidates = torch.where(own_scores == best[text_owner], caption_ids, n_captions)
    first = torch.full((n_clips,), n_captions, device=own_scores.device).scatter_reduce_(
        0, text_owner, candidates, "amin"
    )
    if n_clips and int(first.max()) == n_captions:
        empty = (first == n_captions).nonzero().squeeze(1)
        raise ValueError(f"{empty.numel()} clips have no caption (first: {empty[:_EXAMPLES_IN_ERRORS].tolist()})")
    return best, first


def _a2t_targets(own_scores: Tensor, text_owner: Tensor, n_clips: int) -> _A2TTargets:
    best, first = _best_own_captions(own_scores, text_owner, n_clips)
    return _A2TTargets(best, _next_below(best), first, own_scores, text_owner)


def _a2t_block(scores: Tensor, start: int, targets: _A2TTargets, firsts: Tensor, ranks: Tensor,
               work: _Workspace) -> None:
    """Add one slice's per-column counts to ``ranks`` (N,): captions above ``best``, equal ones before
    ``first``.  ``firsts``: the clips whose first best caption lies in the slice.

    One comparison per score: a clip whose first best caption comes after the slice counts the slice's scores
    >= best, one whose first best caption came before counts those > best; only the clips in ``firsts`` (at
    most one per row) take a threshold per score, on their own few columns.
    """
    best, below, first = targets.best, targets.below, targets.first
    n_rows = scores.shape[0]
    threshold = torch.where(first >= start + n_rows, below, best)
    counts = _count(torch.gt(scores, threshold, out=work.indicator[:n_rows]), 0)
    if firsts.numel():
        rows = torch.arange(start, start + n_rows, device=scores.device)
        own_threshold = work.threshold[:n_rows, : firsts.numel()]
        torch.where(rows[:, None] < first.index_select(0, firsts), below.index_select(0, firsts),
                    best.index_select(0, firsts), out=own_threshold)
        own_indicator = work.indicator[:n_rows, : firsts.numel()]  # free again: counted above
        own_counts = _count(torch.gt(scores.index_select(1, firsts), own_threshold, out=own_indicator), 0)
        counts.index_copy_(0, firsts, own_counts)
    ranks += counts


def _unreproduced_clips(scores: Tensor, start: int, targets: _A2TTargets) -> Tensor:
    """The clips of a block's captions whose own score in the block differs from the pre-pass's (to redo)."""
    owners = targets.owner[start : start + scores.shape[0]]
    return owners[scores.gather(1, owners[:, None]).squeeze(1) != targets.own[start : start + scores.shape[0]]]


def _pair_block(scores: Tensor, start: int, pairs: _Pairs, first: int, last: int, ranks: Tensor,
                work: _Workspace) -> None:
    """Rank, within their caption rows of this slice, the pairs ``first:last`` (those whose row lies in it)."""
    step = work.pair_scores.shape[0]
    for pair_start in range(first, last, step):
        pair_stop = min(pair_start + step, last)
        selected = work.pair_scores[: pair_stop - pair_start]
        torch.index_select(scores, 0, pairs.rows[pair_start:pair_stop] - start, out=selected)
        ranks[pair_start:pair_stop] = _ranks_of_columns(selected, pairs.clips[pair_start:pair_stop], work)[0]


def _a2t_ranks_direct(audio_emb: Tensor, text_emb: Tensor, text_owner: Tensor, clips: Tensor, rows: int) -> Tensor:
    """Ranks of the given clips from (clips x all captions) blocks; the slow, simple way."""
    ranks = torch.empty_like(clips)
    for start, scores in _score_blocks(audio_emb[clips], text_emb, rows):
        block_clips = clips[start : start + scores.shape[0]]
        own = text_owner[None, :] == block_clips[:, None]
        # torch.max returns the first maximum: the smallest caption index among tied own captions
        best_caption = scores.masked_fill(~own, float("-inf")).max(dim=1).indices
        ranks[start : start + scores.shape[0]] = _ranks_of_columns(scores, best_caption)[0]
    return ranks


def _a2t_fallback(audio_emb: Tensor, text_emb: Tensor, text_owner: Tensor, ranks: Tensor, unreproduced: Tensor,
                  rows: int) -> Tensor:
    if unreproduced.numel():
        direct_rows = max(1, rows * audio_emb.shape[0] // max(1, text_emb.shape[0]))
        ranks[unreproduced] = _a2t_ranks_direct(audio_emb, text_emb, text_owner, unreproduced, direct_rows)
    return ranks


def _a2t_ranks(
    audio_emb: Tensor, text_emb: Tensor, text_owner: Tensor, own_scores: Tensor, rows: int
) -> Tensor:
    result = _scan(text_emb, audio_emb, rows, a2t=_a2t_targets(own_scores, text_owner, audio_emb.shape[0]))
    return _a2t_fallback(audio_emb, text_emb, text_owner, result.a2t, result.unreproduced, rows)


def audio_to_text_ranks(
    audio_emb: Tensor, text_emb: Tensor, text_owner: Tensor, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Tensor:
    """Rank of each clip's best-ranked own caption among all captions (audio->text retrieval).

    Shape:
        audio_emb: (N, D); text_emb: (Q, D); text_owner: (Q,) long, index in ``audio_emb`` of each caption's clip.
        returns: (N,) long 0-based ranks.  Every clip needs at least one caption.
    Scores ``chunk_size`` captions against all clips at a time (a (chunk_size, N) block), in one pass.
    """
    text_emb, audio_emb = _check_pair(text_emb, audio_emb)
    text_owner = _check_index("text_owner", text_owner, text_emb.shape[0], audio_emb.shape[0]).to(text_emb.device)
    rows = _check_chunk_size(chunk_size)
    return _a2t_ranks(audio_emb, text_emb, text_owner, _own_scores(text_emb, audio_emb, text_owner, rows), rows)


def recall_at_k(ranks: Tensor, k: int) -> float:
    """Fraction of queries whose relevant item has 0-based rank < k.  ranks: (Q,) long."""
    return float((torch.as_tensor(ranks) < _check_k(k)).double().mean())


def map_at_k_single(ranks: Tensor, k: int) -> float:
    """Single-relevant mAP@k: mean over queries of 1/(r+1) if r < k else 0.  ranks: (Q,) long, 0-based."""
    ranks = torch.as_tensor(ranks).double()
    return float(torch.where(ranks < _check_k(k), 1.0 / (ranks + 1.0), 0.0).mean())


# --------------------------------------------------------------------------- multi-relevance mAP@k


def average_precision_at_k(ranks: Sequence[int], k: int) -> float:
    """Official DCASE 2025 AP@k of one query from the 0-based ranks of all its n relevant clips.

    ``AP@k = (1/n) * sum_{i: r_i < k} i / (r_i + 1)`` with ranks sorted ascending (i is 1-based).
    Example: ranks {0, 3, 20} at k=16 give (1/1 + 2/4) / 3 = 0.5.
    """
    k = _check_k(k)
    ordered = sorted(int(r) for r in ranks)
    if not ordered:
        raise ValueError("a query needs at least one relevant clip")
    return sum(i / (r + 1) for i, r in enumerate(ordered, start=1) if r < k) / len(ordered)


def _relevant_pairs(relevant: Sequence[Sequence[int]], n_clips: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Flatten per-query relevant clip lists into (query, clip) pairs, grouped by query."""
    counts = [len(clips) for clips in relevant]
    if counts and min(counts) == 0:
        raise ValueError(f"query {counts.index(0)} has no relevant clip")
    clips = torch.tensor([int(c) for group in relevant for c in group], dtype=torch.long, device=device)
    queries = torch.repeat_interleave(
        torch.arange(len(relevant), device=device), torch.tensor(counts, dtype=torch.long, device=device)
    )
    _check_index("relevant clip index", clips, clips.shape[0], n_clips)
    return queries, clips


def _pair_ranks(text_emb: Tensor, audio_emb: Tensor, queries: Tensor, clips: Tensor, rows: int) -> Tensor:
    """Rank of clip ``clips[p]`` for query ``queries[p]`` (queries ascending), block by block."""
    return _scan(text_emb, audio_emb, rows, pairs=_Pairs(queries, clips)).pairs


def _mean_average_precision(queries: Tensor, ranks: Tensor, n_queries: int, k: int) -> float:
    """Vectorised mean of ``average_precision_at_k`` over queries; pairs grouped by query."""
    order = torch.argsort(queries * (int(ranks.max()) + 1) + ranks, stable=True)
    queries, ranks = queries[order], ranks[order]
    counts = torch.bincount(queries, minlength=n_queries)
    starts = torch.cumsum(counts, 0) - counts
    position = (torch.arange(ranks.shape[0], device=ranks.device) - starts[queries] + 1).double()
    terms = torch.where(ranks < k, position / (ranks.double() + 1.0), 0.0)
    sums = torch.zeros(n_queries, dtype=torch.float64, device=ranks.device).index_add_(0, queries, terms)
    return float((sums / counts.double()).mean())


def _checked_pairs(text_emb: Tensor, audio_emb: Tensor, relevant: Sequence[Sequence[int]]) -> tuple[Tensor, Tensor]:
    """The (query, clip) pairs of ``relevant``, one query per row of ``text_emb`` (any (Q, ...) tensor)."""
    if len(relevant) != text_emb.shape[0] or not relevant:
        raise ValueError(f"relevant has {len(relevant)} queries but text_emb has {text_emb.shape[0]} rows (need >= 1)")
    return _relevant_pairs(relevant, audio_emb.shape[0], text_emb.device)


def multi_relevance_ranks(
    text_emb: Tensor, audio_emb: Tensor, relevant: Sequence[Sequence[int]], chunk_size: int = DEFAULT_CHUNK_SIZE
) -> list[list[int]]:
    """0-based ranks of every relevant clip of every query, in the order given by ``relevant``.

    Shape: text_emb (Q, D) query embeddings; audio_emb (N, D); ``relevant[q]`` lists clip indices of query q.
    """
    text_emb, audio_emb = _check_pair(text_emb, audio_emb)
    queries, clips = _checked_pairs(text_emb, audio_emb, relevant)
    ranks = _pair_ranks(text_emb, audio_emb, queries, clips, _check_chunk_size(chunk_size)).tolist()
    bounds = torch.cumsum(torch.tensor([0] + [len(group) for group in relevant]), 0).tolist()
    return [ranks[bounds[q] : bounds[q + 1]] for q in range(len(relevant))]


def multi_relevance_map_at_k(
    text_emb: Tensor,
    audio_emb: Tensor,
    relevant: Sequence[Sequence[int]],
    k: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> float:
    """DCASE 2025 multi-relevance mAP@k (official ranking metric: k=16), normalised by n, not min(n, k).

    Shape: text_emb (Q, D) query embeddings (already restricted to the queries); audio_emb (N, D);
    ``relevant[q]``: indices in ``audio_emb`` of the clips relevant to query q (at least one).
    """
    text_emb, audio_emb = _check_pair(text_emb, audio_emb)
    return _multi_relevance_maps(text_emb, audio_emb, relevant, (_check_k(k),), _check_chunk_size(chunk_size))[k]


def _multi_relevance_maps(
    text_emb: Tensor, audio_emb: Tensor, relevant: Sequence[Sequence[int]], ks: Sequence[int], rows: int
) -> dict[int, float]:
    """mAP@k for several k from one ranking pass (inputs already checked)."""
    queries, clips = _checked_pairs(text_emb, audio_emb, relevant)
    ranks = _pair_ranks(text_emb, audio_emb, queries, clips, rows)
    return {k: _mean_average_precision(queries, ranks, len(relevant), k) for k in ks}


# --------------------------------------------------------------------------- all metrics at once


def retrieval_metrics(
    audio_emb: Tensor,
    text_emb: Tensor,
    text_owner: Tensor,
    relevant: Sequence[Sequence[int]] | None = None,
    ks: Sequence[int] = (1, 5, 10),
    map_ks: Sequence[int] = (10,),
    multi_ks: Sequence[int] = (16, 10),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    query_rows: Sequence[int] | Tensor | None = None,
) -> dict[str, float]:
    """All retrieval metrics of one evaluation, as fractions in [0, 1].

    Shape:
        audio_emb: (N, D) one row per unique clip; text_emb: (Q, D) one row per caption;
        text_owner: (Q,) long, row in ``audio_emb`` of each caption's clip.
        relevant: optional multi-relevance ground truth, ``relevant[j]`` = clip rows relevant to query j,
        where query j is caption row ``query_rows[j]`` (default: query j is caption row j).
        chunk_size: captions per (chunk_size, N) score block; all metrics come from one pass over the blocks.
    Returns keys ``t2a/R@{k}`` and ``a2t/R@{k}`` for k in ks, ``t2a/mAP@{k}`` for k in map_ks and, when
    ``relevant`` is given, ``t2a_multi/mAP@{k}`` for k in multi_ks.
    """
    text_emb, audio_emb = _check_pair(text_emb, audio_emb)
    text_owner = _check_index("text_owner", text_owner, text_emb.shape[0], audio_emb.shape[0]).to(text_emb.device)
    rows = _check_chunk_size(chunk_size)
    for k in (*ks, *map_ks, *(multi_ks if relevant is not None else ())):
        _check_k(k)
    pairs = other_pairs = None
    if relevant is not None:
        pairs, pair_order, pair_queries = _caption_row_pairs(text_emb, audio_emb, relevant, query_rows)
        # a pair of a caption and its own clip has the caption's text->audio rank: only the others are ranked
        own_pair = pairs.clips == text_owner[pairs.rows]
        other_pairs = _Pairs(pairs.rows[~own_pair], pairs.clips[~own_pair])
    targets = _a2t_targets(_own_scores(text_emb, audio_emb, text_owner, rows), text_owner, audio_emb.shape[0])
    result = _scan(text_emb, audio_emb, rows, target=text_owner, a2t=targets, pairs=other_pairs)
    t2a = result.t2a
    a2t = _a2t_fallback(audio_emb, text_emb, text_owner, result.a2t, result.unreproduced, rows)
    metrics = {f"t2a/R@{k}": recall_at_k(t2a, k) for k in ks}
    metrics.update({f"t2a/mAP@{k}": map_at_k_single(t2a, k) for k in map_ks})
    metrics.update({f"a2t/R@{k}": recall_at_k(a2t, k) for k in ks})
    if pairs is not None:
        sorted_ranks = torch.empty_like(pairs.clips)
        sorted_ranks[own_pair] = t2a[pairs.rows[own_pair]]
        sorted_ranks[~own_pair] = result.pairs
        pair_ranks = torch.empty_like(sorted_ranks).index_copy_(0, pair_order, sorted_ranks)
        metrics.update({f"t2a_multi/mAP@{k}": _mean_average_precision(pair_queries, pair_ranks, len(relevant), k)
                        for k in multi_ks})
    return metrics


def _caption_row_pairs(text_emb: Tensor, audio_emb: Tensor, relevant: Sequence[Sequence[int]],
                       query_rows: Sequence[int] | Tensor | None) -> tuple[_Pairs, Tensor, Tensor]:
    """The multi-relevance (query, clip) pairs as (caption row, clip) pairs sorted by caption row.

    Returns the sorted pairs, the position of each sorted pair in query order, and the query of each pair
    in query order (grouped by query, as :func:`_mean_average_precision` wants them).
    """
    if query_rows is None:
        picked = torch.arange(text_emb.shape[0], device=text_emb.device)
    else:
        picked = _check_index("query_rows", torch.as_tensor(query_rows), len(query_rows), text_emb.shape[0])
        picked = picked.to(text_emb.device)
    queries, clips = _checked_pairs(picked, audio_emb, relevant)
    caption_rows = picked[queries]
    order = torch.argsort(caption_rows, stable=True)
    return _Pairs(caption_rows[order], clips[order]), order, queries


# --------------------------------------------------------------------------- official relevance file


def _parse_audio_list(raw: str, path: Path, line: int) -> list[str]:
    try:
        names = ast.literal_eval(raw)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise DataError(f"audio_filenames is not a Python list literal: {raw[:80]!r}", path, line) from None
    if not isinstance(names, (list, tuple)) or not all(isinstance(name, str) for name in names):
        raise DataError(f"audio_filenames must be a list of file names, got {raw[:80]!r}", path, line)
    if not names:
        raise DataError("audio_filenames is empty: every query needs at least one relevant clip", path, line)
    return list(names)


def load_relevance_csv(path: str | Path) -> dict[str, list[str]]:
    """Read the official ``metadata_eval.csv`` (columns ``query,audio_filenames``).

    Returns ``{query caption: [relevant audio file names]}`` in file order.  Names are kept verbatim,
    HTML entities included (e.g. ``d&#39;eau.wav``).  Errors name the file and line (header = line 1).
    """
    path = Path(path)
    table: dict[str, list[str]] = {}
    first_line: dict[str, int] = {}
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if not set(RELEVANCE_COLUMNS) <= set(columns):
                raise DataError(f"expected columns {list(RELEVANCE_COLUMNS)}, found {columns}", path, 1)
            for row in reader:
                line = reader.line_num
                query, raw = row.get("query"), row.get("audio_filenames")
                if query is None or raw is None:
                    raise DataError("row has fewer fields than the header", path, line)
                if query in table:
                    raise DataError(f"query {query!r} repeats line {first_line[query]}", path, line)
                table[query] = _parse_audio_list(raw, path, line)
                first_line[query] = line
    except FileNotFoundError:
        raise DataError("relevance file not found", path) from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"cannot read as UTF-8 CSV: {err}", path) from None
    return table


def _first_positions(names: Sequence[str]) -> dict[str, int]:
    positions: dict[str, int] = {}
    for index, name in enumerate(names):
        positions.setdefault(name, index)
    return positions


def resolve_relevance(
    table: dict[str, list[str]],
    captions: Sequence[str],
    audio_names: Sequence[str],
    path_for_errors: str | Path | None = None,
) -> tuple[list[int], list[list[int]]]:
    """Map a relevance table to rows of the evaluation's embeddings.

    Args:
        table: ``load_relevance_csv`` output.
        captions: caption string of each text-embedding row (original case, as in the Clotho CSV).
        audio_names: file basename of each audio-embedding row.
        path_for_errors: the relevance file, named in errors.
    Returns:
        query_rows: caption row of each query (first exact match, like the official ``captions.index``);
        relevant: for each query, the audio rows of its relevant clips (first match per name).
    Raises DataError listing how many queries / audio names are missing and the first few.
    """
    caption_rows = _first_positions(captions)
    audio_rows = _first_positions(audio_names)
    missing_queries = [query for query in table if query not in caption_rows]
    missing_audio = list(dict.fromkeys(n for names in table.values() for n in names if n not in audio_rows))
    problems = []
    if missing_queries:
        problems.append(
            f"{len(missing_queries)} of {len(table)} queries not among the {len(captions)} captions "
            f"(first: {missing_queries[:_EXAMPLES_IN_ERRORS]})"
        )
    if missing_audio:
        problems.append(
            f"{len(missing_audio)} audio names not among the {len(audio_names)} clips "
            f"(first: {missing_audio[:_EXAMPLES_IN_ERRORS]})"
        )
    if problems:
        raise DataError("; ".join(problems), path_for_errors)
    query_rows = [caption_rows[query] for query in table]
    relevant = [[audio_rows[name] for name in names] for names in table.values()]
    return query_rows, relevant



def resolve_relevance_for_records(
    table: dict[str, list[str]],
    records: Sequence[Any],
    clip_index: Sequence[int],
    text_clip_index: Sequence[int],
    text_slot: Sequence[int],
    path_for_errors: str | Path | None = None,
) -> tuple[list[int], list[list[int]]]:
    """:func:`resolve_relevance` for evaluation rows given as record indices (``RetrievalEmbeddings`` output).

    ``records`` are the evaluation clips (``captions``, ``audio_path``); captions are matched verbatim, the
    audio by file basename, as the official code does.
    """
    captions = [records[c].captions[s] for c, s in zip(text_clip_index, text_slot)]
    names = [Path(records[c].audio_path).name for c in clip_index]
    return resolve_relevance(table, captions, names, path_for_errors)


# --------------------------------------------------------------------------- accumulation across steps and ranks

_STATES = ("audio_emb", "clip_index", "text_emb", "text_clip_index", "text_slot")


def _first_of_each_key(keys: Tensor) -> Tensor:
    """Positions of the first occurrence of each distinct key, ordered by ascending key.  keys: (R,) long."""
    order = torch.argsort(keys, stable=True)
    sorted_keys = keys[order]
    is_first = torch.ones_like(sorted_keys, dtype=torch.bool)
    is_first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return order[is_first]


class RetrievalEmbeddings(Metric):
    """Collects evaluation embeddings step by step; torchmetrics gathers them across ranks once, in compute().

    Each ``update`` gets the audio embedding of every clip in the batch and all captions of those clips,
    flattened.  ``compute`` removes duplicate clips and captions (e.g. DistributedSampler padding, or a
    "flat" dataset repeating a clip per caption; first occurrence kept) and sorts by (clip_index, slot), so
    the result does not depend on the number of ranks.  Embeddings are stored as float32.

    Every rank must call ``update`` at least once before ``compute`` (DistributedSampler guarantees this):
    torchmetrics fills a rank without data with a 1-D float placeholder that cannot be gathered with
    2-D embeddings or integer indices.  Row counts may differ between ranks.

    Usage: ``out = metric.compute()``, then ``retrieval_metrics(out["audio_emb"], out["text_emb"],
    out["text_owner"])``.  For the multi-relevance metric, map ``out["text_clip_index"]``/``out["text_slot"]`` to
    caption strings and ``out["clip_index"]`` to file basenames, then call ``resolve_relevance``.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = None

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        for name in _STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(  # type: ignore[override]
        self, audio_emb: Tensor, clip_index: Tensor, text_emb: Tensor, text_clip_index: Tensor, text_slot: Tensor
    ) -> None:
        """Shape: audio_emb (B, D); clip_index (B,) long >= 0, dataset index of each clip;
        text_emb (T, D); text_clip_index (T,) long, clip of each caption; text_slot (T,) long >= 0,
        caption number within its clip."""
        if audio_emb.ndim != 2 or text_emb.ndim != 2 or audio_emb.shape[1] != text_emb.shape[1]:
            raise ValueError(
                "expected audio_emb (B, D) and text_emb (T, D), "
                f"got {tuple(audio_emb.shape)} and {tuple(text_emb.shape)}"
            )
        if self.audio_emb and self.audio_emb[0].shape[1] != audio_emb.shape[1]:
            raise ValueError(f"embedding size changed from {self.audio_emb[0].shape[1]} to {audio_emb.shape[1]}")
        indices = {"clip_index": (clip_index, audio_emb), "text_clip_index": (text_clip_index, text_emb),
                   "text_slot": (text_slot, text_emb)}  # fmt: skip
        for name, (index, emb) in indices.items():
            if index.ndim != 1 or index.shape[0] != emb.shape[0] or index.is_floating_point():
                shape = tuple(index.shape)
                raise ValueError(f"{name} must be an integer tensor of shape ({emb.shape[0]},), got {shape}")
            if index.numel() and int(index.min()) < 0:
                raise ValueError(f"{name} must be >= 0")
        self.audio_emb.append(audio_emb.detach().float())
        self.clip_index.append(clip_index.detach().long())
        self.text_emb.append(text_emb.detach().float())
        self.text_clip_index.append(text_clip_index.detach().long())
        self.text_slot.append(text_slot.detach().long())

    def compute(self) -> dict[str, Tensor]:
        """Returns audio_emb (N, D), clip_index (N,) sorted unique, text_emb (Q, D), text_owner (Q,)
        (row of the caption's clip in audio_emb), text_clip_index (Q,), text_slot (Q,)."""
        if isinstance(self.audio_emb, list) and not self.audio_emb:
            raise ValueError("RetrievalEmbeddings.compute() called before any update()")
        audio_emb, clip_index = dim_zero_cat(self.audio_emb), dim_zero_cat(self.clip_index)
        text_emb, text_clip = dim_zero_cat(self.text_emb), dim_zero_cat(self.text_clip_index)
        text_slot = dim_zero_cat(self.text_slot)

        keep_clips = _first_of_each_key(clip_index)
        audio_emb, clip_index = audio_emb[keep_clips], clip_index[keep_clips]
        slot_span = int(text_slot.max()) + 1 if text_slot.numel() else 1
        keep_texts = _first_of_each_key(text_clip * slot_span + text_slot)
        text_emb, text_clip, text_slot = text_emb[keep_texts], text_clip[keep_texts], text_slot[keep_texts]

        text_owner = torch.searchsorted(clip_index, text_clip).clamp_(max=max(len(clip_index) - 1, 0))
        orphans = text_clip[clip_index[text_owner] != text_clip] if len(clip_index) else text_clip
        if orphans.numel():
            examples = orphans.unique()[:_EXAMPLES_IN_ERRORS].tolist()
            raise ValueError(f"captions of clips {examples} have no audio embedding")
        return {
            "audio_emb": audio_emb,
            "clip_index": clip_index,
            "text_emb": text_emb,
            "text_owner": text_owner,
            "text_clip_index": text_clip,
            "text_slot": text_slot,
        }
