import json
import math

import numpy as np
import pytest
import torch

from emr_lib.evaluation.uncertainty import CompareError, seed_summary


def test_seed_summary_gives_mean_spread_and_range():
    def record(miou):
        return {"test_metrics": {"mIoU": miou}}

    rows = seed_summary({"+DEMA": {0: record(0.80), 1: record(0.84), 2: record(0.82)}, "one": {0: record(0.5)}})
    assert rows[0]["seeds"] == "0, 1, 2"
    assert rows[0]["mIoU_mean"] == pytest.approx(82.0)
    assert rows[0]["mIoU_sd"] == pytest.approx(2.0)
    assert (rows[0]["mIoU_min"], rows[0]["mIoU_max"]) == pytest.approx((80.0, 84.0))
    assert rows[1]["mIoU_mean"] == pytest.approx(50.0) and math.isnan(rows[1]["mIoU_sd"])
    single = seed_summary({"gam": {0: record(0.8)}, "dema": {0: record(0.81)}})  # one seed: no spread to show
    assert "mIoU_sd" not in single[0] and single[1]["mIoU_mean"] == pytest.approx(81.0)


def _per_image(seed, n=30, skill=0.8):
    import numpy as np

    rng = np.random.default_rng(seed)
    matrices = {}
    for i in range(n):
        landslide, background = rng.integers(50, 400), rng.integers(2000, 4000)
        tp = int(landslide * skill * rng.uniform(0.8, 1.0))
        fp = int(rng.integers(0, 60))
        matrices[f"img{i:03d}"] = [[int(background) - fp, fp], [int(landslide) - tp, tp]]
    return matrices


def test_bootstrap_of_a_run_with_itself_is_zero_and_of_two_runs_holds_their_difference():
    from emr_lib.evaluation.metrics import segmentation_metrics
    from emr_lib.evaluation.uncertainty import paired_bootstrap

    a, b = _per_image(0), _per_image(1, skill=0.6)
    same = paired_bootstrap(a, a, resamples=2000)
    assert same["mIoU_diff"] == same["ci_low"] == same["ci_high"] == 0.0
    result = paired_bootstrap(a, b, resamples=2000, seed=3)
    total = torch.tensor(np.sum(list(a.values()), axis=0))
    assert result["mIoU_a"] == pytest.approx(100 * segmentation_metrics(total)["mIoU"])  # metrics.py's mIoU
    assert result["ci_low"] < result["mIoU_diff"] < result["ci_high"] and result["n_images"] == 30
    assert paired_bootstrap(a, b, resamples=2000, seed=3) == result  # seeded
    assert set(result) >= {"mIoU_a", "mIoU_b", "mIoU_diff", "ci_low", "ci_high", "n_images", "resamples"}


def test_compare_names_the_run_and_what_is_missing(tmp_path, capsys):
    from emr_lib.cli import main

    for name, per_image in (("a", _per_image(0)), ("b", _per_image(1, skill=0.6)), ("c", _per_image(2, n=12))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "record.json").write_text(json.dumps({"test_per_image": per_image}))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "record.json").write_text(json.dumps({"status": "finished"}))
    out = tmp_path / "ab.json"
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--resamples", "500", "--json", str(out)]) == 0
    assert "paired bootstrap interval" in capsys.readouterr().out and json.loads(out.read_text())["resamples"] == 500
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "c")]) == 2
    assert "different test images (30 and 12, 12 in common)" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no record.json" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "old"), str(tmp_path / "a")]) == 2
    assert "old: record.json has no per-image test results" in capsys.readouterr().err


def test_bootstrap_interval_of_one_run_holds_its_miou_and_has_no_width_when_images_agree():
    from emr_lib.evaluation.uncertainty import bootstrap_interval
    from emr_lib.evaluation.uncertainty import miou as dataset_miou

    per_image = _per_image(0)
    low, high = bootstrap_interval(per_image, resamples=1000)
    miou = 100 * dataset_miou(np.sum(list(per_image.values()), axis=0))
    assert low < miou < high and high - low < 10
    assert bootstrap_interval(per_image, resamples=1000) == (low, high)  # seeded
    alike = dict.fromkeys(("a", "b", "c"), [[900, 20], [30, 50]])
    assert bootstrap_interval(alike, resamples=200)[0] == pytest.approx(bootstrap_interval(alike, resamples=200)[1])


def test_direction_reads_the_interval():
    from emr_lib.evaluation.uncertainty import direction

    assert direction(0.1, 2.0) == "better" and direction(-2.0, -0.1) == "worse"
    assert direction(-1.0, 1.0) == "unresolved" and direction(0.0, 1.0) == "unresolved"


def test_format_interval_writes_signed_values_and_reads_csv_strings():
    from emr_lib.evaluation.uncertainty import format_interval

    assert format_interval(1.234, -0.4, 2.851) == "+1.23 [-0.40, +2.85]"
    assert format_interval("-0.5", "-1.25", "0.0") == format_interval(-0.5, -1.25, 0.0) == "-0.50 [-1.25, +0.00]"


def test_seed_bootstrap_pools_seeds_and_widens_by_their_spread():
    from emr_lib.evaluation.uncertainty import CompareError, paired_bootstrap, seed_bootstrap

    reference = [_per_image(10 + s) for s in range(4)]
    # a model whose advantage depends on the seed: much better with two seeds, slightly worse with two
    skills = [0.95, 0.6, 0.95, 0.6]
    better = [_per_image(20 + s, skill=k) for s, k in enumerate(skills)]
    pairs = list(zip(better, reference))
    pooled = seed_bootstrap(pairs, resamples=2000)
    per_seed = [paired_bootstrap(a, b, resamples=2000) for a, b in pairs]
    assert pooled["mIoU_diff"] == pytest.approx(np.mean([r["mIoU_diff"] for r in per_seed]))
    assert pooled["per_seed"] == pytest.approx([r["mIoU_diff"] for r in per_seed])
    assert pooled["ci_low"] < pooled["mIoU_diff"] < pooled["ci_high"]
    widest = max(r["ci_high"] - r["ci_low"] for r in per_seed)
    assert pooled["ci_high"] - pooled["ci_low"] > widest  # the seed-to-seed spread counts
    assert pooled["n_seeds"] == 4 and pooled["n_images"] == 30
    assert seed_bootstrap(pairs, resamples=2000) == pooled  # seeded
    same = seed_bootstrap([(r, r) for r in reference], resamples=500)
    assert same["mIoU_diff"] == same["ci_low"] == same["ci_high"] == 0.0 and same["direction"] == "unresolved"
    steady = seed_bootstrap([(_per_image(30 + s, skill=0.95), r) for s, r in enumerate(reference)], resamples=500)
    assert steady["direction"] == "better"
    with pytest.raises(CompareError, match="other test images"):
        seed_bootstrap([pairs[0], (_per_image(1, n=12), _per_image(2, n=12))], resamples=100)


def test_paired_differences_add_a_pooled_row_with_direction_and_the_papers_effect():
    from emr_lib.evaluation.uncertainty import paired_differences

    def record(per_image):
        return {"test_per_image": per_image}

    by_seed = {s: {"hrnet": record(_per_image(10 + s)), "emr": record(_per_image(20 + s, skill=0.95))} for s in (0, 1)}
    rows = paired_differences(by_seed, "hrnet", resamples=500, paper={"emr": 1.46})
    assert [(r["row"], r["seed"], r["n_seeds"]) for r in rows] == [("emr", 0, 1), ("emr", 1, 1), ("emr", "all", 2)]
    for r in rows:
        assert r["direction"] in ("better", "worse", "unresolved") and r["paper_diff"] == 1.46
        assert r["paper_inside"] == (r["ci_low"] <= 1.46 <= r["ci_high"])
    assert rows[-1]["mIoU_diff"] == pytest.approx((rows[0]["mIoU_diff"] + rows[1]["mIoU_diff"]) / 2)
    single = paired_differences({0: by_seed[0]}, "hrnet", resamples=200)
    assert [r["seed"] for r in single] == [0] and "paper_inside" not in single[0]


def test_paired_statistic_bootstraps_false_positives_and_precision_image_by_image():
    from emr_lib.evaluation.uncertainty import (
        false_positive_share,
        landslide_iou,
        landslide_precision,
        paired_statistic,
    )

    # rows truth (background, landslide), columns prediction: a flags 10 of 100 background pixels, b none
    a = {f"img{i}": [[90, 10], [5, 15]] for i in range(6)}
    b = {f"img{i}": [[100, 0], [5, 15]] for i in range(6)}
    pair = paired_statistic(a, b, false_positive_share, resamples=200)
    assert pair["a"] == pytest.approx(10.0) and pair["b"] == 0.0 and pair["ci_low"] == pair["ci_high"] == 10.0
    precision = paired_statistic(a, b, landslide_precision, resamples=200)
    assert precision["diff"] == pytest.approx(100 * 15 / 25 - 100)
    assert paired_statistic(a, b, landslide_iou, resamples=200)["a"] == pytest.approx(100 * 15 / 30)


def test_tiles_are_resampled_by_scene_and_folds_pool_seeds_that_tested_other_scenes():
    from emr_lib.data import scene_of
    from emr_lib.evaluation.uncertainty import by_unit, miou, paired_differences, seed_bootstrap

    tiles = {f"scene{i // 4}_y{i % 4:05d}_x00000": m for i, m in enumerate(_per_image(0, n=12).values())}
    scenes = by_unit(tiles, scene_of)
    assert sorted(scenes) == ["scene0", "scene1", "scene2"]
    assert miou(np.array(list(scenes.values())).sum(0)) == miou(np.array(list(tiles.values())).sum(0))
    assert by_unit(tiles) is tiles

    def fold(seed, skill, first):  # seed s tests its own scenes
        return {f"s{first + i}_y00000_x00000": m for i, m in enumerate(_per_image(seed, n=8, skill=skill).values())}

    by_seed = {
        s: {"hrnet": {"test_per_image": fold(10 + s, 0.8, 8 * s), "config": {"split_folds": 3}}}
        | {"emr": {"test_per_image": fold(20 + s, 0.95, 8 * s), "config": {"split_folds": 3}}}
        for s in range(3)
    }
    rows = paired_differences(by_seed, "hrnet", resamples=500, unit_of=scene_of)
    pooled = rows[-1]
    assert pooled["seed"] == "all" and pooled["n_scenes"] == 24 and pooled["n_seeds"] == 3
    assert pooled["mIoU_diff"] == pytest.approx(np.mean([r["mIoU_diff"] for r in rows[:3]]))
    assert pooled["ci_low"] < pooled["mIoU_diff"] < pooled["ci_high"] and pooled["direction"] == "better"
    pairs = [(r["emr"]["test_per_image"], r["hrnet"]["test_per_image"]) for r in by_seed.values()]
    with pytest.raises(CompareError, match="other test images"):  # without folds, other images are a mistake
        seed_bootstrap(pairs, resamples=100)
    assert seed_bootstrap(pairs, resamples=300, folds=True)["design"] == "folds"
