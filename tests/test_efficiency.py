import json

from torch import nn

from emr_lib.cli import main
from emr_lib.efficiency import benchmark_steps, count_flops, count_parameters, speed_rows
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
        main(["efficiency", "--models", "hrnet", "emr_hrnet", "--sizes", "64", "--classes", "2", "--out", str(out)])
        == 0
    )
    record = json.loads((out / "efficiency.json").read_text())
    assert [row["model"] for row in record["rows"]] == ["hrnet", "emr_hrnet"]
    assert record["provenance"]["commit"]
    assert "| hrnet |" in (out / "efficiency.md").read_text()
    assert "thop" in capsys.readouterr().out


def test_efficiency_command_rejects_unknown_models(capsys):
    assert main(["efficiency", "--models", "resnet9000", "--out", "/nonexistent"]) == 2
    assert "unknown model" in capsys.readouterr().err
