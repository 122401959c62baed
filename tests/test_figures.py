import json

from emr_lib import figures
from emr_lib.notebook import notebook_context


def test_figures_are_saved_with_provenance_and_indexed(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ctx = notebook_context(
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
