"""Where things are: the project root, and the one rule for the default data and scene.

The data rule, the same for the CLI, the pipeline and the notebooks:

1. a dataset named by argument (``--data PATH``, a notebook's ``data`` parameter) is used,
   and must exist (a relative path is read from the project root when it is there,
   else from the working directory); ``synthetic`` is the embedded default;
2. otherwise (no argument, or ``auto``) ``$EMR_DATA`` when it is set;
3. otherwise ``data/bijie`` in the project, when it holds Bijie's official layout or a
   prepared ``images/`` + ``masks/`` folder (``data/README.md`` puts it there);
4. otherwise the synthetic default.

Several datasets trained as one are named together, ``A,B`` (``--data A --data B`` on the
command line); each part follows the rule, and naming one twice is an error.

The UAV scene (notebooks 01 and 08): the folder named by argument (``--scene``), else
``$EMR_SCENE``, else ``data/uav-scene`` when it holds ``image.png`` and ``mask.png``, else
none (the notebooks then use a synthetic scene). A scene that is named but unusable is an
error, never a quiet synthetic stand-in.
"""

from __future__ import annotations

import os
from pathlib import Path

from .data.datasets import is_bijie_layout
from .data.io import DataError, DataNotFoundError

__all__ = [
    "project_root",
    "resolve_data",
    "resolve_scene",
    "resolve_sichuan",
    "shown_path",
    "DEFAULT_DATA",
    "DEFAULT_SCENE",
    "DEFAULT_SICHUAN",
]

DEFAULT_DATA = Path("data") / "bijie"
DEFAULT_SCENE = Path("data") / "uav-scene"
DEFAULT_SICHUAN = Path("data") / "sichuan"  # Sichuan's scenes as `data prepare sichuan` writes them


def project_root(start: str | Path | None = None) -> Path:
    """The checkout holding this kit's ``pyproject.toml`` (searched upwards), else the working directory."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "emr-hrnet-kit"' in pyproject.read_text():
            return folder
    return here


def resolve_data(data: str | None = "auto", root: Path | None = None) -> str:
    """The dataset to use by the rule above: a folder path as a string, or ``"synthetic"``."""
    root = root or project_root()
    if data in (None, "", "auto"):
        data = os.environ.get("EMR_DATA", "") or "auto"
    if "," in data:  # several datasets, trained as one
        parts = [resolve_data(part.strip(), root) for part in data.split(",") if part.strip()]
        twice = sorted({part for part in parts if parts.count(part) > 1})
        if twice:
            raise DataError(f"--data names {twice[0]} twice; name each dataset once")
        return ",".join(parts)
    if data == "auto":
        documented = root / DEFAULT_DATA
        if is_bijie_layout(documented) or (documented / "images").is_dir():
            return str(documented)
        return "synthetic"
    if data == "synthetic":
        return data
    path = Path(data).expanduser()
    if not path.is_absolute():
        path = (root / path).resolve() if (root / path).exists() else path.resolve()
    if not path.exists():
        raise DataNotFoundError(
            f"data folder not found: {path}. Pass --data PATH (see data/README.md) or --data synthetic "
            "for the embedded default."
        )
    return str(path)


def resolve_scene(scene: str | None = "auto", root: Path | None = None) -> Path | None:
    """The large UAV scene folder (``image.png`` + ``mask.png``) by the rule above, or None."""

    def usable(folder: Path) -> bool:
        return (folder / "image.png").is_file() and (folder / "mask.png").is_file()

    root = root or project_root()
    if scene in (None, "", "auto"):
        scene = os.environ.get("EMR_SCENE")
        if not scene:
            default = root / DEFAULT_SCENE
            return default if usable(default) else None
    folder = Path(scene).expanduser()
    if not usable(folder):
        raise DataNotFoundError(
            f"UAV scene {folder}: expected image.png and mask.png in that folder "
            "(see data/README.md; name the scene with --scene or EMR_SCENE)"
        )
    return folder


def resolve_sichuan(root: Path | None = None) -> Path | None:
    """The prepared Sichuan scenes: ``$EMR_SICHUAN``, else ``data/sichuan`` when it holds them, else None."""
    root = root or project_root()
    folder = Path(os.environ.get("EMR_SICHUAN") or root / DEFAULT_SICHUAN).expanduser()
    return folder if (folder / "images").is_dir() and (folder / "manifest.json").is_file() else None


def shown_path(path: str | Path) -> str:
    """``path`` relative to the project when it lies inside, else relative to the home folder, else
    its last two parts: a notebook's outputs (and the site made from them) never show the machine's
    absolute paths."""
    path = Path(path)
    for base, prefix in ((project_root(), ""), (Path.home(), "~/")):
        try:
            return prefix + str(path.relative_to(base))
        except ValueError:
            continue
    return str(Path("...", *path.parts[-2:]))
