import pytest
import torch
from torch import nn

from emr_lib.models import CBAM, DEMA, EMA, GAM, MDTA, RAD, ParNetAttention, RefConv
from emr_lib.models.blocks import ema_groups, mdta_heads


@pytest.mark.parametrize("channels", [16, 18, 32, 36, 64])
@pytest.mark.parametrize("block", [EMA, MDTA, CBAM, GAM, ParNetAttention, DEMA])
def test_attention_blocks_preserve_shape(block, channels):
    x = torch.randn(2, channels, 12, 10)
    assert block(channels)(x).shape == x.shape


@pytest.mark.parametrize(
    "channels, groups", [(16, 4), (18, 3), (32, 8), (36, 9), (48, 12), (64, 16), (128, 32), (256, 32), (3, 1)]
)
def test_ema_group_rule_fits_every_hrnet_width(channels, groups):
    assert ema_groups(channels) == groups
    assert channels % groups == 0


def test_ema_rejects_impossible_groups():
    with pytest.raises(ValueError, match="not divisible"):
        EMA(18, groups=4)


def test_ema_reweights_input():
    ema = EMA(32)
    x = torch.randn(2, 32, 8, 8)
    out = ema(x)
    ratio = out / x  # EMA multiplies the input by a sigmoid gate in (0, 1)
    assert torch.all((ratio > 0) & (ratio < 1))


def test_mdta_heads_divide_channels():
    for c in (16, 18, 32, 36, 64, 72, 128, 144, 256):
        assert c % mdta_heads(c) == 0
    assert mdta_heads(256) == 8


def test_mdta_parameter_count_matches_formula():
    c = 64
    heads = mdta_heads(c)
    expected = 4 * c * c + 27 * c + heads + 2 * c  # qkv, dwconv, proj, temperature, layer norm
    assert sum(p.numel() for p in MDTA(c).parameters()) == expected


def test_rad_downsamples_and_changes_width():
    assert RAD(32, 64)(torch.randn(2, 32, 16, 16)).shape == (2, 64, 8, 8)


def test_refconv_trains_from_scratch():
    """The pitfall of the authors' code: a zero base kernel gives zero output and zero gradient."""
    conv = RefConv(8, 16, 3)
    x = torch.randn(2, 8, 10, 10)
    out = conv(x)
    assert out.abs().max() > 0
    out.square().mean().backward()
    assert conv.refocus.weight.grad is not None and conv.refocus.weight.grad.abs().max() > 0
    assert not any(buf.requires_grad for buf in conv.buffers())  # base kernel is frozen


def test_refconv_trainable_parameters_equal_a_plain_convs():
    conv = RefConv(8, 16, 3)
    assert sum(p.numel() for p in conv.parameters()) == 16 * 8 * 3 * 3


@pytest.mark.parametrize(
    "cin, cout, stride, groups, dilation", [(8, 16, 1, 1, 1), (16, 32, 2, 1, 1), (16, 16, 1, 4, 1), (8, 8, 1, 1, 2)]
)
def test_refconv_reparameterises_to_plain_conv(cin, cout, stride, groups, dilation):
    ref = RefConv(cin, cout, 3, stride=stride, groups=groups, dilation=dilation)
    conv = ref.to_conv()
    assert type(conv) is nn.Conv2d
    x = torch.randn(2, cin, 17, 15)
    with torch.no_grad():
        assert (ref(x) - conv(x)).abs().max() < 1e-5


def test_refconv_accepts_a_pretrained_base_kernel():
    base = torch.randn(4, 2, 3, 3)
    ref = RefConv(2, 4, 3, base_weight=base)
    assert torch.equal(ref.base_weight, base)
    with pytest.raises(ValueError, match="shape"):
        RefConv(2, 8, 3, base_weight=base)
