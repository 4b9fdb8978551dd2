import csv
import json

import pytest
import torch
import torch.nn.functional as F

from lasr.cli import main
from lasr.models.embedding import embed_clips, embed_texts
from lasr.distill.ensemble import Member, ensemble_scores, weighted_concat, write_submission, write_topk
from lasr.metrics.retrieval import retrieval_metrics, text_to_audio_ranks
from lasr.models.run_config import load_dual_encoder

from .tiny import make_checkpoint


def _unit(n, d, seed):
    return F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_concatenated_embeddings_score_the_weighted_mean_similarity():
    audio = [_unit(7, 4, 1), _unit(7, 6, 2), _unit(7, 3, 3)]
    text = [_unit(9, 4, 4), _unit(9, 6, 5), _unit(9, 3, 6)]
    weights = [1.0, 2.0, 0.5]
    mean = sum(w * t @ a.T for w, t, a in zip(weights, text, audio)) / sum(weights)
    torch.testing.assert_close(weighted_concat(text, weights) @ weighted_concat(audio, weights).T, mean)
    members = [Member(str(i), a, t, t) for i, (a, t) in enumerate(zip(audio, text))]
    torch.testing.assert_close(ensemble_scores(members, weights), mean)
    # metrics computed on the concatenation rank exactly like the averaged similarity matrix
    owners = torch.arange(9) % 7
    ranks = text_to_audio_ranks(weighted_concat(text, weights), weighted_concat(audio, weights), owners)
    by_matrix = (mean > mean.gather(1, owners[:, None])).sum(1)
    assert torch.equal(ranks, by_matrix)


def test_submission_and_topk_files(tmp_path):
    scores = torch.tensor([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3]])
    names = ["b.wav", "a, comma.wav", "c.wav"]
    write_submission(tmp_path / "s.csv", ["q one", "q two"], names, scores)
    write_topk(tmp_path / "t.csv", ["q one", "q two"], names, scores, k=2)
    rows = list(csv.reader(open(tmp_path / "s.csv", newline="")))
    assert rows[0] == ["index", *names] and rows[1][0] == "q one"
    assert [float(x) for x in rows[2][1:]] == scores[1].tolist()  # full precision: float32 values round-trip
    top = list(csv.reader(open(tmp_path / "t.csv", newline="")))
    assert top[0] == ["query", "fname_1", "fname_2"]
    assert top[1] == ["q one", "a, comma.wav", "c.wav"] and top[2] == ["q two", "b.wav", "c.wav"]


def test_submission_is_byte_identical_to_the_baselines_pandas_output(tmp_path):
    pd = pytest.importorskip("pandas")  # installed with bertopic

    torch.manual_seed(0)
    scores = torch.randn(3, 4) / 7
    names = ["b.wav", "a, comma.wav", "d&#39;eau.wav", "c.wav"]
    queries = ["A train coming down the track with cars passing by on the side of it, ", "q, two", 'say "hi"']
    write_submission(tmp_path / "s.csv", queries, names, scores)
    # what d25_t6/predict.py does: one column per audio basename, 'index' = the queries, DataFrame.to_csv
    similarities = {name: [scores[q, a].item() for q in range(len(queries))] for a, name in enumerate(names)}
    similarities["index"] = queries
    pd.DataFrame.from_dict(similarities).set_index("index").to_csv(tmp_path / "baseline.csv")
    assert (tmp_path / "s.csv").read_bytes() == (tmp_path / "baseline.csv").read_bytes()


def test_cli_scores_members_and_their_ensemble(demo_corpus, tmp_path, capsys):
    ckpts = [make_checkpoint(tmp_path / f"m{i}" / "last.ckpt", seed=i, embed_dim=8 + 8 * i) for i in range(2)]
    manifest = demo_corpus / "manifests" / "clotho_evaluation.jsonl.gz"
    relevance = demo_corpus / "clotho" / "metadata_eval.csv"
    code = main(["ensemble", "--ckpt", *map(str, ckpts), "--data", str(manifest), "--relevance", str(relevance),
                 "--out", str(tmp_path / "out"), "--top-k", "5", "--device", "cpu"])
    assert code == 0
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert list(result["metrics"]) == ["m0-last", "m1-last", "ensemble"]
    assert "t2a_multi/mAP@16" in result["metrics"]["ensemble"]
    assert "ensemble" in capsys.readouterr().out
    # a member's column is the plain evaluation of that checkpoint
    from lasr.data.manifest import read_manifest

    records = read_manifest(manifest)
    model = load_dual_encoder(ckpts[0]).model
    audio, text = embed_clips(model, records, 8.0), embed_texts(model, [c for r in records for c in r.captions])
    owners = torch.tensor([i for i, r in enumerate(records) for _ in r.captions])
    direct = retrieval_metrics(audio, text, owners)
    assert result["metrics"]["m0-last"]["t2a/R@5"] == pytest.approx(direct["t2a/R@5"])
    rows = list(csv.reader(open(tmp_path / "out" / "submission.csv", newline="")))
    assert len(rows) == 1 + result["n_queries"] and len(rows[0]) == 1 + len(records)
    assert len(next(csv.reader(open(tmp_path / "out" / "topk.csv")))) == 6


def test_bad_weights_are_rejected(demo_corpus, tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "m" / "last.ckpt")
    code = main(["ensemble", "--ckpt", str(ckpt), "--data", str(demo_corpus / "manifests" / "clotho_evaluation.jsonl.gz"),
                 "--out", str(tmp_path / "o"), "--weights", "1", "2"])
    assert code == 2 and "--weights" in capsys.readouterr().err


@pytest.mark.parametrize("tool", ["ensemble", "teachers"])
def test_members_with_identical_weights_are_refused(demo_corpus, tmp_path, capsys, tool):
    """One model saved twice (e.g. best and last of a run whose best epoch is the last) is not an ensemble."""
    same = [make_checkpoint(tmp_path / name / "last.ckpt", seed=3) for name in ("a", "b")]
    other = make_checkpoint(tmp_path / "c" / "last.ckpt", seed=4)
    manifest = str(demo_corpus / "manifests" / "clotho_evaluation.jsonl.gz")
    code = main([tool, "--ckpt", *map(str, [*same, other]), "--data", manifest, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "identical weights" in err and f"{same[0]} = {same[1]}" in err and str(other) not in err
    assert not (tmp_path / "o").exists()  # refused before anything was embedded
