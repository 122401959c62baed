import nbformat
import pytest

from conftest import REPO
from emr_lib.workshop.pipeline import (
    PipelineError,
    _parameters_for,
    _select,
    is_checked,
    list_notebooks,
    scene_warning,
    store_checked_outputs,
)


def _project(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "emr-hrnet-kit"\n')
    return tmp_path


def test_every_notebook_declares_the_common_parameters():
    notebooks = list_notebooks(REPO)
    assert [nb.name[:2] for nb in notebooks] == ["01", "02", "03", "04", "05", "06", "07", "08", "09"]
    common = {"profile": "quick", "data": "synthetic", "seed": 0}
    per_notebook = _parameters_for(notebooks, common, {"models": "hrnet"})
    assert per_notebook[notebooks[4]]["models"] == "hrnet"  # only 05 declares it
    assert "models" not in per_notebook[notebooks[3]]
    with pytest.raises(PipelineError, match=r"no notebook has parameter\(s\) \['modles'\]"):
        _parameters_for(notebooks, common, {"modles": "hrnet"})
    with pytest.raises(PipelineError, match="do not exist"):
        _select(notebooks, ["10"])
    assert [nb.name[:2] for nb in _select(notebooks, ["3,4", "7"])] == ["03", "04", "07"]


def test_notebooks_are_committed_without_outputs_except_checked_cells():
    for path in list_notebooks(REPO):
        notebook = nbformat.read(path, as_version=4)
        assert notebook.cells[0].source.startswith("# "), f"{path.name} needs a title"
        assert "colab.research.google.com" in notebook.cells[0].source
        assert any("parameters" in c.metadata.get("tags", []) for c in notebook.cells)
        for cell in notebook.cells:
            if cell.cell_type == "code" and not is_checked(cell):
                assert not cell.outputs, f"{path.name} keeps outputs of an unchecked cell"
            if cell.cell_type == "code":
                assert len(cell.source.splitlines()) <= 25, f"{path.name}: keep logic in emr_lib"


def test_store_checked_outputs_keeps_only_marked_cells(tmp_path):
    root = _project(tmp_path)
    (root / "notebooks").mkdir()
    (root / "build" / "notebooks" / "quick").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    checked = nbformat.v4.new_code_cell("print(1)", metadata={"tags": ["nbval-check-output"]})
    nb.cells = [checked, nbformat.v4.new_code_cell("print(2)")]
    nbformat.write(nb, root / "notebooks" / "01_x.ipynb")
    for cell, text in zip(nb.cells, ("1\n", "2\n")):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nbformat.write(nb, root / "build" / "notebooks" / "quick" / "01_x.ipynb")
    assert store_checked_outputs("quick", root) == ["01_x.ipynb"]
    stored = nbformat.read(root / "notebooks" / "01_x.ipynb", as_version=4)
    assert stored.cells[0].outputs[0]["text"] == "1\n" and stored.cells[1].outputs == []
    # a notebook never executed does not stop storing the ones the pipeline just ran (--only)
    nbformat.write(nbformat.v4.new_notebook(), root / "notebooks" / "02_y.ipynb")
    with pytest.raises(PipelineError, match="no executed copy of 02_y"):
        store_checked_outputs("quick", root)
    assert store_checked_outputs("quick", root, only=["01"]) == ["01_x.ipynb"]


def test_real_data_with_a_synthetic_scene_is_warned_about(tmp_path):
    notebooks = list_notebooks(REPO)
    message = scene_warning("/data/bijie-224", None, notebooks)
    assert "01_data_exploration.ipynb" in message and "08_generalisation.ipynb" in message
    assert "09_mapping.ipynb" in message
    assert "--scene DIR or EMR_SCENE" in message
    assert scene_warning("/data/bijie-224", None, _select(notebooks, ["03,05"])) is None  # no scene used
    assert scene_warning("/data/bijie-224", tmp_path, notebooks) is None  # a scene was found
    assert scene_warning("synthetic", None, notebooks) is None  # synthetic throughout: nothing to mix up


def _executed_quick_notebooks() -> list:
    import os

    executed = sorted((REPO / "build" / "notebooks" / "quick").glob("0*.ipynb"))
    if not executed:
        if os.environ.get("CI"):
            pytest.fail("no executed quick notebooks: the README's set-up command runs the pipeline first")
        pytest.skip("run python -m emr_lib pipeline --profile quick first")
    return executed


def test_executed_notebooks_render_tables_and_leave_no_stray_values():
    """What learners see: tables as tables, no PosixPath or (None, None) (the quick pipeline's copies)."""
    executed = _executed_quick_notebooks()
    tables = 0
    for path in executed:
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                text = "".join(output.get("text", "")) + "".join(data.get("text/plain", ""))
                stray = "PosixPath(" in text or "(None, None)" in text or text.lstrip().startswith("'|")
                assert not stray, f"{path.name}: {text[:200]!r}"
                tables += "<table" in "".join(data.get("text/html", "")) and "text/markdown" in data
    assert tables >= 8, f"only {tables} rendered tables in the executed notebooks"


def test_executed_notebooks_show_compact_outputs_and_no_machine_paths():
    """A training is one compact output, not a box per epoch; nothing shows where the machine keeps the
    checkout (the rendered site would publish it)."""
    from pathlib import Path

    machine_paths = {str(REPO), str(Path.home()), "/tmp/"}
    for path in _executed_quick_notebooks():
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            outputs = cell.get("outputs", [])
            streams = [o for o in outputs if o.get("output_type") == "stream"]
            assert len(streams) <= 3, f"{path.name} cell {index}: {len(streams)} separate stream outputs"
            text = "".join(
                "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in outputs
            )
            shown = [p for p in machine_paths if p in text]
            assert not shown, f"{path.name} cell {index} shows {shown}: {text[:200]!r}"
            if "injected-parameters" in cell.metadata.get("tags", []):  # papermill's cell: the site shows it too
                shown = [p for p in machine_paths if p in cell.source]
                assert not shown, f"{path.name}: the injected parameters show {shown}: {cell.source!r}"


def test_the_architecture_episode_runs_in_the_pipeline_and_draws_receptive_fields():
    import json

    names = [nb.name for nb in list_notebooks(REPO)]
    episode = next(name for name in names if "architecture" in name)
    assert names.index(episode) < next(i for i, name in enumerate(names) if "training" in name)  # before training
    source = (REPO / "notebooks" / episode).read_text()
    for term in ("DEMA", "EMA", "RMA", "RAD", "RefConv", "MDTA"):
        assert term in source, term
    executed = [p for p in _executed_quick_notebooks() if p.name == episode]
    assert executed, f"the quick pipeline did not execute {episode}"
    manifest = json.loads((REPO / "figures" / "quick" / "manifest.json").read_text())
    assert manifest["03_receptive_fields.png"]["notebook"] == episode.removesuffix(".ipynb")
    assert (REPO / "figures" / "quick" / "03_receptive_fields.png").stat().st_size > 5_000
    radii = [
        line
        for cell in nbformat.read(executed[0], as_version=4).cells
        for o in cell.get("outputs", [])
        for line in "".join(o.get("text", "")).splitlines()
        if "of the gradient within" in line
    ]
    plain, dema = (int(line.split("within ")[1].split(" px")[0]) for line in radii)
    assert plain == 2 and dema > plain  # two 3x3 convs reach 2 px; the dilated conv and EMA reach further
