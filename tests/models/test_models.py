import pytest
import torch

from emr_lib.experiments.efficiency import count_parameters
from emr_lib.models import DEMA, PretrainedWeightsError, RefConv, build_model, deploy, list_models

ALL_MODELS = ["hrnet", "emr_hrnet", "deeplabv3", "pspnet", "segformer", "unet_vgg", "se_unet"]
SMALL = {"hrnet": {"width": "18_small"}, "emr_hrnet": {"width": "18_small"}}


def test_list_models_names_every_model():
    assert sorted(list_models()) == sorted(ALL_MODELS)


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_every_model_maps_images_to_logits(name, size):
    model = build_model(name, num_classes=2, **SMALL.get(name, {})).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, *size))
    assert out.shape == (2, 2, *size)


@pytest.mark.parametrize("width", [18, 32, 48])
def test_hrnet_widths_build(width):
    model = build_model("emr_hrnet", width=width).eval()
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_hrnet_w32_has_table7_parameter_count():
    assert count_parameters(build_model("hrnet", num_classes=21)) == 29_547_477


def test_emr_hrnet_w32_is_within_the_papers_budget():
    params = count_parameters(build_model("emr_hrnet", num_classes=21))
    assert abs(params - 31.21e6) <= 0.5e6, params


def test_every_emr_hrnet_parameter_gets_a_gradient():
    model = build_model("emr_hrnet", width=32).train()
    out = model(torch.randn(2, 3, 64, 64))
    torch.nn.functional.cross_entropy(out, torch.randint(0, 2, (2, 64, 64))).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().max() == 0]
    assert not dead, f"parameters without gradient: {dead[:10]}"


def _ema_params(c: int, groups: int) -> int:
    cg = c // groups
    return 10 * cg * cg + 4 * cg  # 1x1 conv + 3x3 conv (with biases) + GroupNorm affine


def _rma_params(channels: list[int]) -> int:
    total = 0
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        total += c_out * c_in + 2 * c_in  # lateral 1x1 (c_out -> c_in) + BN
        total += 9 * c_out * c_in + 2 * c_out + 9 * c_out * c_out + 2 * c_out  # two RefConvs + BNs
        heads = max(1, c_out // 32)
        total += 4 * c_out * c_out + 27 * c_out + heads + 2 * c_out  # MDTA
    return total


def test_ablation_switches_change_parameters_as_expected():
    def n(**kw):
        return count_parameters(build_model("emr_hrnet", num_classes=21, **kw))

    hrnet = count_parameters(build_model("hrnet", num_classes=21))
    baseline = n(dema=False, rma=False)
    dema_only = n(rma=False)
    rma_only = n(dema=False)
    full = n()
    light_dema_only = n(rma=False, dema_blocks="last")
    assert baseline == hrnet  # dropout adds no parameters
    # the lighter variant's 26 DEMA blocks at W32: branches of 32/64/128/256 channels hold 8/8/7/3 of them
    assert light_dema_only - hrnet == 8 * _ema_params(32, 8) + 8 * _ema_params(64, 16) + 7 * _ema_params(
        128, 32
    ) + 3 * _ema_params(256, 32)
    # the paper's placement converts all four basic blocks of every branch: four times as many
    assert dema_only - hrnet == 4 * (light_dema_only - hrnet)
    assert rma_only - hrnet == _rma_params([32, 64, 128, 256])
    assert full - hrnet == (dema_only - hrnet) + (rma_only - hrnet)


@pytest.mark.parametrize("block", ["gam", "parnet", "cbam"])
def test_table5_blocks_replace_dema(block):
    model = build_model("emr_hrnet", width="18_small", block=block, rma=False)
    names = {type(m).__name__ for m in model.modules()}
    assert {"GAM": "gam", "ParNetAttention": "parnet", "CBAM": "cbam"}.keys() & names
    assert "EMA" not in names
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, 64, 64)).shape == (1, 2, 64, 64)


@pytest.mark.parametrize(
    "width, placement, expected", [("18_small", "all", 18), (32, "all", 104), ("18_small", "last", 9), (32, "last", 26)]
)
def test_dema_blocks_are_dilated(width, placement, expected):
    model = build_model("emr_hrnet", width=width, dema_blocks=placement)
    blocks = [m for m in model.modules() if isinstance(m, DEMA)]
    assert len(blocks) == expected  # "all": every basic block; "last": one per branch per module
    assert all(b.conv1.dilation == (1, 1) and b.conv2.dilation == (2, 2) for b in blocks)
    assert len([m for m in model.modules() if isinstance(m, RefConv)]) == 6


def test_default_emr_hrnet_has_the_papers_dema_placement():
    model = build_model("emr_hrnet", width=32)
    plain_basic = [m for m in model.backbone.modules() if type(m).__name__ == "BasicBlock"]
    assert plain_basic == []  # no plain basic block is left in stages 2-4
    assert sum(isinstance(m, DEMA) for m in model.modules()) == 104
    with pytest.raises(ValueError, match="dema_blocks"):
        build_model("emr_hrnet", width="18_small", dema_blocks="first")


def test_deploy_converts_every_refconv_without_changing_outputs():
    model = build_model("emr_hrnet", width="18_small").eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
        deploy(model)
        after = model(x)
    assert not any(isinstance(m, RefConv) for m in model.modules())
    assert (before - after).abs().max() < 1e-4


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("hrnet_v9")
    with pytest.raises(ValueError, match="width"):
        build_model("hrnet", width=33)
    with pytest.raises(ValueError, match="block"):
        build_model("emr_hrnet", block="se")
    with pytest.raises(ValueError, match="divisible by 32"):
        build_model("hrnet", width="18_small")(torch.rand(1, 3, 50, 64))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_builds_without_network(no_network, name):
    assert count_parameters(build_model(name, **SMALL.get(name, {}))) > 0


@pytest.mark.parametrize("name", ["hrnet", "pspnet"])
def test_pretrained_download_without_network_says_what_to_do(no_network, monkeypatch, name):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets
    with pytest.raises(PretrainedWeightsError, match="pretrained='/path/to/weights.pth'"):
        build_model(name, pretrained=True, **SMALL.get(name, {}))


def test_pretrained_from_a_local_file(tmp_path):
    source = build_model("hrnet", width="18_small")
    path = tmp_path / "hrnet_w18_small.pth"
    torch.save(source.backbone.state_dict(), path)
    for name in ("hrnet", "emr_hrnet"):
        model = build_model(name, width="18_small", pretrained=str(path))
        assert torch.equal(model.backbone.conv1.weight, source.backbone.conv1.weight)
        src_block = source.backbone.stage2[0].branches[0][-1]
        dst_block = model.backbone.stage2[0].branches[0][-1]
        assert torch.equal(dst_block.conv2.weight, src_block.conv2.weight)  # DEMA keeps timm's names


def test_pretrained_file_errors_name_the_file(tmp_path):
    with pytest.raises(PretrainedWeightsError, match="not found"):
        build_model("hrnet", width="18_small", pretrained=tmp_path / "missing.pth")
    wrong = tmp_path / "wrong.pth"
    torch.save({"something": torch.zeros(3)}, wrong)
    with pytest.raises(PretrainedWeightsError, match="wrong.pth"):
        build_model("pspnet", pretrained=wrong)
