import csv
import json

import pytest

from emr_lib.cli import main


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--model", "unet9000", "--out", str(tmp_path / "x")]) == 2
    assert "unknown model 'unet9000'" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert main(["train", "--set", "epochz=3", "--out", str(tmp_path / "x")]) == 2
    assert "unknown setting 'epochz'" in capsys.readouterr().err
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x80\x02 definitely not a checkpoint")
    assert main(["evaluate", str(corrupt), "--data", "synthetic"]) == 2
    assert "corrupt" in capsys.readouterr().err


def test_cli_train_then_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "train",
        "--profile",
        "quick",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "synthetic_n=40",
        "--set",
        "epochs=1",
    ]
    assert main(args) == 0
    assert main(args) == 2 and "--resume" in capsys.readouterr().err  # will not overwrite silently
    assert main(["evaluate", str(out / "best.pt"), "--model", "hrnet"]) == 2
    assert "holds a 'emr_hrnet' model, not 'hrnet'" in capsys.readouterr().err
    assert main(["evaluate", str(out / "best.pt"), "--json", str(tmp_path / "m.json")]) == 0
    assert "mIoU" in capsys.readouterr().out
    assert json.loads((tmp_path / "m.json").read_text())["split"] == "test"
    scales = ["evaluate", str(out / "best.pt"), "--scales", "0.5", "1", "--json", str(tmp_path / "s.json")]
    assert main(scales) == 0 and "trained at" in capsys.readouterr().out
    curve = json.loads((tmp_path / "s.json").read_text())
    assert [row["factor"] for row in curve["scales"]] == [0.5, 1.0] and curve["trained_at_commit"]


def test_a_setting_of_the_wrong_type_is_one_clear_line(tmp_path, capsys):
    assert main(["train", "--set", "lr=abc", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: setting lr takes a number, got 'abc'"
    assert not (tmp_path / "x").exists()


def test_train_flags_map_onto_the_run_folder_rule(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--no-progress", "--set", "synthetic_n=40", "--set", "epochs=1"]
    assert main(args) == 0
    first = json.loads((out / "record.json").read_text())
    assert main([*args, "--resume"]) == 0 and "reusing" in capsys.readouterr().out  # same settings, finished
    assert main([*args, "--set", "lr=0.001", "--resume"]) == 2
    assert "other settings (lr: 0.002 in the run, 0.001 asked)" in capsys.readouterr().err
    assert main([*args, "--resume", "--overwrite"]) == 2 and "pass one of them" in capsys.readouterr().err
    assert main([*args, "--set", "lr=0.001", "--overwrite"]) == 0  # the old run is moved aside, not deleted
    kept = list(tmp_path.glob("run.replaced-*"))
    assert len(kept) == 1 and json.loads((kept[0] / "record.json").read_text()) == first
    assert json.loads((out / "record.json").read_text())["config"]["lr"] == 0.001


def test_store_checked_outputs_through_the_cli_restores_cleared_outputs(tmp_path, monkeypatch, capsys):
    import nbformat

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "emr-hrnet-kit"\n')
    (tmp_path / "notebooks").mkdir()
    parameters = "\n".join(
        f"{name} = {value!r}"
        for name, value in dict(profile="quick", data="", device="cpu", seed=0, output_dir="", figures_dir="").items()
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print(6 * 7)", metadata={"tags": ["nbval-check-output"]}),
        nbformat.v4.new_code_cell("print('not checked')"),
    ]
    path = tmp_path / "notebooks" / "01_tiny.ipynb"
    nbformat.write(nb, path)  # as committed after someone cleared every output
    monkeypatch.chdir(tmp_path)
    assert main(["pipeline", "--profile", "quick", "--no-progress", "--store-checked-outputs"]) == 0
    assert "stored the checked outputs of 1 notebook" in capsys.readouterr().out
    stored = nbformat.read(path, as_version=4)
    assert stored.cells[1].outputs[0]["text"] == "42\n" and stored.cells[1].execution_count
    assert stored.cells[0].outputs == [] and stored.cells[2].outputs == []


@pytest.fixture(scope="module")
def table4_runs(tmp_path_factory):
    """One runs folder for the table tests: seed 0's two quick runs train once (CI's time)."""
    return tmp_path_factory.mktemp("table4-runs")


def test_table_runs_or_reuses_its_rows_and_prints_them_beside_the_paper(tmp_path, capsys, monkeypatch, table4_runs):
    args = ["table", "4", "--profile", "quick", "--data", "synthetic", "--rows", "baseline", "+DEMA"]
    args += ["--out", str(table4_runs), "--json", str(tmp_path / "t4.json")]
    monkeypatch.delenv("EMR_HEADLESS", raising=False)  # a terminal's run: bars, unless --no-progress
    assert main([*args, "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert "it/s" not in err and "s/epoch" not in err and "%|" not in err  # queue logs stay readable
    assert "| configuration | mIoU | paper_mIoU |" in out and "| +DEMA |" in out and "| 60.99 |" in out
    saved = json.loads((tmp_path / "t4.json").read_text())
    assert [r["configuration"] for r in saved["rows"]] == ["baseline", "+DEMA"]
    assert saved["runs"]["+DEMA"].endswith("quick/ablation_dema")
    assert main(args) == 0 and capsys.readouterr().out.count("reusing") == 2  # the notebooks' rule: reused
    assert main(["table", "4", "--rows", "+CBAM"]) == 2
    assert "Table 4 has no row(s) ['+CBAM']" in capsys.readouterr().err
    assert main(["table", "6"]) == 2 and "not Table 6" in capsys.readouterr().err
    assert main([*args, "--reference", "+RMA"]) == 2 and "--reference +RMA" in capsys.readouterr().err


def test_table_over_seeds_gives_spread_and_paired_intervals(tmp_path, capsys, table4_runs):
    args = [
        "table",
        "4",
        "--profile",
        "quick",
        "--data",
        "synthetic",
        "--rows",
        "baseline",
        "+DEMA",
        "--seeds",
        "0",
        "1",
    ]
    args += [
        "--output-dir",
        str(table4_runs),  # seed 0's runs reused from the test above, where it ran first
        "--save",
        str(tmp_path / "figures"),
        "--json",
        str(tmp_path / "s.json"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Test mIoU over seeds [0, 1]" in out and "Each row minus baseline: per seed" in out
    saved = json.loads((tmp_path / "s.json").read_text())
    assert [r["seeds"] for r in saved["seed_summary"]] == ["0, 1", "0, 1"]
    assert [(d["row"], d["seed"]) for d in saved["differences"]] == [("+DEMA", 0), ("+DEMA", 1), ("+DEMA", "all")]
    assert all(d["ci_low"] <= d["mIoU_diff"] <= d["ci_high"] for d in saved["differences"])
    assert all(d["direction"] in ("better", "worse", "unresolved") for d in saved["differences"])
    assert [d["paper_diff"] for d in saved["differences"]] == pytest.approx([2.52] * 3)  # 63.51 - 60.99
    with (tmp_path / "figures" / "table4_differences.csv").open() as f:
        pooled = [row for row in csv.DictReader(f) if row["seed"] == "all"]
    assert (
        len(pooled) == 1 and pooled[0]["n_seeds"] == "2" and pooled[0]["direction"] in saved["differences"][2].values()
    )
    for column in ("mIoU_diff", "ci_low", "ci_high", "n_seeds", "n_images", "direction"):
        assert pooled[0][column] != ""
    assert (table4_runs / "quick" / "ablation_dema-seed1" / "record.json").is_file()
    assert "Runs trained" not in (tmp_path / "figures" / "table4_seeds.md").read_text()  # summaries, not runs
    assert (tmp_path / "figures" / "table4_differences.csv").read_text().startswith("row,versus,seed,mIoU_diff")


def test_data_given_twice_trains_on_both_and_the_record_names_every_part(tmp_path, capsys):
    from emr_lib.data import SyntheticLandslides

    first = SyntheticLandslides(20, size=64, seed=1).save(tmp_path / "bijie", progress=False)
    second = SyntheticLandslides(10, size=64, seed=2).save(tmp_path / "sichuan", progress=False)
    out = tmp_path / "run"
    args = ["train", "--data", str(first), "--data", str(second), "--out", str(out), "--no-progress"]
    assert main([*args, "--set", "epochs=1", "--set", "size=64"]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["data_parts"] == {"bijie": 20, "sichuan": 10} and record["split"] == {
        "train": 18,
        "val": 6,
        "test": 6,
    }
    assert main(["train", "--data", str(first), "--data", str(first), "--out", str(tmp_path / "x")]) == 2
    assert "names " + str(first) + " twice" in capsys.readouterr().err


def test_resume_takes_the_run_s_own_settings(tmp_path, capsys):
    out = tmp_path / "run"
    made = ["train", "--model", "hrnet", "--profile", "quick", "--out", str(out), "--no-progress"]
    made += ["--set", "synthetic_n=40", "--set", "epochs=2", "--stop-after", "1"]
    assert main(made) == 0 and json.loads((out / "record.json").read_text())["status"] == "stopped"
    # the README's example: only the folder; model, profile, data and settings come from the run
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["model"] == "hrnet" and record["epochs_run"] == 2 and record["config"]["synthetic_n"] == 40
    assert main(["train", "--out", str(out), "--resume", "--profile", "workshop", "--model", "emr_hrnet"]) == 2
    err = capsys.readouterr().err
    assert "model: 'hrnet' in the run, 'emr_hrnet' asked" in err and "profile: 'quick' in the run" in err


def _subparser(*names):
    import argparse

    from emr_lib.cli import build_parser

    parser = build_parser()
    for name in names:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_help_shows_every_option_with_its_default():
    for command in (("train",), ("table",), ("pipeline",), ("map",), ("data", "tile")):
        parser = _subparser(*command)
        text = " ".join(parser.format_help().split())  # unwrapped
        for action in parser._actions:
            if action.option_strings and action.dest != "help" and action.help != "==SUPPRESS==":
                assert action.help, f"{' '.join(command)} {action.option_strings[0]} has no help line"
        if command != ("map",) and command != ("data", "tile"):
            assert "--profile" in text and "default: quick" in text, command
    assert "(default: 0.5)" in " ".join(_subparser("map").format_help().split())
    assert "(default: 0.5)" in " ".join(_subparser("data", "tile").format_help().split())  # --max-nodata
    assert "95 % interval" in _subparser("compare").format_help() and "%%" not in _subparser("compare").format_help()
    assert "01..08" in _subparser("pipeline").format_help()


def test_values_out_of_range_are_refused_in_one_line(tmp_path, capsys):
    for argv, what in (
        (["map", "scene.tif", "--checkpoint", "x.pt", "--out", str(tmp_path), "--threshold", "2"], "--threshold"),
        (["evaluate", "x.pt", "--scales", "-1"], "--scales"),
        (["data", "tile", "a.png", "b.png", str(tmp_path), "--max-nodata", "1.5"], "--max-nodata"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert what in err and "outside" in err, err


def test_tables_saved_against_another_reference_keep_their_own_files():
    from emr_lib.cli.runs import _saved_stem

    assert _saved_stem(4, "baseline") == "table4" and _saved_stem(5, "dema") == "table5"
    assert _saved_stem(4, "+DEMA+RMA") == "table4_vs_dema_rma"  # CenterRep's own share: not table4's claim
    assert _saved_stem(4, "baseline, split first") == "table4"  # the split study's rows name their timing
    assert main(["table", "4", "--split-study", "--reference", "baseline, split first"]) == 2  # pairs are fixed


def test_resume_with_nothing_to_resume_says_so_and_trains_nothing(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["train", "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err and not any((tmp_path / "empty").iterdir())


def test_a_finished_run_resumes_by_the_same_command_after_its_folder_moved(tmp_path, capsys, monkeypatch):
    kit = tmp_path / "kit"
    assert main(["data", "synthetic", str(kit / "data"), "--n", "12", "--size", "64"]) == 0
    monkeypatch.chdir(kit)
    command = ["train", "--model", "hrnet", "--data", "data", "--out", "runs/r", "--no-progress"]
    command += ["--set", "epochs=1", "--set", "size=64"]
    assert main(command) == 0
    moved = tmp_path / "moved"
    kit.rename(moved)  # the kit folder moved: the data's path changed, its name and content did not
    monkeypatch.chdir(moved)
    capsys.readouterr()
    assert main([*command, "--resume"]) == 0 and "reusing" in capsys.readouterr().out
    (moved / "data" / "images" / sorted((moved / "data" / "images").iterdir())[0].name).unlink()
    (moved / "data" / "masks" / sorted((moved / "data" / "masks").iterdir())[0].name).unlink()
    assert main([*command, "--resume"]) == 2  # other content under the same name: not the run's data
    assert "other settings" in capsys.readouterr().err
