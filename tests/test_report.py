import dataclasses
import json
import math

import nbformat
import numpy as np
import pytest

from conftest import REPO
from emr_lib import report, viz
from emr_lib.pipeline import (
    PipelineError,
    _parameters_for,
    _select,
    list_notebooks,
    scene_warning,
    store_checked_outputs,
)
from emr_lib.train import train


def _project(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "emr-hrnet-kit"\n')
    return tmp_path


def test_data_auto_uses_the_documented_folder_else_synthetic(tmp_path, monkeypatch):
    monkeypatch.delenv("EMR_SCENE", raising=False)
    root = _project(tmp_path)
    assert report.resolve_data("auto", root) == "synthetic"
    (root / "data" / "bijie" / "landslide" / "image").mkdir(parents=True)
    assert report.resolve_data("auto", root) == str(root / "data" / "bijie")
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        report.resolve_data(str(tmp_path / "nowhere"), root)
    assert report.resolve_scene("auto", root) is None


def test_every_notebook_declares_the_common_parameters():
    notebooks = list_notebooks(REPO)
    assert [nb.name[:2] for nb in notebooks] == ["01", "02", "03", "04", "05", "06", "07"]
    common = {"profile": "quick", "data": "synthetic", "device": "cpu", "seed": 0, "output_dir": "", "figures_dir": ""}
    per_notebook = _parameters_for(notebooks, common, {"models": "hrnet"})
    assert per_notebook[notebooks[3]]["models"] == "hrnet"  # only 04 declares it
    assert "models" not in per_notebook[notebooks[2]]
    with pytest.raises(PipelineError, match=r"no notebook has parameter\(s\) \['modles'\]"):
        _parameters_for(notebooks, common, {"modles": "hrnet"})
    with pytest.raises(PipelineError, match="do not exist"):
        _select(notebooks, ["09"])
    assert [nb.name[:2] for nb in _select(notebooks, ["3,4", "7"])] == ["03", "04", "07"]


def test_notebooks_are_committed_without_outputs_except_checked_cells():
    for path in list_notebooks(REPO):
        notebook = nbformat.read(path, as_version=4)
        assert notebook.cells[0].source.startswith("# "), f"{path.name} needs a title"
        assert "colab.research.google.com" in notebook.cells[0].source
        assert any("parameters" in c.metadata.get("tags", []) for c in notebook.cells)
        for cell in notebook.cells:
            if cell.cell_type == "code" and not cell.source.startswith("# NBVAL_CHECK_OUTPUT"):
                assert not cell.outputs, f"{path.name} keeps outputs of an unchecked cell"
            if cell.cell_type == "code":
                assert len(cell.source.splitlines()) <= 25, f"{path.name}: keep logic in emr_lib"


def test_store_checked_outputs_keeps_only_marked_cells(tmp_path):
    root = _project(tmp_path)
    (root / "notebooks").mkdir()
    (root / "build" / "notebooks" / "quick").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"), nbformat.v4.new_code_cell("print(2)")]
    nbformat.write(nb, root / "notebooks" / "01_x.ipynb")
    for cell, text in zip(nb.cells, ("1\n", "2\n")):
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]
    nbformat.write(nb, root / "build" / "notebooks" / "quick" / "01_x.ipynb")
    assert store_checked_outputs("quick", root) == ["01_x.ipynb"]
    stored = nbformat.read(root / "notebooks" / "01_x.ipynb", as_version=4)
    assert stored.cells[0].outputs[0]["text"] == "1\n" and stored.cells[1].outputs == []


def test_figures_are_saved_with_provenance_and_indexed(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ctx = report.notebook_context(
        "99_test", "workshop", "synthetic", "cpu", 0, str(tmp_path / "runs"), str(tmp_path / "figures" / "workshop")
    )
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ctx.save_figure(fig, "99_line", "a line")
    ctx.save_table([{"a": 1.0, "b": "x"}], "99_table", caption="a table")
    ctx.save_figure(fig, "99_table", "the table as bars")  # a table and its plot share a name
    manifest = json.loads((tmp_path / "figures" / "workshop" / "manifest.json").read_text())
    line = manifest["99_line.png"]
    assert line["profile"] == "workshop" and line["data"] == "synthetic default" and line["kind"] == "figure"
    assert manifest["99_table.md"]["files"] == ["99_table.md", "99_table.csv"]
    assert manifest["99_table.png"]["caption"] == "the table as bars"
    index = report.write_figures_index(tmp_path / "figures", "workshop").read_text()
    assert "[99_line.png](workshop/99_line.png)" in index and "99_test" in index
    assert "[99_table.md](workshop/99_table.md)" in index and "[99_table.png](workshop/99_table.png)" in index
    assert "| 1.00 | x |" in (tmp_path / "figures" / "workshop" / "99_table.md").read_text()
    (tmp_path / "figures" / "quick").mkdir()
    (tmp_path / "figures" / "quick" / "manifest.json").write_text(json.dumps({}))
    scratch = report.write_figures_index(tmp_path / "figures", "quick")
    assert scratch == tmp_path / "figures" / "quick" / "README.md"
    assert "quick" not in (tmp_path / "figures" / "README.md").read_text()  # the committed index is untouched


def test_manifests_keyed_by_name_are_read_by_file(tmp_path):
    entry = {"kind": "table", "caption": "c", "notebook": "n", "data": "d", "commit": "x", "created": "t"}
    legacy = {"01_statistics": {"files": ["01_statistics.md", "01_statistics.csv"], **entry}}
    (tmp_path / "manifest.json").write_text(json.dumps(legacy))
    assert list(report.read_manifest(tmp_path / "manifest.json")) == ["01_statistics.md"]
    assert report.read_manifest(tmp_path / "missing.json") == {}


def test_overlay_colours_true_and_false_positives_and_misses():
    image = np.zeros((2, 2, 3), np.uint8)
    truth = np.array([[1, 1], [0, 0]])
    pred = np.array([[1, 0], [1, 0]])
    out = viz.overlay(image, truth, pred, alpha=1.0)
    assert tuple(out[0, 0]) == viz.OVERLAY_COLOURS["TP"]
    assert tuple(out[0, 1]) == viz.OVERLAY_COLOURS["FN"]
    assert tuple(out[1, 0]) == viz.OVERLAY_COLOURS["FP"]
    assert tuple(out[1, 1]) == (0, 0, 0)


def test_commit_is_dirty_for_code_changes_but_not_for_figures(tmp_path):
    import subprocess

    from emr_lib.provenance import git_commit

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True)

    (tmp_path / "figures").mkdir()
    (tmp_path / "code").mkdir()
    (tmp_path / "figures" / "table.md").write_text("1\n")
    (tmp_path / "code" / "model.py").write_text("x = 1\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "first")
    clean = git_commit(tmp_path / "code")
    assert len(clean) == 12 and "dirty" not in clean
    (tmp_path / "figures" / "table.md").write_text("2\n")  # what the pipeline writes
    assert git_commit(tmp_path / "code") == clean
    (tmp_path / "code" / "model.py").write_text("x = 2\n")
    assert git_commit(tmp_path / "code") == clean + "+dirty"


def test_scene_is_found_named_or_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("EMR_SCENE", raising=False)
    (tmp_path / "project").mkdir()
    root = _project(tmp_path / "project")
    assert report.resolve_scene(None, root) is None  # nothing prepared: notebooks use a synthetic scene
    scene = tmp_path / "uav"
    scene.mkdir()
    named_but_empty = r"UAV scene .*uav: expected image.png and mask.png.*--scene or EMR_SCENE"
    with pytest.raises(FileNotFoundError, match=named_but_empty):
        report.resolve_scene(str(scene), root)
    for name in ("image.png", "mask.png"):
        (scene / name).write_bytes(b"")
    assert report.resolve_scene(str(scene), root) == scene
    monkeypatch.setenv("EMR_SCENE", str(scene))
    assert report.resolve_scene(None, root) == scene
    monkeypatch.setenv("EMR_SCENE", str(tmp_path / "nowhere"))  # named through the environment: also checked
    with pytest.raises(FileNotFoundError, match="nowhere: expected image.png"):
        report.resolve_scene("auto", root)


def test_real_data_with_a_synthetic_scene_is_warned_about(tmp_path):
    notebooks = list_notebooks(REPO)
    message = scene_warning("/data/bijie-224", None, notebooks)
    assert "01_data_exploration.ipynb" in message and "07_generalisation.ipynb" in message
    assert "--scene DIR or EMR_SCENE" in message
    assert scene_warning("/data/bijie-224", None, _select(notebooks, ["03,05"])) is None  # no scene used
    assert scene_warning("/data/bijie-224", tmp_path, notebooks) is None  # a scene was found
    assert scene_warning("synthetic", None, notebooks) is None  # synthetic throughout: nothing to mix up


def test_saved_figures_are_palette_pngs_much_smaller_than_full_colour(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    photo = np.random.default_rng(0).integers(0, 255, (300, 300, 3), dtype=np.uint8)  # like a scene: many colours
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(photo)
    full_colour = tmp_path / "full.png"
    fig.savefig(full_colour, dpi=110, bbox_inches="tight")
    saved = viz.save_figure(fig, tmp_path / "saved.png", "provenance")
    with Image.open(saved) as image:
        assert image.mode == "P" and image.size[0] > 500
    assert saved.stat().st_size < 0.6 * full_colour.stat().st_size


def test_notebook_runs_are_reused_resumed_and_never_deleted(tmp_path, capsys):
    tiny = dict(synthetic_n=40, synthetic_size=64, size=64, epochs=2, batch_size=8)
    ctx = report.Context("t", "quick", "synthetic", "cpu", 0, tmp_path / "runs", tmp_path / "figures")
    first = ctx.run("demo", progress=False, **tiny)
    assert ctx.run("demo", progress=False, **tiny) == first
    assert "reusing" in capsys.readouterr().out

    # killed in epoch 2: last.pt holds epoch 1, and record.json is only written at the end
    train(ctx.config(**tiny), ctx.run_dir("killed"), stop_after=1, progress=False)
    (ctx.run_dir("killed") / "record.json").unlink()
    resumed = ctx.run("killed", progress=False, **tiny)
    assert "resuming" in capsys.readouterr().out
    assert resumed["test_confusion_matrix"] == first["test_confusion_matrix"]

    seed1 = dataclasses.replace(ctx, seed=1)
    second = seed1.run("demo", progress=False, **tiny)
    assert second["seed"] == 1 and seed1.run_dir("demo").name == "demo-seed1"
    assert ctx.run("demo", progress=False, **tiny) == first  # seed 0 is still there
    assert "seed 1" in seed1.provenance_text() and "seed" not in ctx.provenance_text()
    assert ctx.seed_records("demo") == seed1.seed_records("demo") == {0: first, 1: second}

    shorter = ctx.run("demo", progress=False, **{**tiny, "epochs": 1})  # other settings, same folder
    kept = list((tmp_path / "runs" / "quick").glob("demo.replaced-*"))
    assert len(kept) == 1
    assert json.loads((kept[0] / "record.json").read_text())["epochs_run"] == 2
    assert ctx.seed_records("demo") == {0: shorter}  # seed 1 ran 2 epochs: not the same settings


def test_seed_summary_gives_mean_spread_and_range():
    def record(miou):
        return {"test_metrics": {"mIoU": miou}}

    rows = report.seed_summary({"+DEMA": {0: record(0.80), 1: record(0.84), 2: record(0.82)}, "one": {0: record(0.5)}})
    assert rows[0]["seeds"] == "0, 1, 2"
    assert rows[0]["mIoU_mean"] == pytest.approx(82.0)
    assert rows[0]["mIoU_sd"] == pytest.approx(2.0)
    assert (rows[0]["mIoU_min"], rows[0]["mIoU_max"]) == pytest.approx((80.0, 84.0))
    assert rows[1]["mIoU_mean"] == pytest.approx(50.0) and math.isnan(rows[1]["mIoU_sd"])


def test_metric_comparison_shows_every_row_on_a_cut_axis_with_the_legend_clear_of_the_data():
    import matplotlib

    matplotlib.use("Agg")
    rows = [
        {"model": "a", "mIoU": 85.2, "paper_mIoU": 80.2},
        {"model": "b", "mIoU": 84.5, "paper_mIoU": 81.7},
        {"model": "c", "mIoU": 78.1},  # no paper value
    ]
    fig = viz.plot_metric_comparison(rows, "mIoU")
    ax = fig.axes[0]
    assert {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())} == {"a": 2, "b": 1, "c": 0}
    ours, paper = (collection.get_offsets() for collection in ax.collections[1:])
    assert list(ours[:, 1]) == [2, 1, 0] and list(ours[:, 0]) == [85.2, 84.5, 78.1]
    assert np.ma.getmaskarray(paper)[2].all() and not np.ma.getmaskarray(paper)[:2].any()  # none for the missing value
    low, high = ax.get_xlim()
    assert 70 < low < 78.1 and 85.2 < high < 90  # the axis spans the values, not 0-100
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend_box = ax.get_legend().get_window_extent(renderer)
    assert legend_box.y1 < ax.get_window_extent(renderer).y0  # below the axes, so it covers no row
