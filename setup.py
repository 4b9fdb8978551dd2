"""Packaging beyond pyproject.toml: the checkout's ``configs/`` folder ships inside the wheel as ``lasr/configs``
(the shipped recipes, :mod:`lasr.recipes`) without moving it in the checkout. pyproject.toml's static
``packages`` cannot add packages from another folder to the ones it finds, hence this file."""

from setuptools import find_namespace_packages, setup

RECIPES = "lasr.configs"  # configs/ and each folder in it (demo, pipeline, slurm, trainer) as data packages

setup(
    packages=[*find_namespace_packages(include=["lasr", "lasr.*"]), RECIPES,
              *(f"{RECIPES}.{name}" for name in find_namespace_packages(where="configs"))],
    package_dir={RECIPES: "configs"},
)
