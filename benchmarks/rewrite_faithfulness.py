"""Faithfulness of LLM rewrites of demo captions, before and after the exact demo check.

Demo captions know their attributes (``lasr.data.demo.captions``), so :func:`lasr.augment.faithful.demo_check`
decides exactly whether a rewrite keeps every event and attribute and adds none. This script
1. draws demo caption plans (no audio needed) and has the packaged Gemma 3 270M paraphrase them
   (``--generate``, ~13 tokens/s on 2 cores: keep ``--count`` small; run with nice);
2. prints the faithful share of the filter-accepted rewrites (hand labels in ``--labels``) before and after the
   check, and the check's precision/recall against those labels.

    nice .venv/bin/python benchmarks/rewrite_faithfulness.py --generate bench_out/gemma_rewrites.json --count 36
    .venv/bin/python benchmarks/rewrite_faithfulness.py --rewrites bench_out/gemma_rewrites.json \\
        --labels benchmarks/data/gemma_rewrite_labels.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def demo_captions(count: int, seed: int = 0) -> list[dict]:
    """``count`` demo captions with their mentions (one per clip plan)."""
    from lasr.data.demo.captions import make_captions
    from lasr.data.demo.corpus import DemoSpec
    from lasr.data.demo.events import plan_clip

    rng, spec, used, out = np.random.default_rng(seed), DemoSpec(), set(), []
    for i in range(count):
        plan = plan_clip(rng, spec, f"c{i}.wav")
        caption = make_captions(plan, rng, used, count=1)[0]
        out.append({"key": f"demo/c{i}.wav", "text": caption["text"], "mentions": caption["mentions"]})
    return out


def generate(path: Path, count: int, seed: int) -> None:
    import tempfile

    from lasr.augment.backends import make_backend
    from lasr.augment.jobs import run_job
    from lasr.augment.kinds import KindConfig, plan
    from lasr.augment.requests import Sampling
    from lasr.augment.store import Store
    from lasr.data.manifest import ClipRecord

    captions = demo_captions(count, seed)
    records = [ClipRecord(id=c["key"].split("/")[1], audio_path="x", duration=5.0, sample_rate=16000,
                          captions=(c["text"],), dataset="demo") for c in captions]
    backend = make_backend("local", model="gemma3-270m", batch_size=6, prompt_style="completion")
    config = KindConfig(model=backend.model_id, sampling=Sampling(max_tokens=48), samples=1)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.sqlite") as store:
        run_job(plan("paraphrase", config, records), backend, store, max_attempts=1, progress=True)
        texts = {row.meta["clip_key"]: (row.status, row.text, row.rejection) for row in store.rows(status=None)}
    out = [{**c, "status": texts[c["key"]][0], "rewrite": texts[c["key"]][1], "rejection": texts[c["key"]][2]}
           for c in captions if c["key"] in texts]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print(f"{len(out)} rewrites -> {path}")


def evaluate(rewrites: Path, labels: Path | None) -> None:
    from lasr.augment.faithful import demo_check

    rows = [r for r in json.loads(rewrites.read_text()) if r["status"] == "accepted"]
    truth = json.loads(labels.read_text()) if labels else {}
    verdicts = [(r, demo_check(r["mentions"], r["rewrite"])) for r in rows]
    kept = [r for r, problems in verdicts if not problems]
    print(f"filter-accepted rewrites: {len(rows)}; kept by the faithfulness check: {len(kept)}")
    for r, problems in verdicts:
        print(f"  {'KEEP' if not problems else 'DROP'} {truth.get(r['key'], '?'):>8}  {r['text']!r} -> "
              f"{r['rewrite']!r} {problems or ''}")
    if truth:
        labelled = [(r, not p) for r, p in verdicts if r["key"] in truth]
        faithful = [truth[r["key"]] == "faithful" for r, _ in labelled]
        before = sum(faithful) / max(len(faithful), 1)
        after_rows = [truth[r["key"]] == "faithful" for r, keep in labelled if keep]
        after = sum(after_rows) / max(len(after_rows), 1)
        # the check as a detector of unfaithful rewrites
        tp = sum(not keep and truth[r["key"]] != "faithful" for r, keep in labelled)
        flagged = sum(not keep for _, keep in labelled)
        unfaithful = sum(truth[r["key"]] != "faithful" for r, _ in labelled)
        print(f"hand-labelled: {len(labelled)}; faithful share before the check {before:.3f}, after "
              f"{after:.3f} ({len(after_rows)} kept)")
        print(f"check (flags unfaithful): precision {tp / max(flagged, 1):.3f}, recall {tp / max(unfaithful, 1):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", type=Path, help="write Gemma rewrites of demo captions here")
    parser.add_argument("--count", type=int, default=36)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rewrites", type=Path, help="rewrites written by --generate")
    parser.add_argument("--labels", type=Path, help="JSON {clip key: faithful|unfaithful}")
    args = parser.parse_args()
    if args.generate:
        generate(args.generate, args.count, args.seed)
    if args.rewrites:
        evaluate(args.rewrites, args.labels)


if __name__ == "__main__":
    main()
