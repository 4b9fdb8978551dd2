"""``lasr zeroshot``: zero-shot classification of a labelled set with template or LLM class prompts.

With a prompt file, the template baseline is evaluated on the same audio embeddings and printed too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lasr.cli.embed import add_model_arguments
from lasr.data.checks import check_output_dir, non_negative_int, positive_float, positive_int, text
from lasr.data.verify import verify_eval_records
from lasr.search.clips import DEFAULT_MAX_SECONDS
from lasr.search.embed import DEFAULT_BATCH_SIZE
from lasr.zeroshot.classify import AGGREGATES
from lasr.zeroshot.prompts import DEFAULT_TEMPLATE, TEMPLATE_MODE, read_prompt_table, sample_prompts, template_prompts

DEFAULT_N_PROMPTS = 2  # ReCLAP's best number of LLM prompts per class
TASKS = {"auto": None, "single": False, "multi": True}
MAX_LISTED_SKIPPED = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--data", type=Path, required=True,
                        help="manifest, or ESC-50 / Kitchen20 / UrbanSound8K / FSD50K folder")
    parser.add_argument("--prompts", default=TEMPLATE_MODE,
                        help="'template', or a prompt table: .jsonl lines {\"label\": ..., \"prompt\": ...}, "
                             ".csv with label,prompt columns, or a `lasr augment export` table")
    parser.add_argument("--template", type=text, default=DEFAULT_TEMPLATE, help="class template (default %(default)r)")
    parser.add_argument("--n-prompts", type=non_negative_int, default=DEFAULT_N_PROMPTS,
                        help="prompts sampled per class from the table; 0 = all (default %(default)s)")
    parser.add_argument("--aggregate", choices=AGGREGATES, default="mean",
                        help="mean of normalised prompt embeddings, or max similarity over prompts")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="prompt sampling seed (default %(default)s)")
    parser.add_argument("--task", choices=list(TASKS), default="auto",
                        help="single-label (accuracy) or multi-label (mAP); auto = multi if a clip has >1 label")
    parser.add_argument("--max-seconds", type=positive_float, default=DEFAULT_MAX_SECONDS,
                        help="seconds of each clip embedded, from its start (default %(default)s)")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, help="default %(default)s")
    parser.add_argument("--workers", type=non_negative_int, default=0, help="audio loading processes (default %(default)s)")
    parser.add_argument("--skip-missing", action="store_true", help="skip clips whose audio file is missing")
    parser.add_argument("--out", type=Path, default=Path("zeroshot_results"),
                        help="folder for results JSON/CSV, used prompts and confusion matrix (default %(default)s)")


def _prompt_sets(args: argparse.Namespace, labels: list[str]):
    runs = [("template", template_prompts(labels, args.template))]
    if args.prompts != TEMPLATE_MODE:
        table = read_prompt_table(args.prompts)
        prompts = sample_prompts(table, labels, args.n_prompts, args.seed, args.template)
        n = "all" if args.n_prompts == 0 else args.n_prompts
        runs.append((f"prompts_n{n}_{args.aggregate}_seed{args.seed}", prompts))
        if prompts.fallback:
            print(f"warning: {len(prompts.fallback)} label(s) missing from {args.prompts} use the template: "
                  f"{', '.join(prompts.fallback)}", file=sys.stderr)
    return runs


def run(args: argparse.Namespace) -> int:
    from lasr.models.checkpoints import load_retrieval_model
    from lasr.zeroshot.data import load_labelled
    from lasr.zeroshot.evaluate import class_list, embed_labelled, zero_shot
    from lasr.zeroshot.report import detail_lines, summary_line, write_outputs

    check_output_dir(args.out)
    records = load_labelled(args.data, skip_missing=args.skip_missing)
    if args.skip_missing:  # a manifest's missing files (folder layouts were already filtered when read)
        gone = [r for r in records if not Path(r.audio_path).is_file()]
        if gone:
            print(f"--skip-missing: {len(gone)} clip(s) whose audio is missing are left out, e.g. "
                  f"{gone[0].audio_path}", file=sys.stderr)
            records = [r for r in records if Path(r.audio_path).is_file()]
    verify_eval_records(records, "zero-shot")  # an evaluation set is read as listed, or not at all
    labels = class_list(records)
    runs = _prompt_sets(args, labels)
    model = load_retrieval_model(args.ckpt, args.config)
    embedded = embed_labelled(model, records, args.max_seconds, args.batch_size, args.workers)
    if embedded.skipped:
        print(f"skipped {len(embedded.skipped)} unreadable clip(s):", file=sys.stderr)
        for path, reason in embedded.skipped[:MAX_LISTED_SKIPPED]:
            print(f"  {reason}", file=sys.stderr)
    settings = {"ckpt": str(args.ckpt.absolute()), "data": str(args.data.absolute()), "prompts": args.prompts, "n_prompts": args.n_prompts,
                "aggregate": args.aggregate, "seed": args.seed, "template": args.template}
    results = []
    for name, prompts in runs:
        result = zero_shot(model, embedded, prompts, args.aggregate, TASKS[args.task])
        write_outputs(args.out, name, result, prompts, settings)
        results.append((name, result))
    name, main = results[-1]
    print("\n".join(detail_lines(main)))
    for name, result in results:
        print(summary_line(name, result))
    print(f"results in {args.out}/")
    return 0
