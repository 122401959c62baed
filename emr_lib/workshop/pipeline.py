"""``python -m emr_lib pipeline``: run the notebook series with papermill, regenerate figures/.

Each notebook in ``notebooks/`` runs in order in a fresh kernel, with its working
directory set to ``notebooks/``, its parameters checked against its ``parameters`` cell
(so a typo is an error, not a silently ignored value), a progress bar over its cells
and a per-cell time limit. Executed copies go to ``build/notebooks/<profile>/`` (ignored
by git); figures and tables go to ``figures/<profile>/`` and ``figures/README.md`` is
rebuilt from their provenance records. A failing cell stops the pipeline with a
message naming the notebook and the cell.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from ..figures import write_figures_index
from ..paths import project_root, resolve_data, resolve_scene
from ..training.profiles import get_profile
from .ledger import write_ledger

__all__ = ["PipelineError", "list_notebooks", "run_pipeline", "scene_warning", "store_checked_outputs"]

CHECK_TAG = "nbval-check-output"  # the cell tag nbval reads: compare this cell's output with the stored one


def is_checked(cell) -> bool:
    """True for a code cell whose stored output nbval compares (tagged :data:`CHECK_TAG`)."""
    return cell.get("cell_type") == "code" and CHECK_TAG in cell.get("metadata", {}).get("tags", [])


class PipelineError(RuntimeError):
    """A notebook failed or the pipeline was asked for something impossible."""


def list_notebooks(root: Path | None = None) -> list[Path]:
    folder = (root or project_root()) / "notebooks"
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise PipelineError(f"no notebooks found in {folder}; run the pipeline from a checkout of the kit")
    return notebooks


def _select(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    if not only:
        return notebooks
    wanted = {item.strip().zfill(2) for part in only for item in part.split(",") if item.strip()}
    known = {nb.name[:2] for nb in notebooks}
    unknown = sorted(wanted - known)
    if unknown:
        raise PipelineError(f"--only names notebook(s) {unknown} that do not exist; choose from {sorted(known)}")
    return [nb for nb in notebooks if nb.name[:2] in wanted]


def _declared_parameters(notebook: Path) -> set[str]:
    import papermill

    declared = set(papermill.inspect_notebook(str(notebook)))
    if not declared:
        raise PipelineError(f"{notebook.name} has no cell tagged 'parameters'")
    return declared


def _parameters_for(notebooks: list[Path], common: dict, extra: dict) -> dict[Path, dict]:
    """Common parameters must exist in every notebook; an extra one goes to the notebooks that
    declare it and must be declared by at least one (so a typo is an error)."""
    declared = {nb: _declared_parameters(nb) for nb in notebooks}
    for nb, names in declared.items():
        missing = sorted(set(common) - names)
        if missing:
            raise PipelineError(f"{nb.name} has no parameter(s) {missing}; its parameters are {sorted(names)}")
    unknown = sorted(k for k in extra if not any(k in names for names in declared.values()))
    if unknown:
        known = sorted(set().union(*declared.values()))
        raise PipelineError(f"no notebook has parameter(s) {unknown}; the notebooks' parameters are {known}")
    return {nb: {**common, **{k: v for k, v in extra.items() if k in names}} for nb, names in declared.items()}


SCENE_NOTEBOOKS = ("01", "08", "09")  # the notebooks that tile or map the large UAV scene


def scene_warning(data: str, scene_dir: Path | None, notebooks: list[Path]) -> str | None:
    """A warning when real data is used but the UAV scene would be synthetic, else None.

    Real images beside a synthetic scene are easy to miss in the figures of notebooks 01 and
    07, so the pipeline says so before it starts.
    """
    affected = [nb.name for nb in notebooks if nb.name[:2] in SCENE_NOTEBOOKS]
    if data == "synthetic" or scene_dir is not None or not affected:
        return None
    return (
        f"warning: real data ({data}) but no UAV scene, so {', '.join(affected)} use a synthetic scene; "
        "name the scene with --scene DIR or EMR_SCENE (see data/README.md)"
    )


def _from_root(path: str | Path, root: Path) -> str:
    """``path`` relative to the project's root (``../`` where it lies beside it); ``synthetic`` as it is."""
    if str(path) == "synthetic":
        return "synthetic"
    try:
        return Path(os.path.relpath(Path(path).resolve(), root.resolve())).as_posix()
    except ValueError:  # on another drive (Windows): only the absolute path reaches it
        return str(path)


@contextlib.contextmanager
def _environment(values: dict[str, str]):
    """``values`` set in os.environ (which papermill's kernels inherit) while the block runs, then restored."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _execute(notebook: Path, output: Path, parameters: dict, kernel: str, progress: bool, timeout_s: int) -> float:
    """Execute one notebook with papermill into ``output``; return its seconds."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    start = time.perf_counter()
    print(f"== {notebook.name}", flush=True)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=progress,
            execution_timeout=timeout_s,
            log_output=False,
            # consecutive prints of a cell as one output, as a live notebook shows them (the
            # site and nbval read the executed copy)
            coalesce_streams=True,
        )
    except PapermillExecutionError as err:
        raise PipelineError(
            f"{notebook.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\nThe executed copy with the traceback is {output}"
        ) from err
    seconds = time.perf_counter() - start
    print(f"   {notebook.name} done in {seconds:.0f} s", flush=True)
    return seconds


def run_pipeline(
    profile: str = "quick",
    data: str | None = None,
    only: list[str] | None = None,
    device: str = "auto",
    seed: int = 0,
    extra: dict | None = None,
    kernel: str = "python3",
    progress: bool = True,
    scene: str | None = None,
) -> dict[str, float]:
    """Execute the notebooks; return seconds per notebook (also saved to the build folder).

    ``data`` and ``scene`` follow the one default rule of :mod:`emr_lib.paths`.
    """
    root = project_root()
    cell_timeout_s = get_profile(profile).cell_timeout_s
    notebooks = _select(list_notebooks(root), only)
    data = resolve_data(data, root)
    build = root / "build" / "notebooks" / profile
    build.mkdir(parents=True, exist_ok=True)
    figures_root = root / "figures"
    # paths as the project sees them (relative to its root, as notebook_context reads them), so the executed
    # copies' injected-parameters cell, and the site made from them, show no absolute path of this machine
    common = {
        "profile": profile,
        "data": ",".join(_from_root(part, root) for part in data.split(",")),
        "seed": seed,
    }
    parameters = _parameters_for(notebooks, common, extra or {})
    # the kernels inherit these: static figures instead of widgets, and the plumbing no learner changes,
    # which notebook_context reads from its EMR_* variables
    kernel_env = {
        "EMR_HEADLESS": "1",
        "EMR_DEVICE": device,
        "EMR_OUTPUT": _from_root(root / "runs" / "notebooks", root),
        "EMR_FIGURES": _from_root(figures_root / profile, root),
    }
    scene_dir = resolve_scene(scene or "auto", root)
    if scene_dir is not None:
        scene_dir = scene_dir.resolve()  # the kernels run in notebooks/: a relative path would point elsewhere
        kernel_env["EMR_SCENE"] = str(scene_dir)
    timings: dict[str, float] = {}
    print(
        f"pipeline: profile {profile}, data {data}, scene {scene_dir or 'synthetic'}, "
        f"{len(notebooks)} notebook(s), executed copies in {build}"
    )
    warning = scene_warning(data, scene_dir, notebooks)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    with _environment(kernel_env):
        for notebook in notebooks:
            timings[notebook.name] = _execute(
                notebook, build / notebook.name, parameters[notebook], kernel, progress, cell_timeout_s
            )
    (build / "timings.json").write_text(json.dumps({"profile": profile, "data": data, "seconds": timings}, indent=1))
    index = write_figures_index(figures_root, profile)
    if not get_profile(profile).scratch:  # the committed tables changed: the ledger follows them
        print(f"ledger rewritten: {write_ledger(root)}")
    total = sum(timings.values())
    print(f"pipeline finished in {total:.0f} s; figures indexed in {index}")
    return timings


def store_checked_outputs(profile: str = "quick", root: Path | None = None, only: list[str] | None = None) -> list[str]:
    """Copy the outputs of cells tagged ``nbval-check-output`` from the executed copies back
    into ``notebooks/``, and strip every other output: notebooks are committed without outputs
    except the few that nbval checks. Run after ``pipeline --profile quick --data synthetic``;
    ``only`` picks notebooks as the pipeline's ``--only`` does (the ones it just ran).
    """
    import nbformat

    root = root or project_root()
    updated = []
    for notebook in _select(list_notebooks(root), only):
        executed_path = root / "build" / "notebooks" / profile / notebook.name
        if not executed_path.is_file():
            raise PipelineError(
                f"no executed copy of {notebook.name} in {executed_path.parent}; run the pipeline first"
            )
        executed = {cell.get("id"): cell for cell in nbformat.read(executed_path, as_version=4).cells}
        source = nbformat.read(notebook, as_version=4)
        for cell in source.cells:
            if cell.cell_type != "code":
                continue
            keep = is_checked(cell) and cell.get("id") in executed
            cell.outputs = executed[cell.id].outputs if keep else []
            # nbval compares only cells that ran: a kept output needs its execution count
            cell.execution_count = executed[cell.id].execution_count if keep else None
        nbformat.write(source, notebook)
        updated.append(notebook.name)
    return updated
