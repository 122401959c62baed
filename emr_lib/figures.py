"""Figures and tables with provenance, and the index of them.

A :class:`FigureStore` saves into one profile's folder (``figures/<profile>/``): figures as
palette PNGs with a provenance line under them, tables as markdown (with the same line as
a footer) and CSV. Every file is recorded in the folder's ``manifest.json`` with its
caption, notebook, profile, data, commit and time; :func:`write_figures_index` turns the
manifests into ``figures/README.md``. Scratch profiles (``quick``; see
:class:`emr_lib.training.profiles.Profile`) are ignored by git and indexed in their own folder.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as _dt
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .provenance import git_commit
from .training.profiles import PROFILES
from .viz import save_figure

__all__ = ["FigureStore", "Table", "table_markdown", "read_manifest", "write_figures_index"]


def table_markdown(rows: list[dict], columns: Sequence[str] | None = None, floatfmt: str = ".2f") -> str:
    """A GitHub-flavoured markdown table of ``rows`` (missing values shown as "-")."""
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c), floatfmt) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value, floatfmt: str) -> str:
    """A table cell as text: floats with ``floatfmt``, missing values as "-" (markdown and HTML alike)."""
    if value is None:
        return "-"
    return format(value, floatfmt) if isinstance(value, float) else str(value)


@dataclass
class Table:
    """A saved table as a notebook shows it: rendered (HTML, markdown), never as a quoted string.

    ``str(table)`` is its markdown; in JupyterLab, Colab, papermill's executed copies and the
    rendered site it displays as a table.
    """

    rows: list[dict]
    columns: list[str]
    floatfmt: str = ".2f"
    caption: str = ""
    markdown: str = field(init=False)

    def __post_init__(self) -> None:
        self.markdown = table_markdown(self.rows, self.columns, self.floatfmt)

    def __str__(self) -> str:
        return self.markdown

    def __repr__(self) -> str:
        return f"<Table: {len(self.rows)} rows x {len(self.columns)} columns>"

    def _repr_markdown_(self) -> str:
        return f"{self.caption}\n\n{self.markdown}" if self.caption else self.markdown

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td>{html.escape(_cell(row.get(c), self.floatfmt))}</td>" for c in self.columns)
            + "</tr>"
            for row in self.rows
        )
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


RUN_PROVENANCE = ("seed", "commit")  # per-row columns of tables built from run records
RUN_MACHINE = "device"  # and, where the rows carry it, the machine each run trained on (its record's device)


def _runs_footer(rows: list[dict], columns: list[str]) -> str:
    """``Runs trained: seed 0 at commit abc on cpu (x86_64, 2 threads): a, b; ...`` when the rows come from
    runs, else nothing."""
    if not set(RUN_PROVENANCE) <= set(columns):
        return ""
    groups: dict[tuple, list[str]] = {}
    for row in rows:
        key = (row.get("seed"), row.get("commit"), row.get(RUN_MACHINE))
        groups.setdefault(key, []).append(str(row.get(columns[0])))
    parts = [
        f"seed {seed} at commit {commit}{f' on {machine}' if machine else ''}: {', '.join(labels)}"
        for (seed, commit, machine), labels in groups.items()
    ]
    return f"_Runs trained: {'; '.join(parts)}._\n\n"


@dataclass
class FigureStore:
    """Saves figures and tables of one notebook into ``folder`` and records their provenance."""

    folder: Path
    notebook: str
    profile: str
    data_label: str
    seed: int = 0

    def provenance_text(self) -> str:
        seed = f" | seed {self.seed}" if self.seed else ""
        return f"{self.notebook} | profile {self.profile} | data {self.data_label}{seed} | commit {git_commit()}"

    def _register(self, files: list[Path], kind: str, caption: str) -> None:
        manifest_path = self.folder / "manifest.json"
        manifest = read_manifest(manifest_path)
        # keyed by file, not by name: a table and its plot often share a name (06_table4)
        manifest[files[0].name] = {
            "files": [f.name for f in files],
            "kind": kind,
            "caption": caption,
            "notebook": self.notebook,
            "profile": self.profile,
            "data": self.data_label,
            "commit": git_commit(),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        manifest_path.write_text(json.dumps(dict(sorted(manifest.items())), indent=1))

    def save_figure(self, fig, name: str, caption: str = "", data: str | None = None) -> Path:
        """Save ``fig`` as ``<folder>/<name>.png`` with a provenance caption (``data``: data other than the store's)."""
        if data is not None:
            return dataclasses.replace(self, data_label=data).save_figure(fig, name, caption)
        path = save_figure(fig, self.folder / f"{name}.png", self.provenance_text())
        self._register([path], "figure", caption)
        return path

    def save_table(
        self,
        rows: list[dict],
        name: str,
        columns: list[str] | None = None,
        caption: str = "",
        floatfmt: str = ".2f",
        data: str | None = None,
    ) -> Table:
        """Save ``rows`` as ``<name>.md`` and ``<name>.csv``; return the :class:`Table` (a notebook renders it).

        Rows of runs carry ``seed``, ``commit`` and ``device``: the CSV keeps them as columns, the markdown
        (and the notebook) shows them once, in a footer line, to keep the table readable.
        """
        if data is not None:  # rows of other data than the store's: say so in the footer and manifest
            return dataclasses.replace(self, data_label=data).save_table(rows, name, columns, caption, floatfmt)
        columns = columns or list(rows[0])
        from_runs = set(RUN_PROVENANCE) <= set(columns)  # else a seed column is the rows' key (differences)
        shown = [c for c in columns if not (from_runs and c in (*RUN_PROVENANCE, RUN_MACHINE))]
        self.folder.mkdir(parents=True, exist_ok=True)
        table = Table(rows, shown, floatfmt, caption)
        header = f"{caption}\n\n" if caption else ""
        md_path = self.folder / f"{name}.md"
        md_path.write_text(f"{header}{table.markdown}\n\n{_runs_footer(rows, columns)}_{self.provenance_text()}_\n")
        csv_path = self.folder / f"{name}.csv"
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        self._register([md_path, csv_path], "table", caption)
        return table


def read_manifest(path: Path) -> dict[str, dict]:
    """A figures folder's ``manifest.json``: one entry per figure or table, keyed by its first file.

    Manifests written before entries were keyed by file (keyed by name, where a table and a
    figure of the same name overwrote each other) are read with the new keys.
    """
    if not path.is_file():
        return {}
    return {entry["files"][0]: entry for entry in json.loads(path.read_text()).values()}


def _is_scratch(profile: str | None) -> bool:
    return profile in PROFILES and PROFILES[profile].scratch


def write_figures_index(figures_root: str | Path, profile: str | None = None) -> Path:
    """The index of figures and tables with the notebook, profile, data and commit behind each.

    ``figures/README.md`` covers the committed profiles (workshop, paper); a scratch profile
    (quick, ignored by git) gets its own ``figures/quick/README.md`` so a smoke run never
    edits the committed index.
    """
    figures_root = Path(figures_root)
    if _is_scratch(profile):
        profiles, path, prefix = [profile], figures_root / profile / "README.md", ""
    else:
        found = (p.parent.name for p in figures_root.glob("*/manifest.json"))
        profiles, path, prefix = sorted(p for p in found if not _is_scratch(p)), figures_root / "README.md", None
    lines = [
        "# Figures and tables",
        "",
        "Regenerated by `python -m emr_lib pipeline --profile PROFILE`; do not edit by hand.",
        "Each entry says which notebook, profile, data and commit produced it.",
    ]
    for name in profiles:
        manifest_path = figures_root / name / "manifest.json"
        if not manifest_path.is_file():
            continue
        folder = f"{name}/" if prefix is None else prefix
        lines += [
            "",
            f"## Profile `{name}`",
            "",
            "| file | what | notebook | data | commit | created |",
            "|---|---|---|---|---|---|",
        ]
        for key, entry in sorted(read_manifest(manifest_path).items()):
            links = ", ".join(f"[{f}]({folder}{f})" for f in entry["files"])
            lines.append(
                f"| {links} | {entry['caption'] or key} | {entry['notebook']} | {entry['data']} | "
                f"{entry['commit']} | {entry['created']} |"
            )
    path.parent.mkdir(parents=True, exist_ok=True)  # a run whose notebooks saved nothing has no folder yet
    path.write_text("\n".join(lines) + "\n")
    return path
