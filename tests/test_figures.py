import json

from emr_lib import figures
from emr_lib.notebook import notebook_context


def test_figures_are_saved_with_provenance_and_indexed(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ctx = notebook_context(
        "99_test",
        profile="workshop",
        data="synthetic",
        device="cpu",
        output_dir=str(tmp_path / "runs"),
        figures_dir=str(tmp_path / "figures" / "workshop"),
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
    index = figures.write_figures_index(tmp_path / "figures", "workshop").read_text()
    assert "[99_line.png](workshop/99_line.png)" in index and "99_test" in index
    assert "[99_table.md](workshop/99_table.md)" in index and "[99_table.png](workshop/99_table.png)" in index
    assert "| 1.00 | x |" in (tmp_path / "figures" / "workshop" / "99_table.md").read_text()
    (tmp_path / "figures" / "quick").mkdir()
    (tmp_path / "figures" / "quick" / "manifest.json").write_text(json.dumps({}))
    scratch = figures.write_figures_index(tmp_path / "figures", "quick")
    assert scratch == tmp_path / "figures" / "quick" / "README.md"
    assert "quick" not in (tmp_path / "figures" / "README.md").read_text()  # the committed index is untouched


def test_manifests_keyed_by_name_are_read_by_file(tmp_path):
    entry = {"kind": "table", "caption": "c", "notebook": "n", "data": "d", "commit": "x", "created": "t"}
    legacy = {"01_statistics": {"files": ["01_statistics.md", "01_statistics.csv"], **entry}}
    (tmp_path / "manifest.json").write_text(json.dumps(legacy))
    assert list(figures.read_manifest(tmp_path / "manifest.json")) == ["01_statistics.md"]
    assert figures.read_manifest(tmp_path / "missing.json") == {}


def test_saved_tables_render_in_notebooks_instead_of_printing_a_string(tmp_path):
    store = figures.FigureStore(tmp_path, "99_test", "quick", "synthetic default")
    table = store.save_table([{"model": "a<b", "mIoU": 85.123, "paper_mIoU": None}], "99_t", caption="Models")
    assert str(table) == (tmp_path / "99_t.md").read_text().split("\n\n")[1]  # the markdown that was saved
    assert table._repr_markdown_().startswith("Models\n\n| model | mIoU | paper_mIoU |")
    html = table._repr_html_()
    assert "<caption>Models</caption>" in html and "<td>a&lt;b</td><td>85.12</td><td>-</td>" in html
    assert repr(table) == "<Table: 1 rows x 3 columns>"  # what a plain-text frontend shows: short, unquoted


def test_tables_of_runs_keep_each_rows_seed_and_commit(tmp_path):
    store = figures.FigureStore(tmp_path, "99_test", "workshop", "bijie-224")
    rows = [
        {"model": "hrnet", "mIoU": 85.0, "seed": 0, "commit": "abc", "device": "cpu"},
        {"model": "emr_hrnet", "mIoU": 84.5, "seed": 0, "commit": "def", "device": "cuda (H100)"},
        {"model": "unet", "mIoU": 80.0, "seed": 0, "commit": "abc", "device": "cpu"},
    ]
    table = store.save_table(rows, "99_runs")
    assert table.columns == ["model", "mIoU"] and "| hrnet | 85.00 |" in table.markdown
    markdown = (tmp_path / "99_runs.md").read_text()
    footer = "_Runs trained: seed 0 at commit abc on cpu: hrnet, unet; seed 0 at commit def on cuda (H100): emr_hrnet._"
    assert footer in markdown  # each run's commit and machine, told once per group
    assert (tmp_path / "99_runs.csv").read_text().splitlines()[1] == "hrnet,85.0,0,abc,cpu"
    without_machine = [{k: v for k, v in row.items() if k != "device"} for row in rows[:1]]
    store.save_table(without_machine, "99_older")  # rows of records made before the machine was kept
    assert "_Runs trained: seed 0 at commit abc: hrnet._" in (tmp_path / "99_older.md").read_text()
    differences = [
        {"row": "emr_hrnet", "seed": 0, "mIoU_diff": -1.0},
        {"row": "emr_hrnet", "seed": "all", "mIoU_diff": 0.5},
    ]
    table = store.save_table(differences, "99_differences")  # no commit: the seed tells the rows apart
    assert table.columns == ["row", "seed", "mIoU_diff"] and "| emr_hrnet | all | 0.50 |" in table.markdown
