"""Retrieval metrics against hand-worked cases and a naive, unchunked reference (argsort of argsort)."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from lasr.errors import DataError
from lasr.metrics import (
    RetrievalEmbeddings,
    audio_to_text_ranks,
    average_precision_at_k,
    load_relevance_csv,
    map_at_k_single,
    multi_relevance_map_at_k,
    multi_relevance_ranks,
    recall_at_k,
    resolve_relevance,
    retrieval_metrics,
    text_to_audio_ranks,
)

# --------------------------------------------------------------------------- helpers


def _query_ranking_clips(order: list[int], n_clips: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot clips and one L2-normalised query whose clip ranking is exactly ``order`` (best first)."""
    audio = torch.eye(n_clips, dtype=torch.float32)
    scores = torch.zeros(n_clips)
    for rank, clip in enumerate(order):
        scores[clip] = float(n_clips - rank)
    return torch.nn.functional.normalize(scores[None], dim=1), audio


def _naive_rank_matrix(query: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Full (Q, N) 0-based ranks as the official code does it: argsort(argsort(-C)), stable."""
    scores = query @ items.T
    return torch.argsort(torch.argsort(-scores, dim=1, stable=True), dim=1, stable=True)


def _naive_metrics(audio, text, owner, relevant, query_rows) -> dict[str, float]:
    t2a_full = _naive_rank_matrix(text, audio)
    t2a = t2a_full[torch.arange(len(owner)), owner]
    a2t_full = _naive_rank_matrix(audio, text)
    a2t = torch.stack([a2t_full[j, owner == j].min() for j in range(audio.shape[0])])
    result = {f"t2a/R@{k}": (t2a < k).double().mean().item() for k in (1, 5, 10)}
    result["t2a/mAP@10"] = torch.where(t2a < 10, 1.0 / (t2a.double() + 1.0), 0.0).mean().item()
    result.update({f"a2t/R@{k}": (a2t < k).double().mean().item() for k in (1, 5, 10)})
    for k in (16, 10):
        aps = [average_precision_at_k(t2a_full[row, rel].tolist(), k) for row, rel in zip(query_rows, relevant)]
        result[f"t2a_multi/mAP@{k}"] = sum(aps) / len(aps)
    return result


def _random_eval(n_clips: int, captions_per_clip: int, dim: int, seed: int, integer: bool = False):
    generator = torch.Generator().manual_seed(seed)
    if integer:  # small integers: exact dot products, many ties
        audio = torch.randint(-2, 3, (n_clips, dim), generator=generator).float()
        text = torch.randint(-2, 3, (n_clips * captions_per_clip, dim), generator=generator).float()
    else:  # float64: near-ties far below any chunking round-off
        normalize = torch.nn.functional.normalize
        audio = normalize(torch.randn(n_clips, dim, generator=generator, dtype=torch.float64), dim=1)
        text = audio.repeat_interleave(captions_per_clip, 0)
        text = normalize(text + torch.randn(text.shape, generator=generator, dtype=torch.float64), dim=1)
    owner = torch.arange(n_clips).repeat_interleave(captions_per_clip)
    query_rows = torch.randperm(len(owner), generator=generator)[: n_clips // 2].tolist()
    relevant = [
        sorted({int(owner[row])} | set(torch.randint(0, n_clips, (int(row) % 4,), generator=generator).tolist()))
        for row in query_rows
    ]
    return audio, text, owner, relevant, query_rows


# --------------------------------------------------------------------------- multi-relevance mAP@k


def test_pinned_example_ranks_0_3_20_at_16_gives_half():
    order = torch.randperm(25, generator=torch.Generator().manual_seed(0)).tolist()
    query, audio = _query_ranking_clips(order, 25)
    relevant = [[order[20], order[0], order[3]]]
    assert multi_relevance_ranks(query, audio, relevant) == [[20, 0, 3]]
    assert multi_relevance_map_at_k(query, audio, relevant, k=16) == pytest.approx(0.5)
    assert multi_relevance_map_at_k(query, audio, relevant, k=3) == pytest.approx(1 / 3)
    assert multi_relevance_map_at_k(query, audio, relevant, k=21) == pytest.approx((1 + 2 / 4 + 3 / 21) / 3)
    assert average_precision_at_k([20, 0, 3], 16) == pytest.approx(0.5)


def test_multi_relevance_normalises_by_n_not_min_n_k():
    query, audio = _query_ranking_clips(list(range(30)), 30)
    relevant = [list(range(20))]  # ranks 0..19, only the first 16 count
    assert multi_relevance_map_at_k(query, audio, relevant, k=16) == pytest.approx(16 / 20)
    assert multi_relevance_map_at_k(query, audio, relevant, k=30) == pytest.approx(1.0)


def test_multi_relevance_averages_over_queries():
    order_a, order_b = list(range(10)), list(range(9, -1, -1))
    query_a, audio = _query_ranking_clips(order_a, 10)
    query_b, _ = _query_ranking_clips(order_b, 10)
    queries = torch.cat([query_a, query_b])
    relevant = [[0], [0, 9]]  # query a: rank 0 -> 1.0; query b: ranks 9 and 0 -> (1/1 + 2/10)/2 = 0.6
    assert multi_relevance_map_at_k(queries, audio, relevant, k=10) == pytest.approx((1.0 + 0.6) / 2)
    assert multi_relevance_map_at_k(queries, audio, relevant, k=5) == pytest.approx((1.0 + 0.5) / 2)


# --------------------------------------------------------------------------- single-relevance text->audio


def _hand_matrix():
    """4 captions x 3 one-hot clips; text rows are the scores themselves (multiples of 1/8: exact)."""
    audio = torch.eye(3)
    text = torch.tensor(
        [
            [7, 1, 2],  # owner 0: rank 0
            [4, 6, 5],  # owner 0: 6 and 5 beat 4 -> rank 2
            [3, 7, 1],  # owner 1: rank 0
            [3, 2, 1],  # owner 2: 3 and 2 beat 1 -> rank 2
        ]
    ) / 8.0
    return audio, text, torch.tensor([0, 0, 1, 2])


def test_single_relevance_recall_and_map_by_hand():
    audio, text, owner = _hand_matrix()
    ranks = text_to_audio_ranks(text, audio, owner)
    assert ranks.tolist() == [0, 2, 0, 2]
    assert recall_at_k(ranks, 1) == pytest.approx(0.5)
    assert recall_at_k(ranks, 2) == pytest.approx(0.5)
    assert recall_at_k(ranks, 3) == pytest.approx(1.0)
    assert map_at_k_single(ranks, 10) == pytest.approx((1 + 1 / 3 + 1 + 1 / 3) / 4)
    assert map_at_k_single(ranks, 2) == pytest.approx(0.5)


def test_ties_break_like_stable_descending_sort():
    audio = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # clips 0, 1, 3 identical
    text = torch.tensor([[1.0, 0.0]] * 4)
    ranks = text_to_audio_ranks(text, audio, torch.tensor([0, 1, 3, 2]))
    assert ranks.tolist() == [0, 1, 2, 3]  # equal scores: the smaller clip index ranks first
    pairs = multi_relevance_ranks(text[:1], audio, [[3, 1, 2]])
    assert pairs == [[2, 1, 3]]


def test_audio_to_text_uses_best_own_caption():
    audio = torch.eye(3)
    text = torch.tensor(
        [
            [2, 5, 0],  # clip 0
            [6, 0, 0],  # clip 0: best own caption of clip 0 (score 6, nothing higher) -> rank 0
            [0, 1, 3],  # clip 1
            [0, 2, 4],  # clip 1: best own of clip 1 is 2 -> captions 0 (5) and 4 (3) beat it -> rank 2
            [0, 3, 1],  # clip 2: its column is [0, 0, 3, 4, 1]; own score 1 is beaten twice -> rank 2
        ],
        dtype=torch.float32,
    )
    owner = torch.tensor([0, 0, 1, 1, 2])
    ranks = audio_to_text_ranks(audio, text, owner)
    assert ranks.tolist() == [0, 2, 2]
    metrics = retrieval_metrics(audio, text, owner, ks=(1, 3))
    assert metrics["a2t/R@1"] == pytest.approx(1 / 3)
    assert metrics["a2t/R@3"] == pytest.approx(1.0)


def test_audio_to_text_tied_own_captions_take_the_first():
    audio = torch.eye(2)
    text = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    owner = torch.tensor([1, 0, 0, 1])  # clip 0 owns captions 1, 2 (tied); clip 1 owns 0, 3 (tied)
    assert audio_to_text_ranks(audio, text, owner).tolist() == [0, 0]
    text[0] = torch.tensor([0.0, 0.5])  # clip 1 now: caption 3 (1.0) is its best, caption 0 ranks behind it
    assert audio_to_text_ranks(audio, text, owner).tolist() == [0, 0]
    # clip 0 owns captions 0, 2, 3: best is caption 2, tied with caption 1 at a smaller index -> rank 1;
    # clip 1 owns only caption 1 (score 0): captions 0 and 3 beat it, tied caption 2 comes later -> rank 2
    owner = torch.tensor([0, 1, 0, 0])
    assert audio_to_text_ranks(audio, text, owner).tolist() == [1, 2]


def test_clip_without_caption_is_an_error():
    with pytest.raises(ValueError, match="no caption"):
        audio_to_text_ranks(torch.eye(3), torch.eye(3)[:2], torch.tensor([0, 0]))


def test_non_finite_embeddings_are_rejected():
    text = torch.ones(2, 3)
    text[1, 1] = float("nan")
    with pytest.raises(ValueError, match="text_emb contains NaN"):
        text_to_audio_ranks(text, torch.eye(3), torch.tensor([0, 1]))


# --------------------------------------------------------------------------- chunking and the naive reference


@pytest.mark.parametrize("integer", [True, False])
def test_chunk_sizes_give_identical_results(integer):
    audio, text, owner, relevant, rows = _random_eval(40, 3, 8, seed=1, integer=integer)
    results = [
        retrieval_metrics(audio, text, owner, relevant=relevant, query_rows=rows, chunk_size=size)
        for size in (1, 7, 4096)
    ]
    assert results[0] == results[1] == results[2]
    ranks = [text_to_audio_ranks(text, audio, owner, chunk_size=size) for size in (1, 4096)]
    assert torch.equal(ranks[0], ranks[1])


@pytest.mark.parametrize(("integer", "seed"), [(True, 2), (True, 3), (False, 4), (False, 5)])
def test_matches_naive_unchunked_reference(integer, seed):
    audio, text, owner, relevant, rows = _random_eval(60, 5, 16, seed=seed, integer=integer)
    expected = _naive_metrics(audio, text, owner, relevant, rows)
    got = retrieval_metrics(audio, text, owner, relevant=relevant, query_rows=rows, chunk_size=13)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("integer", [True, False])
def test_matches_naive_reference_in_slices_of_blocks(monkeypatch, shuffled, integer):
    """Several slices per block.  Captions in clip order give each slice a narrow band of own columns (one
    comparison per score, a threshold per score in the band); shuffled captions take the two-comparison way.
    Integer embeddings tie often, at and around the own clips."""
    import lasr.metrics.retrieval as retrieval

    monkeypatch.setattr(retrieval, "_SLICE_BYTES", 4 * 60 * 4)  # 4-row slices of the 60 clips
    audio, text, owner, relevant, rows = _random_eval(60, 5, 16, seed=21, integer=integer)
    if shuffled:
        order = torch.randperm(len(owner), generator=torch.Generator().manual_seed(22))
        text, owner = text[order], owner[order]
    expected = _naive_metrics(audio, text, owner, relevant, rows)
    got = retrieval_metrics(audio, text, owner, relevant=relevant, query_rows=rows, chunk_size=13)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key
    full = _naive_rank_matrix(text, audio)
    assert torch.equal(text_to_audio_ranks(text, audio, owner, chunk_size=13),
                       full[torch.arange(len(owner)), owner])
    by_clip = _naive_rank_matrix(audio, text)
    expected_a2t = torch.stack([by_clip[j, owner == j].min() for j in range(audio.shape[0])])
    assert torch.equal(audio_to_text_ranks(audio, text, owner, chunk_size=13), expected_a2t)


def test_matches_official_topk_recall_and_map():
    audio, text, owner, _, _ = _random_eval(50, 5, 16, seed=6)
    top10 = (text @ audio.T).topk(10, dim=1).indices
    hits = top10 == owner[:, None]
    official_map = torch.where(hits.any(1), 1.0 / (hits.double().argmax(1) + 1.0), 0.0).mean().item()
    got = retrieval_metrics(audio, text, owner)
    assert got["t2a/R@1"] == pytest.approx(hits[:, :1].double().sum(1).mean().item())
    assert got["t2a/R@5"] == pytest.approx(hits[:, :5].double().sum(1).mean().item())
    assert got["t2a/R@10"] == pytest.approx(hits.double().sum(1).mean().item())
    assert got["t2a/mAP@10"] == pytest.approx(official_map)


@pytest.mark.parametrize("integer", [True, False])
def test_audio_to_text_recomputes_clips_whose_own_score_does_not_reproduce(integer):
    """Nudging some own scores up mimics a block product that is not bit-identical on the second pass."""
    from lasr.metrics.retrieval import _a2t_ranks

    audio, text, owner, _, _ = _random_eval(30, 4, 8, seed=8, integer=integer)
    expected = audio_to_text_ranks(audio, text, owner)
    own_scores = (text * audio[owner]).sum(1)
    nudged = own_scores.clone()
    nudged[::3] += 1e-3
    assert torch.equal(_a2t_ranks(audio, text, owner, nudged, rows=7), expected)
    assert torch.equal(_a2t_ranks(audio, text, owner, own_scores + 1e-3, rows=64), expected)


def test_all_metrics_come_from_one_pass_over_the_blocks(monkeypatch):
    """text->audio, audio->text and the multi-relevance pairs share one pass of (chunk, N) products."""
    import lasr.metrics.retrieval as retrieval

    audio, text, owner, relevant, rows = _random_eval(40, 3, 8, seed=11)
    expected = _naive_metrics(audio, text, owner, relevant, rows)
    passes = []
    real_blocks = retrieval._score_blocks

    def counting_blocks(queries, items, block_rows):
        passes.append((queries.shape[0], items.shape[0]))
        yield from real_blocks(queries, items, block_rows)

    monkeypatch.setattr(retrieval, "_score_blocks", counting_blocks)
    got = retrieval_metrics(audio, text, owner, relevant=relevant, query_rows=rows, chunk_size=16)
    caption_passes = [shape for shape in passes if shape == (text.shape[0], audio.shape[0])]
    assert caption_passes == [(text.shape[0], audio.shape[0])]  # (any others redo a few clips directly)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("integer", [True, False])
def test_one_pass_recomputes_clips_whose_own_score_does_not_reproduce(monkeypatch, integer):
    """Own scores that differ from the pass's (another BLAS, a GPU) fall back to the direct ranks, exactly."""
    import lasr.metrics.retrieval as retrieval

    audio, text, owner, relevant, rows = _random_eval(30, 4, 8, seed=12, integer=integer)
    expected = retrieval_metrics(audio, text, owner, relevant=relevant, query_rows=rows, chunk_size=7)
    real_own = retrieval._own_scores

    def nudged_own(*args):
        own = real_own(*args)
        own[::3] += 1e-3
        return own

    monkeypatch.setattr(retrieval, "_own_scores", nudged_own)
    assert retrieval_metrics(audio, text, owner, relevant=relevant, query_rows=rows, chunk_size=7) == expected


def test_own_scores_equal_the_scores_of_the_full_blocks():
    """The pre-pass (each block against its own clips only) gives the bits of the full blocks on this BLAS;
    where it would not, the metric stays exact through the fallback above, only slower."""
    from lasr.metrics.retrieval import _own_scores

    audio, text, owner, _, _ = _random_eval(300, 5, 64, seed=13)
    audio, text = audio.float(), text.float()
    full = torch.cat([text[start : start + 128] @ audio.T for start in range(0, text.shape[0], 128)])
    assert torch.equal(_own_scores(text, audio, owner, 128), full.gather(1, owner[:, None]).squeeze(1))


def test_metric_keys_are_exact():
    audio, text, owner, relevant, rows = _random_eval(12, 2, 4, seed=7)
    assert list(retrieval_metrics(audio, text, owner)) == [
        "t2a/R@1", "t2a/R@5", "t2a/R@10", "t2a/mAP@10", "a2t/R@1", "a2t/R@5", "a2t/R@10",
    ]  # fmt: skip
    with_multi = retrieval_metrics(audio, text, owner, relevant=relevant, query_rows=rows)
    assert list(with_multi)[-2:] == ["t2a_multi/mAP@16", "t2a_multi/mAP@10"]
    assert all(0.0 <= value <= 1.0 for value in with_multi.values())


# --------------------------------------------------------------------------- relevance file


def _write_csv(path, rows, header=("query", "audio_filenames")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_relevance_csv_keeps_names_verbatim(tmp_path):
    path = _write_csv(
        tmp_path / "metadata_eval.csv",
        [
            ["Water drips, slowly.", "['d&#39;eau.wav', 'rain.wav']"],
            ['A man says "hello" twice', "['hello.wav']"],
        ],
    )
    table = load_relevance_csv(path)
    assert table == {"Water drips, slowly.": ["d&#39;eau.wav", "rain.wav"], 'A man says "hello" twice': ["hello.wav"]}


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([["q1", "['a.wav']"], ["q2", "['b.wav'"]], r"row 3: audio_filenames is not a Python list literal"),
        ([["q1", "['a.wav']"], ["q2", "[1, 2]"]], r"row 3: audio_filenames must be a list of file names"),
        ([["q1", "[]"]], r"row 2: audio_filenames is empty"),
        ([["q1", "['a.wav']"], ["q1", "['b.wav']"]], r"row 3: query 'q1' repeats line 2"),
        ([["q1"]], r"row 2: row has fewer fields"),
    ],
)
def test_relevance_csv_bad_rows_name_file_and_row(tmp_path, rows, match):
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError, match=match) as error:
        load_relevance_csv(path)
    assert str(path) in str(error.value)


def test_relevance_csv_wrong_columns_and_missing_file(tmp_path):
    path = _write_csv(tmp_path / "cols.csv", [["q", "['a.wav']"]], header=("caption", "files"))
    with pytest.raises(DataError, match="expected columns"):
        load_relevance_csv(path)
    with pytest.raises(DataError, match="not found"):
        load_relevance_csv(tmp_path / "absent.csv")


def test_resolve_relevance_takes_first_match():
    table = {"a dog barks": ["dog.wav", "d&#39;eau.wav"], "rain falls": ["rain.wav"]}
    captions = ["rain falls", "a dog barks", "wind", "a dog barks"]
    audio_names = ["rain.wav", "d&#39;eau.wav", "dog.wav", "dog.wav"]
    query_rows, relevant = resolve_relevance(table, captions, audio_names, "meta.csv")
    assert query_rows == [1, 0]
    assert relevant == [[2, 1], [0]]


def test_resolve_relevance_names_missing_queries_and_audio():
    table = {"a dog barks": ["dog.wav", "cat.wav"], "unknown query": ["rain.wav"], "x": ["owl.wav"]}
    with pytest.raises(DataError) as error:
        resolve_relevance(table, ["a dog barks", "x"], ["dog.wav", "rain.wav"], "meta.csv")
    message = str(error.value)
    assert message.startswith("meta.csv: ")
    assert "1 of 3 queries" in message and "unknown query" in message
    assert "2 audio names" in message and "cat.wav" in message and "owl.wav" in message


# --------------------------------------------------------------------------- accumulation


def test_retrieval_embeddings_dedups_and_sorts():
    metric = RetrievalEmbeddings()
    dim = 4
    audio = torch.arange(4 * dim, dtype=torch.float64).reshape(4, dim)
    # step 1: clips 7 and 2, captions out of order
    metric.update(
        audio[:2], torch.tensor([7, 2]), audio[[0, 1, 1]] + 0.5, torch.tensor([7, 2, 2]), torch.tensor([0, 1, 0])
    )
    # step 2: clip 5 and a padded repeat of clip 7 with different values (must be dropped)
    metric.update(
        torch.stack([audio[2], audio[3]]).half(),
        torch.tensor([5, 7]),
        torch.stack([audio[2], audio[3], audio[3]]) + 0.25,
        torch.tensor([5, 7, 7]),
        torch.tensor([0, 0, 1]),
    )
    out = metric.compute()
    assert out["clip_index"].tolist() == [2, 5, 7]
    assert out["audio_emb"].dtype == torch.float32 and out["text_emb"].dtype == torch.float32
    assert torch.equal(out["audio_emb"], audio[[1, 2, 0]].float())  # clip 7 keeps its first embedding
    assert out["text_clip_index"].tolist() == [2, 2, 5, 7, 7]
    assert out["text_slot"].tolist() == [0, 1, 0, 0, 1]
    assert out["text_owner"].tolist() == [0, 0, 1, 2, 2]
    assert torch.equal(out["text_emb"][3], audio[0].float() + 0.5)  # first (clip 7, slot 0) kept
    assert torch.equal(out["text_emb"][4], audio[3].float() + 0.25)
    metrics = retrieval_metrics(out["audio_emb"], out["text_emb"], out["text_owner"])
    assert set(metrics) >= {"t2a/R@1", "a2t/R@10"}
    metric.reset()
    with pytest.raises(ValueError, match="before any update"), pytest.warns(UserWarning, match="before the ``update``"):
        metric.compute()


def test_retrieval_embeddings_rejects_bad_shapes_and_orphan_captions():
    metric = RetrievalEmbeddings()
    with pytest.raises(ValueError, match="clip_index must be an integer tensor of shape"):
        metric.update(torch.zeros(2, 3), torch.tensor([0]), torch.zeros(1, 3), torch.tensor([0]), torch.tensor([0]))
    metric.update(torch.zeros(1, 3), torch.tensor([0]), torch.zeros(1, 3), torch.tensor([4]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"captions of clips \[4\] have no audio embedding"):
        metric.compute()


def test_recall_is_a_fraction():
    assert math.isclose(recall_at_k(torch.tensor([0, 3, 9, 10]), 10), 0.75)


# --------------------------------------------------------------------------- two ranks (gloo, CPU)

_DDP_CLIPS_PER_RANK = {0: [[0, 2], [4, 5]], 1: [[3, 1, 0]]}  # rank 1 ends with a padded repeat of clip 0


def _ddp_updates(metric: RetrievalEmbeddings, batches: list[list[int]]) -> None:
    """Clip c has (c % 3) + 1 captions, so ranks hold different numbers of rows."""
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(6, 8, generator=generator)
    text = torch.randn(6, 3, 8, generator=generator)
    for clips in batches:
        caption_clip = [c for c in clips for _ in range(c % 3 + 1)]
        caption_slot = [s for c in clips for s in range(c % 3 + 1)]
        metric.update(audio[clips], torch.tensor(clips), text[caption_clip, caption_slot],
                      torch.tensor(caption_clip), torch.tensor(caption_slot))  # fmt: skip


def _ddp_worker(rank: int, init_file: str, out_dir: str) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        metric = RetrievalEmbeddings()
        _ddp_updates(metric, _DDP_CLIPS_PER_RANK[rank])
        torch.save(metric.compute(), f"{out_dir}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_retrieval_embeddings_gathers_uneven_ranks(tmp_path):
    torch.multiprocessing.spawn(_ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    single = RetrievalEmbeddings()
    _ddp_updates(single, _DDP_CLIPS_PER_RANK[1] + _DDP_CLIPS_PER_RANK[0])
    expected = single.compute()
    assert expected["clip_index"].tolist() == [0, 1, 2, 3, 4, 5]
    for rank in (0, 1):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got.keys() == expected.keys()
        for key in expected:
            assert torch.equal(got[key], expected[key]), (rank, key)
