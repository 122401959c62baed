import pytest

from emr_lib.experiments.paper import TABLE4, TABLE5
from emr_lib.experiments.tables import ABLATION_SPLIT, run_table, table_rows, table_runs
from emr_lib.models import list_models


def test_tables_declare_the_runs_the_notebooks_made():
    assert {row: spec.name for row, spec in table_runs(2).items()} == {m: m for m in list_models()}
    table4 = table_runs(4)
    assert list(table4) == list(TABLE4)
    assert [spec.name for spec in table4.values()] == [
        "ablation_baseline",
        "ablation_dema",
        "ablation_rma",
        "ablation_dema_rma",
        "ablation_dema_centerrep",
        "ablation_dema_rma_centerrep",
    ]
    assert table4["+DEMA+RMA+CenterRep"].options == {"dema": True, "rma": True}
    assert table4["+DEMA+RMA+CenterRep"].overrides == {"centerrep": 0.5, "split_ratios": ABLATION_SPLIT}
    assert table4["baseline"].overrides["centerrep"] == 0.0
    table5 = table_runs(5)
    assert list(table5) == list(TABLE5) and table5["dema"] == table4["+DEMA"]  # one run serves both tables
    assert table5["gam"].options == {"block": "gam", "rma": False} and table5["gam"].overrides["centerrep"] == 0.0
    assert list(table_runs(2, ["hrnet", "emr_hrnet"])) == ["hrnet", "emr_hrnet"]


def test_run_table_passes_each_spec_to_the_runner_and_rows_sit_beside_the_paper():
    calls = []

    def fake_run(name, model, options, **overrides):
        calls.append((name, model, options, overrides))
        return {"test_metrics": dict.fromkeys(("mIoU", "precision", "recall", "accuracy", "F1"), 0.5)}

    records = run_table(fake_run, table_runs(4, ["+RMA"]))
    assert calls == [
        ("ablation_rma", "emr_hrnet", {"dema": False, "rma": True}, {"centerrep": 0.0, "split_ratios": ABLATION_SPLIT})
    ]
    records["+RMA"] |= {"parameters": 2_000_000, "epochs_run": 3, "wall_time_s": 60, "seed": 1, "commit": "abc"}
    records["+RMA"]["device"] = "cpu (x86_64, 2 threads)"
    (row,) = table_rows(4, records)
    expected = {"configuration": "+RMA", "mIoU": 50.0, "paper_mIoU": 62.35, "F1": 50.0, "params_M": 2.0}
    assert row == {**expected, "seed": 1, "commit": "abc", "device": "cpu (x86_64, 2 threads)"}  # which run made it
    (row,) = table_rows(2, {"pspnet": records["+RMA"]}, "sichuan")  # Table 3 on Sichuan data
    assert row["paper_mIoU"] == 59.02
    per_image = {f"img{i}": [[900 - i, 10 + i], [20, 60 + 3 * i]] for i in range(12)}
    (row,) = table_rows(5, {"cbam": records["+RMA"] | {"test_per_image": per_image}})
    assert row["mIoU_low"] < row["mIoU_high"]  # its interval over the test images, for the dot plot


def test_row_intervals_resample_scenes_where_the_runs_tested_tiles_as_on_bijie_and_sichuan_together():
    from emr_lib.evaluation.uncertainty import bootstrap_interval, by_unit
    from emr_lib.experiments import resampled_units

    metrics = {"test_metrics": dict.fromkeys(("mIoU", "precision", "recall", "accuracy", "F1"), 0.5), "parameters": 1}
    # two Sichuan scenes of 4 tiles each beside 4 Bijie images: 6 units, not 12
    tiles = {
        f"s{scene}_y{y:05d}_x00000": [[900 - y, 10 + y], [20, 60 + 9 * scene]] for scene in (1, 2) for y in range(4)
    }
    bijie = {f"df{i:03d}": [[800, 30 + i], [40 - i, 70]] for i in range(4)}
    combined = {"+DEMA": metrics | {"test_per_image": tiles | bijie}}
    assert resampled_units(combined) == "scenes"
    assert resampled_units({"+DEMA": metrics | {"test_per_image": bijie}}) == "images"
    (row,) = table_rows(4, combined)
    scenes = bootstrap_interval(by_unit(tiles | bijie, lambda name: name.split("_y")[0]))
    assert (row["mIoU_low"], row["mIoU_high"]) == pytest.approx(scenes)
    assert (row["mIoU_low"], row["mIoU_high"]) != pytest.approx(bootstrap_interval(tiles | bijie))


def test_table3_runs_the_models_on_sichuan_in_folds_of_scenes_under_their_own_names():
    from emr_lib.experiments.paper import TABLE3
    from emr_lib.experiments.tables import TABLE3_FOLDS, paper_effects

    table3 = table_runs(3)
    assert list(table3) == list_models()
    assert {spec.name for spec in table3.values()} == {f"sichuan_{m}" for m in list_models()}  # not Bijie's folders
    assert all(spec.overrides == {"split_folds": TABLE3_FOLDS} for spec in table3.values())
    assert paper_effects(3, "hrnet")["emr_hrnet"] == pytest.approx(TABLE3["emr_hrnet"]["mIoU"] - 59.38)


def test_table3_on_other_data_is_refused_with_the_command_that_prepares_sichuan(tmp_path, capsys):
    from emr_lib.cli import main

    assert main(["table", "3", "--data", "synthetic", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "data prepare sichuan" in err and "--tile 160" in err and not any(tmp_path.iterdir())


def test_the_split_study_trains_table4s_ends_expanded_split_before_and_after_and_pairs_within_a_timing():
    from emr_lib.data.expansion import PAPER_EXPANSION
    from emr_lib.experiments.tables import SPLIT_TIMINGS, split_study_differences, split_study_runs

    specs = split_study_runs()
    assert list(specs) == [f"{row}, {t}" for t in SPLIT_TIMINGS for row in ("baseline", "+DEMA+RMA+CenterRep")]
    leaky, honest = specs["+DEMA+RMA+CenterRep, expanded first"], specs["+DEMA+RMA+CenterRep, split first"]
    assert leaky.name == "ablation_dema_rma_centerrep_leaky" and honest.name == "ablation_dema_rma_centerrep_expanded"
    assert leaky.overrides["split_after_expansion"] == PAPER_EXPANSION and "offline_expansion" not in leaky.overrides
    assert honest.overrides["offline_expansion"] == PAPER_EXPANSION and leaky.overrides["centerrep"] == 0.5
    assert leaky.overrides["epochs"] == honest.overrides["epochs"] and not leaky.overrides["augment"]

    def record(seed, skill, prefix):  # each timing tests other images
        import numpy as np

        rng = np.random.default_rng(seed)
        per_image = {}
        for i in range(20):
            tp = int(300 * skill * rng.uniform(0.8, 1))
            name = f"{prefix}{i}" if prefix == "s" or i < 10 else f"{prefix}{i % 10}__aug{i // 10:02d}"
            per_image[name] = [[3000, int(rng.integers(0, 60))], [300 - tp, tp]]
        return {"test_per_image": per_image}

    by_seed = {
        s: {
            f"{row}, {t}": record(10 * s + k, 0.9 if "DEMA" in row else 0.8, t[0])
            for k, (row, t) in enumerate((row, t) for t in SPLIT_TIMINGS for row in ("baseline", "+DEMA+RMA+CenterRep"))
        }
        for s in (0, 1)
    }
    rows = split_study_differences(by_seed, resamples=300)
    assert [(r["timing"], r["seed"]) for r in rows] == [(t, s) for t in SPLIT_TIMINGS for s in (0, 1, "all")]
    assert all(r["paper_diff"] == pytest.approx(11.54) for r in rows)
    # the leaky timing tests copies of 10 images: its bootstrap resamples those 10, not 20 "images"
    assert {r["timing"]: r["n_scenes"] for r in rows} == {"split first": 20, "expanded first": 10}


@pytest.mark.slow
def test_the_split_study_trains_both_timings_and_only_the_leaky_one_tests_copies_of_training_images(tmp_path):
    from emr_lib.experiments.tables import split_study_differences, split_study_runs
    from emr_lib.notebook import Context

    ctx = Context("06_ablation", "quick", "synthetic", "cpu", 0, tmp_path / "runs", tmp_path / "figures")
    tiny = {"synthetic_n": 20, "synthetic_size": 32, "size": 32, "epochs": 1}
    records = {
        row: ctx.run(spec.name, spec.model, spec.options, progress=False, **{**spec.overrides, **tiny})
        for row, spec in split_study_runs().items()
    }
    leaky, honest = records["baseline, expanded first"], records["baseline, split first"]
    from emr_lib.data import original_of

    originals = lambda names: {original_of(name) for name in names}  # noqa: E731
    splits = {
        key: (tmp_path / "runs" / "quick" / "ablation_baseline_leaky" / "splits" / f"{key}.txt").read_text().split()
        for key in ("train", "val")
    }
    assert originals(splits["train"]) & originals(splits["val"])  # copies of one image on both sides
    assert len(leaky["test_per_image"]) == 30 and len(honest["test_per_image"]) == 4  # 20 % of 148 copies, of 20
    assert honest["expansion"]["copies"] > 0
    rows = split_study_differences({0: records}, resamples=200)
    assert [r["timing"] for r in rows] == ["split first", "expanded first"]
