"""Export takes rows of one provenance (model, template version, sampling) and writes them in a stable order."""

from __future__ import annotations

import time

from lasr.augment.export import collect
from lasr.augment.prompts import Template
from lasr.augment.requests import Sampling, make_request
from lasr.augment.store import Store
from lasr.data.captions import AugmentedCaptionPolicy
from lasr.data.manifest import ClipRecord


def _put(store, sampling, order, text="{i} dogs bark in a yard"):
    template = Template.load("paraphrase")
    for i in order:
        request = make_request(kind="paraphrase", stage="paraphrase", model="m", template=template,
                               fields={"source": "a dog barks"}, sampling=sampling, sample_index=i,
                               meta={"clip_key": "d/a.wav", "slot": 0})
        store.put(request, 0, "raw", text.format(i=i), "stop", None)
        time.sleep(0.002)  # distinct update times


def test_export_keeps_the_latest_setting_and_counts_what_it_left_out(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        _put(store, Sampling(temperature=0.7), range(3), "{i} old dogs bark")
        _put(store, Sampling(temperature=0.4, top_k=50), range(2))
        rows, counts = collect(store, ["paraphrase"])
        assert [r["text"] for r in rows] == ["0 dogs bark in a yard", "1 dogs bark in a yard"]
        assert counts["older_provenance"] == 3
        everything, _ = collect(store, ["paraphrase"], all_provenances=True)
        assert len(everything) == 5


def test_same_rows_in_another_arrival_order_give_the_same_table_and_draws(tmp_path):
    tables = []
    for name, order in (("a", [0, 1, 2, 3]), ("b", [3, 1, 0, 2])):
        with Store(tmp_path / f"{name}.sqlite") as store:
            _put(store, Sampling(), order)
            tables.append(collect(store, ["paraphrase"])[0])
    assert [r["text"] for r in tables[0]] == [r["text"] for r in tables[1]]
    import json
    import numpy as np
    record = ClipRecord(id="a.wav", audio_path="x", duration=1.0, sample_rate=16000, captions=("a dog barks",),
                        dataset="d")
    draws = []
    for i, table in enumerate(tables):
        path = tmp_path / f"t{i}.jsonl"
        rows = list(reversed(table)) if i else table  # the second table file lists the variants the other way
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        policy = AugmentedCaptionPolicy(str(path), log_every=0)
        draws.append([policy.caption(record, 0, np.random.default_rng(seed)) for seed in range(20)])
    assert draws[0] == draws[1]
