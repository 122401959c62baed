"""The notebook context: a notebook's parameters resolved into data, folders and helpers.

A notebook starts with a parameters cell of what a learner may change (``profile = None`` ...) and::

    from emr_lib.notebook import notebook_context

    ctx = notebook_context("04_training", profile=profile, data=data, seed=seed)

where each None takes its ``EMR_*`` variable or default (:data:`SETTINGS`),
and then trains through ``ctx.run(...)`` (the run-folder rule of :mod:`emr_lib.training.runs`:
a finished run with the same settings is reused, an interrupted one resumed, so
notebooks build on each other's results or run what they need themselves), reads a
run's data through ``ctx.datasets(...)``, and saves through ``ctx.save_figure`` /
``ctx.save_table`` (:mod:`emr_lib.figures`, with provenance). Data and scene defaults
follow the one rule of :mod:`emr_lib.paths`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt

from .experiments.tables import run_table
from .figures import FigureStore, Table
from .paths import project_root, resolve_data, shown_path
from .training.profiles import TrainConfig, get_config
from .training.run_data import RunDatasets, run_datasets
from .training.runs import plan_run, run_dir, run_or_reuse, seed_records
from .workshop.times import expected_minutes, run_budget_minutes

__all__ = [
    "Context",
    "RunBudgetError",
    "SETTINGS",
    "notebook_context",
    "setting",
    "comma_list",
    "interactive",
    "headless",
]


class RunBudgetError(RuntimeError):
    """A notebook would train a run expected to take longer than a workshop run may (the message names it)."""


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
    figures: FigureStore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.figures = FigureStore(Path(self.figures_dir), self.notebook, self.profile, self.data_label, self.seed)

    @property
    def data_label(self) -> str:
        names = ["synthetic default" if p == "synthetic" else Path(p).name for p in self.data.split(",")]
        return " + ".join(names)

    def provenance_text(self) -> str:
        return self.figures.provenance_text()

    def config(self, model: str = "emr_hrnet", options: dict | None = None, **overrides) -> TrainConfig:
        """The profile's training configuration for ``model`` on this notebook's data.

        ``options`` are merged into the profile's model options (``{"rma": False}`` keeps the
        profile's width); other keywords override configuration fields.
        """
        overrides = {"data": self.data, "seed": self.seed, "device": self.device, **overrides}
        config = get_config(self.profile, model=model, **overrides)
        config.model_options = {**config.model_options, **(options or {})}
        return config

    def datasets(self, model: str = "emr_hrnet", options: dict | None = None, **overrides) -> RunDatasets:
        """The data of :meth:`config`'s run: base dataset, splits, and ``.train()``, ``.val``, ``.test``."""
        return run_datasets(self.config(model, options, **overrides))

    def with_seed(self, seed: int) -> Context:
        """This notebook's context with another seed (its runs are ``<name>-seed<N>``)."""
        return dataclasses.replace(self, seed=int(seed))

    def run_dir(self, name: str) -> Path:
        """Where run ``name`` lives: ``output_dir/<profile>/<name>`` (``<name>-seed<N>`` for seed N > 0)."""
        return run_dir(self.output_dir, self.profile, name, self.seed)

    def run(
        self, name: str, model: str = "emr_hrnet", options: dict | None = None, progress: bool = True, **overrides
    ) -> dict:
        """Train (or reuse, or resume) run ``name`` and return its record (:mod:`emr_lib.training.runs`)."""
        config = self.config(model, options, **overrides)
        # one compact output: a bar over the epochs in a live notebook, the first and last lines when headless
        return run_or_reuse(config, self.run_dir(name), "auto", progress=progress and not headless(), compact=True)

    def plan(self, specs: dict) -> list[dict]:
        """What running ``specs`` (row -> :class:`~emr_lib.experiments.tables.RunSpec`) would do, touching nothing:
        per row its run, ``reuse`` / ``resume`` / ``train``, and the minutes such a run took here (run records)."""
        rows = []
        for row, spec in specs.items():
            config = self.config(spec.model, spec.options, **spec.overrides)
            action = plan_run(self.run_dir(spec.name), config, "auto", move=False).action
            minutes = expected_minutes(spec.model, self.profile, project_root(), self.data)
            rows.append(
                {"row": row, "run": spec.name, "action": "train" if action == "new" else action, "min": minutes}
            )
        return rows

    def run_table(self, specs: dict, go_on: bool | None = None) -> dict[str, dict]:
        """Run (or reuse) every spec of a table, after saying what will be trained and for how long.

        In the workshop profile a run expected to take longer than the workshop's budget
        (``run_budget_min`` in ``benchmarks/results/episode-times.json``) is refused, naming it, unless
        ``go_on`` (default: ``EMR_GO_ON=1``): no notebook trains for hours unasked.
        """
        plan = self.plan(specs)
        for step in plan:
            took = f", about {step['min']:.0f} min on the project's 2-core CPU" if step["min"] else ""
            print(f"{step['action']:>6} {step['run']}{took if step['action'] != 'reuse' else ''}")
        go_on = os.environ.get("EMR_GO_ON", "0") == "1" if go_on is None else go_on
        if self.profile == "workshop" and not go_on:
            budget = run_budget_minutes(project_root())
            long = [s for s in plan if s["action"] != "reuse" and (s["min"] or 0) > budget]
            if long:
                named = ", ".join(f"{s['run']} (about {s['min']:.0f} min)" for s in long)
                raise RunBudgetError(
                    f"{self.notebook} would train {named}: past a workshop run's {budget:.0f} min. Leave it out "
                    "(the notebook's parameters), hand out a pre-run one (workshop unpack), or set EMR_GO_ON=1 "
                    "(pipeline --go-on) to train it anyway"
                )
        return run_table(self.run, specs)

    def seed_records(self, name: str) -> dict[int, dict]:
        """Finished records of run ``name`` for every seed, whose settings but the seed match this one's."""
        reference = json.loads((self.run_dir(name) / "record.json").read_text())
        return seed_records(self.output_dir, self.profile, name, reference)

    def save_figure(self, fig, name: str, caption: str = "", data: str | None = None) -> None:
        """Save ``fig`` as ``figures/<profile>/<name>.png`` with a provenance caption; say where, in one line.

        The figure itself shows in the notebook as usual; nothing else is left as the cell's value.
        ``data`` names the data when it is not the notebook's.
        """
        path = self.figures.save_figure(fig, name, caption, data)
        print(f"saved {shown_path(path)}")

    def save_table(
        self,
        rows: list[dict],
        name: str,
        columns: list[str] | None = None,
        caption: str = "",
        floatfmt: str = ".2f",
        data: str | None = None,
    ) -> Table:
        """Save ``rows`` as markdown and CSV beside the figures; return the table, which the notebook renders.
        ``data`` names the data when it is not the notebook's."""
        return self.figures.save_table(rows, name, columns, caption, floatfmt, data)


# Every notebook parameter: (its environment variable, its default). A parameters cell sets the ones
# a learner may change to None, which takes the variable, else the default; papermill overrides them.
SETTINGS = {
    "profile": ("EMR_PROFILE", "quick"),  # quick | workshop | paper
    "data": ("EMR_DATA", "auto"),  # a dataset folder, "synthetic", or "auto" (data/bijie if present)
    "device": ("EMR_DEVICE", "auto"),  # auto (CUDA, MPS, CPU) | cpu | cuda | mps
    "seed": ("EMR_SEED", 0),
    "output_dir": ("EMR_OUTPUT", ""),  # runs folder (empty: runs/notebooks in the project)
    "figures_dir": ("EMR_FIGURES", ""),  # figures folder (empty: figures/PROFILE)
    "models": ("EMR_MODELS", "hrnet,emr_hrnet,pspnet,deeplabv3"),  # 05: the workshop's four, or "all" (7)
    "tables": ("EMR_TABLES", "4"),  # 06: the workshop's "4" (6 runs); "5" or "4,5" (3 more)
    "n_images": ("EMR_ARCH_IMAGES", 8),  # 03: test images the receptive fields average over
    "scene_tile": ("EMR_SCENE_TILE", 1024),  # 08: window size (px) on the UAV scene
    "map_scales": ("EMR_MAP_SCALES", ""),  # 09: inference scales to try, e.g. "0.05,0.1,0.2" (empty: by scene)
    "shots": ("EMR_SHOTS", ""),  # 09: labelled tiles per draw, e.g. "8,16,32" (empty: by profile)
    "transfer_seeds": ("EMR_TRANSFER_SEEDS", ""),  # 09: draws of the tiles, e.g. "0,1,2" (empty: by profile)
    "transfer_scale": ("EMR_TRANSFER_SCALE", 0.0),  # 09: scene scale of the tiles (0: by scene)
}

# On Colab nothing of the project is beside the notebook: synthetic data, and folders in /content
# (gone with the session). "workshop" takes about 15 min per model on Colab's CPU.
COLAB_SETTINGS = {"data": "synthetic", "output_dir": "emr-runs", "figures_dir": "emr-figures"}


def on_colab() -> bool:
    return "google.colab" in sys.modules


def setting(name: str, value=None):
    """Notebook parameter ``name``: ``value`` when given (the learner's or papermill's), else its ``EMR_*``
    variable (:data:`SETTINGS`), else its default (on Colab, :data:`COLAB_SETTINGS`'s); typed like the default."""
    variable, default = SETTINGS[name]
    if on_colab() and name in COLAB_SETTINGS:
        default = COLAB_SETTINGS[name]
    if value is None:
        value = os.environ.get(variable, "") or default
    return type(default)(value)


def comma_list(text: str, cast=str) -> list:
    """``"8, 16,32"`` as ``[8, 16, 32]`` (with ``cast=int``); an empty string as ``[]``."""
    return [cast(part.strip()) for part in str(text).split(",") if part.strip()]


def notebook_context(
    notebook: str,
    profile: str | None = None,
    data: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    output_dir: str | None = None,
    figures_dir: str | None = None,
) -> Context:
    """Resolve a notebook's parameters into folders and data; print what it will use.

    Each parameter left None takes its ``EMR_*`` variable, else its default (:func:`setting`), so a
    notebook's parameters cell names only what a learner may change.
    """
    root = project_root()
    profile, device, seed = setting("profile", profile), setting("device", device), setting("seed", seed)
    output_dir, figures_dir = setting("output_dir", output_dir), setting("figures_dir", figures_dir)
    output = Path(output_dir).expanduser() if output_dir else root / "runs" / "notebooks"
    figures = Path(figures_dir).expanduser() if figures_dir else root / "figures" / profile
    base = Path.cwd() if on_colab() else root  # Colab's folders lie beside the notebook
    output = output if output.is_absolute() else base / output
    figures = figures if figures.is_absolute() else base / figures
    output.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    ctx = Context(notebook, profile, resolve_data(setting("data", data), root), device, int(seed), output, figures)
    print(
        f"profile {profile} | data {ctx.data_label} | runs in {shown_path(output)} | figures in {shown_path(figures)}"
    )
    return ctx


def interactive(draw, **controls) -> None:
    """Draw ``draw(**defaults)`` as a static figure, then, in a live notebook, add widgets.

    ``controls`` map a keyword of ``draw`` to ``(default, widget_spec)`` where the spec is
    what ``ipywidgets.interact`` accepts (a tuple range, a list of options...). Executed
    headless (pipeline, tests), only the static figure is made.
    """
    defaults = {key: value[0] for key, value in controls.items()}
    draw(**defaults)
    plt.show()
    if headless():
        return
    try:
        import ipywidgets  # optional: the notebooks extra
    except ImportError:  # not installed: the static figure stays
        return
    specs = {key: value[1] for key, value in controls.items()}

    def redraw(**values) -> None:  # returns None, so the widget shows no stray value under the figure
        draw(**values)
        plt.show()

    ipywidgets.interact(redraw, **specs)
