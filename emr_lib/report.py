"""What the notebooks share: parameters, cached runs, figures and tables with provenance.

A notebook starts with::

    ctx = report.notebook_context("03_training", profile=profile, data=data, device=device,
                                  seed=seed, output_dir=output_dir, figures_dir=figures_dir)

and then trains through ``ctx.run(...)`` (a run already in the output folder with the same
settings is reused, so notebooks can build on each other's results or run what they
need themselves), and saves through ``ctx.save_figure`` / ``ctx.save_table``, which
record the profile, data, notebook and commit of every file in
``figures/<profile>/manifest.json``; :func:`write_figures_index` turns those manifests
into ``figures/README.md``.

Where data lives when none is given (``data="auto"``): ``data/bijie`` in the project
(Bijie's official layout or a prepared ``images/`` + ``masks/`` folder), else the
synthetic default; the UAV scene for notebook 07 in ``data/uav-scene`` (``image.png``
and ``mask.png``). ``EMR_DATA`` and ``EMR_SCENE`` point elsewhere.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from .profiles import TrainConfig, get_config
from .provenance import git_commit

__all__ = [
    "project_root",
    "resolve_data",
    "resolve_scene",
    "Context",
    "notebook_context",
    "write_figures_index",
    "read_manifest",
    "interactive",
    "headless",
    "seed_summary",
]


def project_root(start: str | Path | None = None) -> Path:
    """The checkout holding this kit's ``pyproject.toml`` (searched upwards), else the working directory."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and 'name = "emr-hrnet-kit"' in pyproject.read_text():
            return folder
    return here


def resolve_data(data: str | None = "auto", root: Path | None = None) -> str:
    """``"auto"``: ``data/bijie`` in the project if present, else ``"synthetic"``; a path must exist."""
    root = root or project_root()
    if data in (None, "", "auto"):
        documented = root / "data" / "bijie"
        if (documented / "landslide" / "image").is_dir() or (documented / "images").is_dir():
            return str(documented)
        return "synthetic"
    if data == "synthetic":
        return data
    path = Path(data).expanduser()
    if not path.is_absolute():
        path = (root / path) if (root / path).exists() else path.resolve()
    if not path.exists():
        raise FileNotFoundError(f"data folder not found: {path}. See data/README.md, or use data='synthetic'.")
    return str(path)


def resolve_scene(scene: str | None = "auto", root: Path | None = None) -> Path | None:
    """The large UAV scene folder (``image.png`` + ``mask.png``), or None when there is none.

    ``"auto"`` means ``$EMR_SCENE``, else ``data/uav-scene`` if it is there. A scene that is
    named (argument or ``$EMR_SCENE``) but unusable is an error, not a quiet synthetic stand-in.
    """

    def usable(folder: Path) -> bool:
        return (folder / "image.png").is_file() and (folder / "mask.png").is_file()

    root = root or project_root()
    if scene in (None, "", "auto"):
        scene = os.environ.get("EMR_SCENE")
        if not scene:
            default = root / "data" / "uav-scene"
            return default if usable(default) else None
    folder = Path(scene).expanduser()
    if not usable(folder):
        raise FileNotFoundError(
            f"UAV scene {folder}: expected image.png and mask.png in that folder "
            "(see data/README.md; name the scene with --scene or EMR_SCENE)"
        )
    return folder


def headless() -> bool:
    """True when executed by the pipeline or tests (papermill, nbval): no live widgets then."""
    return os.environ.get("EMR_HEADLESS", "0") == "1"


@dataclass
class Context:
    notebook: str
    profile: str
    data: str
    device: str
    seed: int
    output_dir: Path
    figures_dir: Path

    @property
    def data_label(self) -> str:
        return "synthetic default" if self.data == "synthetic" else Path(self.data).name

    def provenance_text(self) -> str:
        seed = f" | seed {self.seed}" if self.seed else ""
        return f"{self.notebook} | profile {self.profile} | data {self.data_label}{seed} | commit {git_commit()}"

    def config(self, model: str = "emr_hrnet", options: dict | None = None, **overrides) -> TrainConfig:
        """The profile's training configuration for ``model`` on this notebook's data.

        ``options`` are merged into the profile's model options (``{"rma": False}`` keeps the
        profile's width); other keywords override configuration fields.
        """
        overrides = {"data": self.data, "seed": self.seed, "device": self.device, **overrides}
        config = get_config(self.profile, model=model, **overrides)
        config.model_options = {**config.model_options, **(options or {})}
        return config

    def run_dir(self, name: str) -> Path:
        """Where run ``name`` lives: ``output_dir/<profile>/<name>``, and ``<name>-seed<N>`` for
        a seed other than 0, so that the runs of several seeds sit side by side."""
        return self.output_dir / self.profile / (f"{name}-seed{self.seed}" if self.seed else name)

    def run(
        self, name: str, model: str = "emr_hrnet", options: dict | None = None, progress: bool = True, **overrides
    ) -> dict:
        """Train (or reuse) run ``name`` and return its record.

        A finished run in :meth:`run_dir` with the same configuration is reused; an
        interrupted one (stopped, or killed mid-epoch) is resumed from its ``last.pt``. A run
        with another configuration (other data or profile settings, say) is never deleted: it
        is moved aside to ``<folder>.replaced-<time>`` before this one trains from scratch.
        """
        from .train import load_checkpoint, train

        config = self.config(model, options, **overrides)

        def as_stored(settings: dict | None) -> dict | None:  # as JSON stores it: tuples become lists
            return json.loads(json.dumps(settings))

        wanted = as_stored(config.to_dict())
        out = self.run_dir(name)
        record_path, last_path = out / "record.json", out / "last.pt"
        if record_path.is_file():
            record = json.loads(record_path.read_text())
            if record.get("status") == "finished" and record.get("config") == wanted:
                print(f"reusing {out} (test mIoU {100 * record['test_metrics']['mIoU']:.2f})")
                return record
        # last.pt is written after every epoch, record.json only when a run ends, so a
        # killed run has only last.pt; its configuration says whether to resume it
        resume = last_path.is_file() and as_stored(load_checkpoint(last_path).get("config")) == wanted
        if not resume and out.is_dir() and any(out.iterdir()):
            kept = out.with_name(f"{out.name}.replaced-{_dt.datetime.now():%Y%m%d-%H%M%S}")
            out.rename(kept)
            print(f"{out} held a run with another configuration; it is kept in {kept}")
        return train(config, out, resume=resume, progress=progress and not headless())

    def seed_records(self, name: str) -> dict[int, dict]:
        """Finished records of run ``name`` for every seed in the output folder, by seed.

        Only runs whose settings, the seed aside, match this notebook's run of ``name`` count
        (it must have finished), so a summary never mixes in runs of other settings.
        """

        def settings(record: dict) -> dict:
            return {k: v for k, v in record["config"].items() if k != "seed"}

        own = settings(json.loads((self.run_dir(name) / "record.json").read_text()))
        found = {}
        for path in (self.output_dir / self.profile).glob(f"{name}*/record.json"):
            record = json.loads(path.read_text())
            same_run = re.fullmatch(rf"{re.escape(name)}(-seed\d+)?", path.parent.name)
            if same_run and record.get("status") == "finished" and settings(record) == own:
                found[record["seed"]] = record
        return dict(sorted(found.items()))

    def _register(self, name: str, files: list[Path], kind: str, caption: str) -> None:
        manifest_path = self.figures_dir / "manifest.json"
        manifest = read_manifest(manifest_path)
        # keyed by file, not by name: a table and its plot often share a name (05_table4)
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

    def save_figure(self, fig, name: str, caption: str = "") -> Path:
        """Save ``fig`` as ``figures/<profile>/<name>.png`` with a provenance caption."""
        from .viz import save_figure

        path = save_figure(fig, self.figures_dir / f"{name}.png", self.provenance_text())
        self._register(name, [path], "figure", caption)
        return path

    def save_table(
        self, rows: list[dict], name: str, columns: list[str] | None = None, caption: str = "", floatfmt: str = ".2f"
    ) -> str:
        """Save ``rows`` as markdown and CSV beside the figures; return the markdown."""
        import csv

        from .efficiency import table_markdown

        columns = columns or list(rows[0])
        markdown = table_markdown(rows, columns, floatfmt)
        md_path = self.figures_dir / f"{name}.md"
        md_path.write_text(
            f"{caption}\n\n{markdown}\n\n_{self.provenance_text()}_\n"
            if caption
            else f"{markdown}\n\n_{self.provenance_text()}_\n"
        )
        csv_path = self.figures_dir / f"{name}.csv"
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
        self._register(name, [md_path, csv_path], "table", caption)
        return markdown


def seed_summary(records: dict[str, dict[int, dict]], key: str = "mIoU", label: str = "configuration") -> list[dict]:
    """Mean, standard deviation and range (percent) of test ``key`` over seeds, one row per entry.

    ``records`` maps a row label to its records by seed (:meth:`Context.seed_records`).
    """
    rows = []
    for row, by_seed in records.items():
        values = [100 * record["test_metrics"][key] for record in by_seed.values()]
        rows.append(
            {
                label: row,
                "seeds": ", ".join(map(str, by_seed)),
                f"{key}_mean": statistics.fmean(values),
                f"{key}_sd": statistics.stdev(values) if len(values) > 1 else float("nan"),
                f"{key}_min": min(values),
                f"{key}_max": max(values),
            }
        )
    return rows


def notebook_context(
    notebook: str,
    profile: str = "quick",
    data: str | None = "auto",
    device: str = "auto",
    seed: int = 0,
    output_dir: str | None = None,
    figures_dir: str | None = None,
) -> Context:
    """Resolve a notebook's parameters into folders and data; print what it will use."""
    root = project_root()
    output = Path(output_dir).expanduser() if output_dir else root / "runs" / "notebooks"
    figures = Path(figures_dir).expanduser() if figures_dir else root / "figures" / profile
    output = output if output.is_absolute() else root / output
    figures = figures if figures.is_absolute() else root / figures
    output.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    ctx = Context(notebook, profile, resolve_data(data, root), device, int(seed), output, figures)
    print(f"profile {profile} | data {ctx.data_label} | runs in {output} | figures in {figures}")
    return ctx


def read_manifest(path: Path) -> dict[str, dict]:
    """A figures folder's ``manifest.json``: one entry per figure or table, keyed by its first file.

    Manifests written before entries were keyed by file (keyed by name, where a table and a
    figure of the same name overwrote each other) are read with the new keys.
    """
    if not path.is_file():
        return {}
    return {entry["files"][0]: entry for entry in json.loads(path.read_text()).values()}


SCRATCH_PROFILES = ("quick",)  # their figures are ignored by git and indexed in their own folder


def write_figures_index(figures_root: str | Path, profile: str | None = None) -> Path:
    """The index of figures and tables with the notebook, profile, data and commit behind each.

    ``figures/README.md`` covers the committed profiles (workshop, paper); a scratch profile
    (quick, ignored by git) gets its own ``figures/quick/README.md`` so a smoke run never
    edits the committed index.
    """
    figures_root = Path(figures_root)
    if profile in SCRATCH_PROFILES:
        profiles, path, prefix = [profile], figures_root / profile / "README.md", ""
    else:
        profiles = sorted(
            p.parent.name for p in figures_root.glob("*/manifest.json") if p.parent.name not in SCRATCH_PROFILES
        )
        path, prefix = figures_root / "README.md", None
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
    path.write_text("\n".join(lines) + "\n")
    return path


def interactive(draw, **controls) -> None:
    """Draw ``draw(**defaults)`` as a static figure, then, in a live notebook, add widgets.

    ``controls`` map a keyword of ``draw`` to ``(default, widget_spec)`` where the spec is
    what ``ipywidgets.interact`` accepts (a tuple range, a list of options...). Executed
    headless (pipeline, tests), only the static figure is made.
    """
    import matplotlib.pyplot as plt

    defaults = {key: value[0] for key, value in controls.items()}
    draw(**defaults)
    plt.show()
    if headless():
        return
    try:
        import ipywidgets
    except ImportError:  # the notebooks extra is not installed: the static figure stays
        return
    specs = {key: value[1] for key, value in controls.items()}
    ipywidgets.interact(lambda **kw: (draw(**kw), plt.show()), **specs)
