"""Zero-shot scoring and metrics on hand-built embeddings with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from lasr.zeroshot.classify import average_precision, class_scores
from lasr.zeroshot.evaluate import evaluate_scores

E = torch.eye(4)  # unit basis vectors e0..e3


def test_accuracy_confusion_and_folds_on_known_embeddings():
    labels = ["cat", "dog", "rain"]
    prompts = E[:3]  # class c <-> e_c
    audio = torch.stack([E[0], E[1], 0.6 * E[2] + 0.8 * E[0], E[2]])  # third clip looks like a cat
    scores = class_scores(audio, prompts, torch.tensor([0, 1, 2]), 3)
    result = evaluate_scores(scores, [("cat",), ("dog",), ("rain",), ("rain",)], labels, folds=[1, 1, 2, 2])
    assert result.metric == "accuracy"
    assert result.overall == pytest.approx(0.75)
    assert result.per_class == pytest.approx({"cat": 1.0, "dog": 1.0, "rain": 0.5})
    assert result.per_fold == pytest.approx({1: 1.0, 2: 0.5}) and result.fold_mean == pytest.approx(0.75)
    assert result.confusion.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 1]]


def test_mean_and_max_aggregation_differ_where_expected():
    # class 0 has two prompts (e0, e1); class 1 one prompt close to e0. The clip is exactly e0.
    near_e0 = torch.nn.functional.normalize(0.9 * E[0] + 0.436 * E[2], dim=0)
    prompts = torch.stack([E[0], E[1], near_e0])
    owner = torch.tensor([0, 0, 1])
    clip = E[0][None]
    mean = class_scores(clip, prompts, owner, 2, "mean")
    top = class_scores(clip, prompts, owner, 2, "max")
    assert mean[0, 0] == pytest.approx(1 / math.sqrt(2), abs=1e-5)  # e0 . normalise(e0 + e1)
    assert top[0, 0] == pytest.approx(1.0)
    assert mean.argmax().item() == 1 and top.argmax().item() == 0


def test_mean_aggregation_normalises_each_prompt_first():
    prompts = torch.stack([10 * E[0], E[1]])  # a long vector must not dominate the class mean
    scores = class_scores(torch.stack([E[0], E[1]]), prompts, torch.tensor([0, 0]), 1, "mean")
    assert scores[0, 0] == pytest.approx(scores[1, 0].item())


def test_class_scores_rejects_bad_input():
    with pytest.raises(ValueError, match="aggregate"):
        class_scores(E[:1], E[:2], torch.tensor([0, 1]), 2, "median")
    with pytest.raises(ValueError, match="without prompts"):
        class_scores(E[:1], E[:2], torch.tensor([0, 0]), 2)


def test_average_precision_and_multi_label_map():
    # class 0 ranking: pos, neg, pos -> AP = (1/1 + 2/3) / 2; class 1: only positive ranked 2nd -> 1/2
    scores = torch.tensor([[0.9, 0.1], [0.8, 0.7], [0.1, 0.9]])
    relevant = torch.tensor([[True, False], [False, True], [True, False]])
    ap = average_precision(scores, relevant)
    assert ap.tolist() == pytest.approx([(1 + 2 / 3) / 2, 0.5])
    result = evaluate_scores(scores, [("a",), ("b",), ("a",)], ["a", "b"], multi_label=True)
    assert result.metric == "mAP" and result.confusion is None
    assert result.overall == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)
    assert math.isnan(average_precision(scores, torch.zeros(3, 2, dtype=torch.bool))[0])


def test_multi_label_detected_from_targets():
    scores = torch.tensor([[0.9, 0.8], [0.2, 0.7]])
    result = evaluate_scores(scores, [("a", "b"), ("b",)], ["a", "b"])
    assert result.metric == "mAP" and result.per_class == pytest.approx({"a": 1.0, "b": 1.0})
