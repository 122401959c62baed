import json
import math

import numpy as np
import pytest
import torch

from emr_lib.uncertainty import seed_summary


def test_seed_summary_gives_mean_spread_and_range():
    def record(miou):
        return {"test_metrics": {"mIoU": miou}}

    rows = seed_summary({"+DEMA": {0: record(0.80), 1: record(0.84), 2: record(0.82)}, "one": {0: record(0.5)}})
    assert rows[0]["seeds"] == "0, 1, 2"
    assert rows[0]["mIoU_mean"] == pytest.approx(82.0)
    assert rows[0]["mIoU_sd"] == pytest.approx(2.0)
    assert (rows[0]["mIoU_min"], rows[0]["mIoU_max"]) == pytest.approx((80.0, 84.0))
    assert rows[1]["mIoU_mean"] == pytest.approx(50.0) and math.isnan(rows[1]["mIoU_sd"])


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
    from emr_lib.metrics import segmentation_metrics
    from emr_lib.uncertainty import paired_bootstrap

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
    from emr_lib.uncertainty import _miou, bootstrap_interval

    per_image = _per_image(0)
    low, high = bootstrap_interval(per_image, resamples=1000)
    miou = 100 * _miou(np.sum(list(per_image.values()), axis=0))
    assert low < miou < high and high - low < 10
    assert bootstrap_interval(per_image, resamples=1000) == (low, high)  # seeded
    alike = dict.fromkeys(("a", "b", "c"), [[900, 20], [30, 50]])
    assert bootstrap_interval(alike, resamples=200)[0] == pytest.approx(bootstrap_interval(alike, resamples=200)[1])
