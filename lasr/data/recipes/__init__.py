"""Corpus recipes: turn an official corpus layout into validated manifests (one ``prepare_<corpus>`` each).

Each function returns ``(records per manifest, PrepareReport)`` and, given ``out_dir``, writes the manifests
atomically. All problems in the input are collected and raised together as one
:class:`~lasr.data.recipes.common.DataProblems` (a :class:`~lasr.errors.DataError`).
"""

from lasr.data.recipes.audiocaps import prepare_audiocaps
from lasr.data.recipes.clotho import prepare_clotho
from lasr.data.recipes.common import DataProblems, PrepareReport, prepare_captioned_csv
from lasr.data.recipes.esc50 import prepare_esc50
from lasr.data.recipes.wavcaps import prepare_wavcaps, read_exclusion_list

__all__ = [
    "DataProblems",
    "PrepareReport",
    "prepare_audiocaps",
    "prepare_captioned_csv",
    "prepare_clotho",
    "prepare_esc50",
    "prepare_wavcaps",
    "read_exclusion_list",
]
