"""``python -m emr_lib site``: the notebook series as a rendered website, built offline.

For readers who run nothing (a learner before the day, someone deciding whether to use
the kit): the README as the home page, the executed notebooks of one profile with their
figures and tables, and the documentation in ``docs/`` (and ``REPRODUCTION.md`` once it
exists), rendered by Sphinx with MyST-NB (the Jupyter ecosystem's standard) into
``build/site/`` with ``index.html`` at its root. The site never executes a notebook (that
could train for hours): the pages show the outputs of ``python -m emr_lib pipeline --profile
PROFILE``, and an episode not executed yet gets a page that names the command that executes it.

Sphinx, MyST-NB and the theme are the ``docs`` extra (``pip install -e ".[docs]"``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from ..paths import project_root
from .pipeline import PipelineError, list_notebooks

__all__ = ["build_site", "SiteError"]

CONF = """# written by emr_lib.workshop.site; the site's source is rebuilt on every run
project = "EMR-HRNet kit"
extensions = ["myst_nb"]
nb_execution_mode = "off"  # the pipeline executed the notebooks; the site shows those outputs
nb_output_stderr = "remove"  # progress bars and warnings are not teaching material
myst_heading_anchors = 3
suppress_warnings = ["myst.xref_missing", "myst.header", "mystnb.unknown_mime_type", "misc.highlighting_failure"]
exclude_patterns = ["_build"]
html_title = "EMR-HRNet kit"
html_theme = "{theme}"
"""


class SiteError(RuntimeError):
    """The site cannot be built (missing tools or notebooks); the message says what to do."""


def _repository(root: Path) -> str:
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return project.get("urls", {}).get("Repository", "").rstrip("/")


def _relink(markdown: str, site_pages: dict[str, str], repository: str) -> str:
    """Links to pages of the site go to their page; links to other files of the checkout go to the repository."""

    def fix(match: re.Match) -> str:
        text, target = match.group(1), match.group(2)
        if re.match(r"^[a-z]+:|^#", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        if path in site_pages:
            return f"[{text}]({site_pages[path]}{'#' + anchor if anchor else ''})"
        return f"[{text}]({repository}/blob/main/{path})" if repository else text

    return re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", fix, markdown)


def _theme() -> str:
    try:
        import sphinx_book_theme  # noqa: F401  (optional: the docs extra)
    except ImportError:
        return "alabaster"  # Sphinx's own theme, always there
    return "sphinx_book_theme"


def _missing_page(notebook: Path, profile: str) -> str:
    """The page of an episode not executed for ``profile``: its title, and the command that executes it."""
    first = json.loads(notebook.read_text())["cells"][0]["source"]
    title = "".join(first).splitlines()[0].lstrip("# ") if first else notebook.stem
    return (
        f"# {title}\n\nThis episode has not been executed for the `{profile}` profile, so this site has no page "
        f"of its outputs. Execute it (it may train models: the notebook's header says how long), then build the "
        f"site again:\n\n```bash\npython -m emr_lib pipeline --profile {profile} --only {notebook.stem[:2]}\n"
        f"python -m emr_lib site --profile {profile}\n```\n"
    )


def _with_alt_text(notebook: Path, captions: dict[str, str]) -> dict:
    """The executed notebook with alt text on every figure (MyST-NB's ``mystnb.image.alt`` cell option): the
    caption of the figure the cell saved (``saved figures/.../NAME.png``, its manifest's caption), else the
    heading of the section the cell belongs to."""
    book = json.loads(notebook.read_text())
    heading = notebook.stem
    for cell in book["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.lstrip().startswith("#"):
            heading = source.lstrip().splitlines()[0].lstrip("# ").strip()
        outputs = cell.get("outputs", [])
        if cell["cell_type"] != "code" or not any("image/png" in o.get("data", {}) for o in outputs):
            continue
        text = "".join("".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream")
        saved = re.findall(r"saved \S*?([\w.-]+\.png)", text)
        alt = captions.get(saved[-1]) if saved else None
        cell["metadata"].setdefault("mystnb", {}).setdefault("image", {})["alt"] = alt or f"figure: {heading}"
    return book


def _write_source(root: Path, executed: list[Path], src: Path, profile: str = "quick") -> list[str]:
    """The site's source folder: conf.py, the home page, docs pages and executed notebooks (a page naming the
    command for each episode not executed yet)."""
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    docs = {path.name: path for path in sorted((root / "docs").glob("*.md"))}
    if (root / "REPRODUCTION.md").is_file():
        docs["REPRODUCTION.md"] = root / "REPRODUCTION.md"
    site_pages = {f"docs/{name}": name for name in docs} | {"REPRODUCTION.md": "REPRODUCTION.md"}
    site_pages |= {f"notebooks/{nb.name}": f"notebooks/{nb.name}" for nb in executed}
    repository = _repository(root)
    for name, path in docs.items():
        (src / name).write_text(_relink(path.read_text(), site_pages, repository))
    manifest = root / "figures" / profile / "manifest.json"
    entries = json.loads(manifest.read_text()) if manifest.is_file() else {}
    captions = {name: entry.get("caption", "") for name, entry in entries.items()}
    for notebook in executed:
        if notebook.is_file():
            (src / "notebooks" / notebook.name).write_text(json.dumps(_with_alt_text(notebook, captions)))
        else:  # not executed: its page says how, and links to it still land
            (src / "notebooks" / f"{notebook.stem}.md").write_text(
                _missing_page(root / "notebooks" / notebook.name, profile)
            )
    pages = [f"notebooks/{nb.stem}" for nb in executed] + [Path(name).stem for name in docs]
    toctree = "\n".join(["", "```{toctree}", ":maxdepth: 1", ":caption: Contents", "", *pages, "```", ""])
    (src / "index.md").write_text(_relink((root / "README.md").read_text(), site_pages, repository) + toctree)
    (src / "conf.py").write_text(CONF.format(theme=_theme()))
    return pages


def build_site(profile: str = "quick", root: Path | None = None, out: Path | None = None) -> Path:
    """Build the site of ``profile``'s executed notebooks into ``out`` (default ``build/site``)."""
    root = root or project_root()
    out = out or root / "build" / "site"
    try:
        import myst_nb  # noqa: F401  (optional: the docs extra)
    except ImportError as err:
        raise SiteError('the site needs Sphinx and MyST-NB: pip install -e ".[docs]"') from err
    executed_dir = root / "build" / "notebooks" / profile
    executed = [executed_dir / nb.name for nb in list_notebooks(root)]
    missing = [nb.stem[:2] for nb in executed if not nb.is_file()]
    if missing:  # never executed here: running them could train for hours
        print(
            f"episodes {', '.join(missing)} have not been executed for {profile}; their pages name the command "
            f"(python -m emr_lib pipeline --profile {profile} --only {','.join(missing)})"
        )
    pages = _write_source(root, executed, root / "build" / "site-src" / profile, profile)
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(root / "build" / "site-src" / profile), str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise PipelineError(f"sphinx failed ({result.returncode}):\n{result.stderr[-3000:]}")
    print(f"site of profile {profile}: {len(pages)} pages in {out} (open {out / 'index.html'})")
    return out / "index.html"
