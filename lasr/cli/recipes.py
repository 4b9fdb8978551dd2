"""``lasr recipes``: the shipped recipes (library: :mod:`lasr.recipes`).

``lasr recipes list`` prints each recipe's name (what ``--config`` accepts) and first comment line;
``lasr recipes copy NAME DIR`` writes an editable copy together with the overlay bases it names, keeping their
layout (``pipeline/beats_stage2.yaml`` -> ``DIR/pipeline/beats_stage2.yaml`` + ``DIR/stage2_distill.yaml`` +
``DIR/stage1_pretrain.yaml``), so ``lasr fit --config DIR/pipeline/beats_stage2.yaml`` reads only the copies.
"""

from __future__ import annotations

import argparse
import sys

from lasr.recipes import copy_recipe, find_recipe, list_recipes, recipes_dir, unknown_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="every shipped recipe: name and first comment line")
    copy = sub.add_parser("copy", help="copy a recipe and the overlay bases it needs into DIR")
    copy.add_argument("name", help="recipe name as `lasr recipes list` prints it, e.g. stage2_distill.yaml")
    copy.add_argument("dir", help="destination folder (created)")
    copy.add_argument("--force", action="store_true", help="overwrite files that exist")
    path = sub.add_parser("path", help="print the file of a recipe")
    path.add_argument("name")


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        print(f"recipes in {recipes_dir()} (use a name as --config NAME):", file=sys.stderr)
        print("\n".join(list_recipes()))
    elif args.action == "copy":
        for target in copy_recipe(args.name, args.dir, force=args.force):
            print(f"wrote {target}")
    else:
        found = find_recipe(args.name)
        if found is None:
            raise unknown_config(args.name, "recipe ")
        print(found)
    return 0
