"""`lasr embed` / `lasr search` end to end with a tiny untrained checkpoint on the demo corpus."""

from __future__ import annotations

import json

from lasr.cli import main


def test_embed_then_search_by_example_and_text(demo_corpus, tiny_checkpoints, tmp_path, capsys):
    ckpt, other_ckpt = tiny_checkpoints
    audio_dir = demo_corpus / "clotho" / "clotho_audio_evaluation"
    index = tmp_path / "index"
    assert main(["embed", "--ckpt", str(ckpt), "--audio", str(audio_dir), "--out", str(index),
                 "--shard-size", "3", "--max-seconds", "4"]) == 0
    n_clips = len(list(audio_dir.glob("*.wav")))
    assert f"{n_clips} of {n_clips} clips embedded (16-d)" in capsys.readouterr().out

    query = sorted(audio_dir.glob("*.wav"))[2]
    assert main(["search", "--index", str(index), "--audio", str(query), "--k", "3", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)[0]["results"]
    assert results[0]["id"] == query.name and abs(results[0]["score"] - 1.0) < 1e-4  # itself, cosine 1
    assert [r["rank"] for r in results] == [1, 2, 3]

    queries = tmp_path / "queries.txt"
    queries.write_text("a dog barks\n\nrain on a roof\n")
    assert main(["search", "--index", str(index), "--ckpt", str(ckpt), "--queries", str(queries), "--k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("query: ") == 2 and "rain on a roof" in out

    # an index is tied to the weights that built it
    assert main(["search", "--index", str(index), "--ckpt", str(other_ckpt), "--text", "rain"]) == 2
    assert "another model" in capsys.readouterr().err

    # embedding again into the same folder resumes (nothing left to do) and gives the same index
    assert main(["embed", "--ckpt", str(ckpt), "--audio", str(audio_dir), "--out", str(index),
                 "--shard-size", "3", "--max-seconds", "4"]) == 0
    assert f"{n_clips} of {n_clips} clips embedded" in capsys.readouterr().out


def test_embed_refuses_a_different_checkpoint_into_an_existing_index(demo_corpus, tiny_checkpoints, tmp_path, capsys):
    ckpt, other_ckpt = tiny_checkpoints
    manifest = demo_corpus / "manifests" / "clotho_evaluation.jsonl.gz"
    index = tmp_path / "index"
    assert main(["embed", "--ckpt", str(ckpt), "--audio", str(manifest), "--out", str(index),
                 "--max-seconds", "2"]) == 0
    capsys.readouterr()
    assert main(["embed", "--ckpt", str(other_ckpt), "--audio", str(manifest), "--out", str(index),
                 "--max-seconds", "2"]) == 2
    assert "model_fingerprint" in capsys.readouterr().err
    assert main(["embed", "--ckpt", str(other_ckpt), "--audio", str(manifest), "--out", str(index),
                 "--max-seconds", "2", "--overwrite"]) == 0


def test_search_reports_a_missing_index(tmp_path, capsys):
    assert main(["search", "--index", str(tmp_path / "nope"), "--text", "x"]) == 2
    assert "not an embedding index" in capsys.readouterr().err


def test_faiss_indexes_built_by_embed_answer_like_the_exact_search(demo_corpus, tiny_checkpoints, tmp_path, capsys):
    ckpt, _ = tiny_checkpoints
    audio_dir = demo_corpus / "clotho" / "clotho_audio_evaluation"
    index = tmp_path / "index"
    assert main(["embed", "--ckpt", str(ckpt), "--audio", str(audio_dir), "--out", str(index),
                 "--shard-size", "3", "--max-seconds", "4", "--faiss", "flat", "hnsw"]) == 0
    out = capsys.readouterr().out
    assert "faiss flat index" in out and "faiss hnsw index" in out
    query = sorted(audio_dir.glob("*.wav"))[1]
    answers = {}
    for engine in ("exact", "flat", "hnsw"):
        assert main(["search", "--index", str(index), "--audio", str(query), "--k", "4", "--json",
                     "--engine", engine]) == 0
        answers[engine] = [(r["id"], round(r["score"], 5)) for r in json.loads(capsys.readouterr().out)[0]["results"]]
    assert answers["flat"] == answers["exact"] == answers["hnsw"]  # 8 clips: the graph finds them all
    assert main(["search", "--index", str(index), "--text", "x", "--engine", "ivfpq"]) == 2
    assert "no faiss 'ivfpq' index here (built: flat, hnsw)" in capsys.readouterr().err
