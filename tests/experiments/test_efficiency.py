import json

import pytest
from torch import nn

from emr_lib.cli import main
from emr_lib.experiments.efficiency import benchmark_steps, count_flops, count_parameters, speed_rows
from emr_lib.models import RefConv, build_model


def test_flops_of_a_conv_match_the_formula():
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    assert count_flops(conv, (1, 3, 16, 16)) == 2 * 8 * 16 * 16 * 3 * 9
    assert count_flops(conv, (1, 3, 16, 16), convention="modules") == 2 * 8 * 16 * 16 * 3 * 9


def test_module_convention_misses_functional_convs_like_thop():
    ref = RefConv(3, 8, 3)
    torch_flops = count_flops(ref, (1, 3, 16, 16))
    assert torch_flops >= 2 * 8 * 16 * 16 * 3 * 9  # the main conv, plus refocusing the kernel
    assert count_flops(ref, (1, 3, 16, 16), convention="modules") < torch_flops


def test_emr_hrnet_costs_more_flops_than_hrnet_in_both_conventions():
    hrnet = build_model("hrnet", num_classes=21)
    emr = build_model("emr_hrnet", num_classes=21)
    for convention in ("torch", "modules"):
        extra = count_flops(emr, 480, convention) - count_flops(hrnet, 480, convention)
        assert extra > 0
    # the paper's HRNet row (80.18 GFLOPs, thop) is within 2 % of ours at 480 px
    assert abs(count_flops(hrnet, 480, "modules") / 1e9 - 80.18) / 80.18 < 0.02


def test_count_flops_leaves_the_model_usable():
    model = build_model("hrnet", width="18_small")
    count_flops(model, 64)
    assert next(model.parameters()).device.type == "cpu"
    assert count_parameters(model) == count_parameters(model, trainable_only=True)


def test_benchmark_reports_ratios_to_the_first_model():
    models = {"a": nn.Conv2d(3, 2, 1), "b": nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 2, 1))}
    result = benchmark_steps(models, batch_size=2, size=32, repeats=3, warmup=1)
    assert result["a"]["train_ratio"] == 1.0
    assert len(result["b"]["train_times_s"]) == 3
    assert result["b"]["train_images_per_s"] > 0


def test_speed_rows_time_comparison_models_beside_the_hrnet_family():
    rows = speed_rows(["hrnet", "pspnet"], width="18_small", size=32, batch_size=2, repeats=1)
    assert [(row["model"], row["width"]) for row in rows] == [("hrnet", "18_small"), ("pspnet", "-")]
    assert rows[0]["train_ratio"] == 1.0 and rows[1]["train_step_s"] > 0


def test_efficiency_command_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "eff"
    assert (
        main(
            ["efficiency", "--models", "hrnet", "emr_hrnet", "--sizes", "64", "--classes", "2", "--step-size", "0"]
            + ["--out", str(out)]
        )
        == 0
    )
    record = json.loads((out / "efficiency.json").read_text())
    assert [row["model"] for row in record["rows"]] == ["hrnet", "emr_hrnet"]
    placements = {row["model"]: row for row in record["placements"]}
    assert [placements[m]["dema_blocks"] for m in ("hrnet", "emr_hrnet", "emr_hrnet_light")] == [0, 104, 26]
    assert "train_ratio" not in placements["emr_hrnet"]  # --step-size 0: not timed
    assert "DEMA placements" in (out / "efficiency.md").read_text()
    assert record["provenance"]["commit"]
    assert "| hrnet |" in (out / "efficiency.md").read_text()
    assert "thop" in capsys.readouterr().out


def test_efficiency_command_rejects_unknown_models(capsys):
    assert main(["efficiency", "--models", "resnet9000", "--out", "/nonexistent"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_placement_table_sets_each_convention_beside_the_paper_alone():
    from emr_lib.experiments.efficiency import placement_table

    rows = {row["model"]: row for row in placement_table(width="18_small", size=64, step_size=32, repeats=1)}
    assert rows["hrnet"]["delta_GFLOPs_modules"] == 0 and rows["hrnet"]["paper_delta_GFLOPs"] is None
    paper, light = rows["emr_hrnet"], rows["emr_hrnet_light"]
    assert paper["paper_delta_params_M"] == pytest.approx(1.66) and paper["paper_delta_GFLOPs"] == pytest.approx(1.97)
    # more DEMA blocks cost more in both conventions, and the torch counter sees more than thop's
    assert paper["delta_GFLOPs_modules"] > light["delta_GFLOPs_modules"] > 0
    assert paper["delta_GFLOPs_torch"] > paper["delta_GFLOPs_modules"]
    assert paper["delta_params_M_torch"] >= paper["delta_params_M_modules"] > light["delta_params_M_modules"]
    assert rows["hrnet"]["train_ratio"] == 1.0 and paper["train_ratio"] > 0


def test_module_convention_counts_emas_convs_as_its_authors_run_them():
    from emr_lib.models import EMA

    ema = EMA(32, groups=8)
    h = w = 8
    expected = 2 * 32 * (h + w) * 4 + 2 * 32 * h * w * 4 * 9  # 1x1 on the pooled strip, 3x3 on the map
    assert count_flops(ema, (1, 32, h, w), convention="modules") == expected


def test_cost_rows_put_each_models_parameters_and_flops_per_part_in_millions_and_billions():
    from emr_lib.experiments.efficiency import cost_rows

    costs = {
        "HRNet": [{"part": "stem", "params": 2_000_000, "flops": 3e9}],
        "EMR-HRNet": [
            {"part": "stem", "params": 2_000_000, "flops": 3e9},
            {"part": "RMA", "params": 500_000, "flops": 1e9},
        ],
    }
    rows = cost_rows(costs)
    assert [r["part"] for r in rows] == ["stem", "RMA"]
    assert rows[0] == {
        "part": "stem",
        "HRNet params_M": 2.0,
        "HRNet GFLOPs": 3.0,
        "EMR-HRNet params_M": 2.0,
        "EMR-HRNet GFLOPs": 3.0,
    }
    assert rows[1]["HRNet params_M"] == 0 and rows[1]["EMR-HRNet params_M"] == 0.5
