"""The shipped recipes (the checkout's ``configs/``) and how a ``--config`` value finds its file.

The wheel carries ``configs/`` as ``lasr/configs/`` (setup.py maps the folder at build time); a source checkout
or an editable install reads ``configs/`` next to the ``lasr`` package.  A recipe's name is its path inside
that folder, e.g. ``stage2_distill.yaml``, ``demo/stage1_demo.yaml``, ``pipeline/beats_stage2.yaml``; the
checkout spelling ``configs/stage2_distill.yaml`` names the same recipe.

A ``--config`` value is looked up as (1) an existing file, relative to the working folder (or, for an overlay's
``config: BASE.yaml``, to the file naming it), then (2) a shipped recipe of that name.  Relative data paths
*inside* a recipe (``data/manifests/...``, ``demo_data/...``) are not touched: they resolve against the working
folder, as for any config file.
"""

from __future__ import annotations

import difflib
import importlib.resources
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from lasr.errors import LasrError

PACKAGE_DIR = "configs"  # the recipes' folder inside the installed package and in the checkout
SUFFIXES = (".yaml", ".yml", ".sbatch")  # what counts as a recipe (YAML configs, SLURM templates)
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")  # a --config value ending so is a file name, never inline YAML
BASE_KEY = "config"  # an overlay names its base in this top-level key (lasr/cli/config_overlays.py)
_CLOSE = 5  # close matches listed in an unknown-name error
_CUTOFF = 0.75  # difflib similarity of a close match (a typo or two in a name)


def recipes_dir() -> Path | None:
    """The folder of the shipped recipes: the installed package's ``lasr/configs``, else the source checkout's
    ``configs/`` (running from source or an editable install); ``None`` when neither exists."""
    packaged = importlib.resources.files("lasr").joinpath(PACKAGE_DIR)
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    import lasr

    checkout = Path(lasr.__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / PACKAGE_DIR).is_dir():  # never a stray site-packages/configs
        return checkout / PACKAGE_DIR
    return None


def recipe_names() -> list[str]:
    """Every shipped recipe's name (its POSIX path inside :func:`recipes_dir`), sorted."""
    root = recipes_dir()
    if root is None:
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.suffix in SUFFIXES)


def _recipe_key(name: str) -> str:
    """``name`` as a recipe name: POSIX separators, without ``./`` or a leading ``configs/``."""
    key = Path(os.path.normpath(name)).as_posix()
    return key[len(PACKAGE_DIR) + 1:] if key.startswith(PACKAGE_DIR + "/") else key


def find_recipe(name: str | Path) -> Path | None:
    """The shipped recipe called ``name`` (``stage2_distill.yaml``, ``demo/stage1_demo.yaml``,
    ``configs/demo/stage1_demo.yaml``), or ``None``."""
    root = recipes_dir()
    key = _recipe_key(str(name))
    if root is None or Path(key).is_absolute() or key.startswith(".."):
        return None
    path = root / key
    return path if path.is_file() else None


def close_matches(name: str) -> list[str]:
    """Shipped recipe names that look like ``name`` (by the whole name, then by the file name alone)."""
    names = recipe_names()
    key = _recipe_key(name)
    found = difflib.get_close_matches(key, names, n=_CLOSE, cutoff=_CUTOFF)
    by_file = {Path(n).name: n for n in names}
    found += [by_file[m] for m in difflib.get_close_matches(Path(key).name, list(by_file), n=_CLOSE, cutoff=_CUTOFF)]
    return list(dict.fromkeys(found))[:_CLOSE]


def unknown_config(name: str, where: str = "--config ") -> LasrError:
    """The one-line error for a config that is neither a file nor a shipped recipe (``where`` starts it)."""
    close = close_matches(name)
    hint = f"; close: {', '.join(close)}" if close else ""
    return LasrError(f"{where}{name}: no such file and no shipped recipe of that name{hint} "
                     "(`lasr recipes list` shows them)")


@dataclass(frozen=True)
class Resolved:
    """A ``--config`` value resolved: ``path`` to give the parser, ``shipped`` when it is a shipped recipe found
    by name (not by a path that exists)."""

    path: str
    shipped: bool = False

    def announcement(self, value: str) -> str:
        return f"lasr: {value}: using the shipped recipe {self.path}"


def looks_like_file(value: str) -> bool:
    """Whether a ``--config`` value names a file (jsonargparse also takes inline YAML, and ``-`` means stdin or,
    for lasr tools, the config stored in a checkpoint)."""
    return "\n" not in value and value.strip() not in ("", "-") and not value.lstrip().startswith(("{", "["))


def resolve_config(value: str | Path, relative_to: Path | None = None, where: str = "--config ") -> Resolved:
    """Find the file a ``--config`` value (or an overlay's base) means: an existing path (relative to
    ``relative_to`` when given, else the working folder) first, then a shipped recipe of that name.

    Raises:
        LasrError: a value ending in .yaml/.yml/.json that is neither (the message lists close recipe names).
    """
    text = str(value)
    if not looks_like_file(text):
        return Resolved(text)
    path = Path(text) if relative_to is None else Path(os.path.normpath(relative_to / text))
    if path.exists():
        return Resolved(str(path))
    recipe = find_recipe(text)
    if recipe is None and relative_to is not None:  # a copied overlay whose base was not copied: `../stage1_x.yaml`
        recipe = find_recipe(Path(*(p for p in Path(text).parts if p != "..")))
    if recipe is not None:
        return Resolved(str(recipe), shipped=True)
    if text.endswith(CONFIG_SUFFIXES):
        raise unknown_config(text if relative_to is None else str(path), where)
    return Resolved(str(path))


def first_comment(path: Path) -> str:
    """The first comment line of a recipe (its one-line description), without ``#``; shebangs are skipped."""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#!") or not stripped:
            continue
        return stripped.lstrip("#").strip() if stripped.startswith("#") else ""
    return ""


def list_recipes() -> list[str]:
    """One line per shipped recipe: name and description."""
    root = recipes_dir()
    if root is None:
        raise LasrError("no shipped recipes found: this lasr install has no lasr/configs folder")
    names = recipe_names()
    width = max(map(len, names), default=0)
    return [f"{name:<{width}}  {first_comment(root / name)}" for name in names]


def overlay_bases(path: Path) -> list[str]:
    """The ``config:`` bases a YAML file names (as written: relative to the file), in order."""
    if path.suffix not in (".yaml", ".yml"):
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise LasrError(f"{path}: not valid YAML ({err})") from err
    bases = data.get(BASE_KEY) if isinstance(data, dict) else None
    return [] if bases is None else [str(b) for b in (bases if isinstance(bases, list) else [bases])]


def recipe_with_bases(name: str) -> list[str]:
    """``name`` (a shipped recipe) and every shipped recipe its overlay chain needs, bases first."""
    root = recipes_dir()
    if find_recipe(name) is None or root is None:
        raise unknown_config(name, "recipe ")
    ordered: list[str] = []

    def visit(key: str) -> None:
        for base in overlay_bases(root / key):
            base_key = Path(os.path.normpath(Path(key).parent / base)).as_posix()
            if find_recipe(base_key) is None:
                raise LasrError(f"recipe {key}: {BASE_KEY}: base {base} is not a shipped recipe")
            if base_key not in ordered:
                visit(base_key)
        if key not in ordered:
            ordered.append(key)

    visit(_recipe_key(name))
    return ordered


def copy_recipe(name: str, dest: str | Path, force: bool = False) -> list[Path]:
    """Copy the shipped recipe ``name`` and the overlay bases it needs into ``dest``, keeping their layout (so
    ``config: ../stage2_distill.yaml`` still finds its base in the copy).

    Returns:
        The written files, bases first.

    Raises:
        LasrError: unknown name, or (without ``force``) any target file that exists (all are listed).
    """
    root, dest = recipes_dir(), Path(dest)
    keys = recipe_with_bases(name)
    targets = [dest / key for key in keys]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise LasrError(f"not overwriting {', '.join(existing)} (pass --force to replace)")
    for key, target in zip(keys, targets):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / key, target)
    return targets
