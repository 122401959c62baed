"""HRNetV2 for segmentation and EMR-HRNet (Jin, Liu, Huang, Sensors 2024).

Both models share one layout: a timm HRNet backbone (``features_only=True,
feature_location=''``) giving four branches at 1/4, 1/8, 1/16 and 1/32 of the
input, an optional neck, and the HRNetV2 head (upsample, concatenate, 1x1 conv +
BN + ReLU, 1x1 classifier, upsample to the input).

EMR-HRNet changes three things:

1. **DEMA blocks** in the backbone, where the paper puts them: "the DEMA block, which
   replaced the 3x3 convolution layers in the backbone network of the HRNet model"
   (section 3.3). HRNet's resolution-keeping 3x3 convolutions sit in pairs inside the
   residual basic blocks of stages 2-4 (104 blocks at W18/W32/W48, 18 at "18_small"), so
   by default (``dema_blocks="all"``) every one of those blocks becomes a
   :class:`~emr_lib.models.blocks.DEMA`: its first 3x3 conv stays as it is, its second
   3x3 conv is replaced by the same conv dilated by 2, and EMA re-weights the result
   before the residual sum (the residual is the paper's "residual connections" that
   counter dilation's gridding). Why this reading: the paper's DEMA figure is missing,
   its text names a dilated convolution, EMA and a residual connection, and a basic
   block is exactly a residual pair of 3x3 convs; dilating both would leave no
   undilated 3x3 path in the block. Not converted: the stem's two stride-2 convs, the
   bottleneck stage 1, and the transition and fusion convs (they change resolution or
   width, not the 3x3 feature layers the sentence speaks of).
   ``dema_blocks="last"`` is **the kit's lighter variant**: only the last basic block of
   every branch in every high-resolution module (26 of 104 at W32, 9 of 18 at
   "18_small", just before each cross-resolution fusion), which the kit used by default
   before; EMA's many small ops make the paper placement slower on a CPU than its
   FLOPs suggest (notebook 07 and ``python -m emr_lib efficiency`` measure both). Conv
   weights keep timm's names, so ImageNet HRNet weights still load.
2. **The RMA pyramid** (our wiring; the paper's figures are missing): a top-down
   pass with 1x1 laterals spreads deep semantics to the fine branches, then a
   bottom-up pass of RAD blocks (two RefConv 3x3 + BN + ReLU, then MDTA; the first
   RefConv has stride 2) carries the refined fine detail back down::

       branch      top-down                      bottom-up (RAD = RefConv-Attention-Downsampling)
       f4 1/32 8C  p4 = f4                       n4 = p4 + RAD(n3)   8C
       f3 1/16 4C  p3 = f3 + up(lat3(p4))        n3 = p3 + RAD(n2)   4C
       f2 1/8  2C  p2 = f2 + up(lat2(p3))        n2 = p2 + RAD(n1)   2C
       f1 1/4  C   p1 = f1 + up(lat1(p2))        n1 = p1             C
                                                 head(n1, n2, n3, n4) -> logits

   The pyramid keeps each branch's width, so the head is HRNetV2's. At W32 it adds
   about 1.6M parameters and 1.8 GFLOPs at 480 px (paper: +1.66M, +1.97G).
3. **Dropout 0.5** before the classifier (the paper's regularisation).

``dema=False, rma=False`` gives HRNetV2 plus dropout: the ablation baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import timm
import torch
import torch.nn.functional as F
from timm.models.resnet import BasicBlock
from torch import nn

from .blocks import ATTENTION_BLOCKS, DEMA, RAD, AttentionBasicBlock
from .weights import check_hub, load_local_weights, pretrained_download_error

__all__ = ["HRNetV2", "HRNetV2Head", "RMAPyramid", "hrnet", "emr_hrnet", "HRNET_WIDTHS", "DEMA_PLACEMENTS"]

HRNET_WIDTHS = {18: "hrnet_w18", 32: "hrnet_w32", 48: "hrnet_w48", "18_small": "hrnet_w18_small"}


def _upsample(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=True)


class HRNetV2Head(nn.Module):
    """HRNetV2 head: four branches (B, C_i, H/2^(i+1), W/2^(i+1)) -> logits (B, classes, H/4, W/4).

    Upsample every branch to the finest, concatenate (sum C_i channels), then
    Conv1x1 (with bias) + BN + ReLU, optional dropout, Conv1x1 classifier.
    """

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.fuse = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 1), nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True)
        )
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(in_channels, num_classes, 1)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        x = torch.cat([features[0], *(_upsample(f, size) for f in features[1:])], dim=1)
        return self.classifier(self.dropout(self.fuse(x)))


class RMAPyramid(nn.Module):
    """RefConv + MDTA feature pyramid: four branches -> four branches of the same shapes.

    See the module docstring for the wiring diagram.
    """

    def __init__(self, channels: Sequence[int]):
        super().__init__()
        self.lateral = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels[i + 1], channels[i], 1, bias=False), nn.BatchNorm2d(channels[i]))
            for i in range(len(channels) - 1)
        )
        self.down = nn.ModuleList(RAD(channels[i], channels[i + 1]) for i in range(len(channels) - 1))

    def forward(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        top_down = [features[-1]]
        for i in range(len(features) - 2, -1, -1):
            coarse = self.lateral[i](top_down[0])
            top_down.insert(0, features[i] + _upsample(coarse, features[i].shape[-2:]))
        out = [top_down[0]]
        for i, rad in enumerate(self.down):
            out.append(top_down[i + 1] + rad(out[i]))
        return out


class HRNetV2(nn.Module):
    """HRNet backbone + optional neck + HRNetV2 head: (B, 3, H, W) -> (B, classes, H, W).

    H and W must be divisible by 32.
    """

    def __init__(self, backbone: nn.Module, num_classes: int, neck: nn.Module | None = None, dropout: float = 0.0):
        super().__init__()
        self.backbone = backbone
        self.branch_channels = list(backbone.feature_info.channels()[1:])
        self.neck = neck if neck is not None else nn.Identity()
        self.head = HRNetV2Head(sum(self.branch_channels), num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 32 or x.shape[-2] % 32:
            raise ValueError(f"input height and width must be divisible by 32, got {tuple(x.shape[-2:])}")
        features = self.backbone(x)[1:]  # drop the 1/2 stem output
        logits = self.head(self.neck(features))
        return _upsample(logits, x.shape[-2:])


def _timm_name(width) -> str:
    key = int(width) if str(width).isdigit() else width
    if key not in HRNET_WIDTHS:
        raise ValueError(f"unknown HRNet width {width!r}; choose one of {list(HRNET_WIDTHS)}")
    return HRNET_WIDTHS[key]


def _hrnet_backbone(width, pretrained) -> nn.Module:
    name = _timm_name(width)
    kwargs = dict(features_only=True, feature_location="")
    if pretrained is True:
        repository = timm.models.get_pretrained_cfg(name).hf_hub_id
        check_hub(repository, f"{name} (timm)")
        try:
            return timm.create_model(name, pretrained=True, **kwargs)
        except Exception as err:  # hub errors vary by version; all mean "not downloadable here"
            raise pretrained_download_error(f"{name} (timm)", err, repository) from err
    backbone = timm.create_model(name, pretrained=False, **kwargs)
    if pretrained:
        load_local_weights(backbone, pretrained, what=f"timm '{name}' backbone")
    return backbone


DEMA_PLACEMENTS = {
    "all": "every basic block of stages 2-4 (the paper's placement)",
    "last": "the last basic block of each branch in each module (the kit's lighter variant)",
}


def _replace_basic_blocks(backbone: nn.Module, make_block, which: str = "all") -> int:
    """Swap timm ``BasicBlock``s (stages 2-4) for ``make_block(channels)``, keeping conv/BN weights.

    ``which="all"``: every basic block (the paper's placement; 104 at W32);
    ``which="last"``: the last block of each branch in each high-resolution module
    (26 of 104), once per branch just before the module's cross-resolution fusion.
    """
    if which not in DEMA_PLACEMENTS:
        raise ValueError(f"dema_blocks must be one of {list(DEMA_PLACEMENTS)}, got {which!r}")
    replaced = 0
    for branch in list(backbone.modules()):
        children = list(branch.named_children())
        if not isinstance(branch, nn.Sequential) or not children:
            continue
        if not all(isinstance(child, BasicBlock) for _, child in children):
            continue
        for name, child in children if which == "all" else children[-1:]:
            if child.downsample is not None or child.conv1.stride != (1, 1):
                raise RuntimeError("unexpected HRNet basic block with a downsample path")
            block = make_block(child.conv1.in_channels)
            block.load_state_dict(child.state_dict(), strict=False)
            setattr(branch, name, block)
            replaced += 1
    return replaced


def hrnet(num_classes: int = 2, width=32, pretrained=False, dropout: float = 0.0) -> HRNetV2:
    """HRNetV2 segmentation model (timm backbone + HRNetV2 head)."""
    return HRNetV2(_hrnet_backbone(width, pretrained), num_classes, dropout=dropout)


def emr_hrnet(
    num_classes: int = 2,
    width=32,
    dema: bool = True,
    rma: bool = True,
    block: str = "dema",
    dilation: int | None = None,
    dema_blocks: str = "all",
    dropout: float = 0.5,
    pretrained=False,
) -> HRNetV2:
    """EMR-HRNet and its ablations.

    Args:
        num_classes: output classes (2: background, landslide).
        width: HRNet width, 18, 32, 48 or "18_small".
        dema: put attention blocks in the backbone (False: plain HRNet blocks).
        rma: add the RMA pyramid between backbone and head.
        block: which attention the backbone blocks get, "dema" (dilated conv + EMA),
            "gam", "parnet" or "cbam" (plain 3x3 convs plus that attention; Table 5).
        dilation: dilation of the blocks' second conv (default 2 for "dema", 1 otherwise).
        dema_blocks: "all" (default, the paper's placement: every basic block of stages
            2-4, 104 at W18/W32/W48, 18 at "18_small") or "last" (the kit's lighter
            variant: the last basic block of every branch in every high-resolution
            module, 26 of 104, 9 of 18).
        dropout: dropout before the classifier.
        pretrained: False, True (download ImageNet HRNet weights) or a local file.
    """
    if block not in ATTENTION_BLOCKS:
        raise ValueError(f"unknown block {block!r}; choose one of {list(ATTENTION_BLOCKS)}")
    backbone = _hrnet_backbone(width, pretrained)
    if dema:
        if block == "dema":
            make_block = lambda c: DEMA(c, dilation=2 if dilation is None else dilation)  # noqa: E731
        else:
            attention = ATTENTION_BLOCKS[block]
            make_block = lambda c: AttentionBasicBlock(c, attention(c), dilation=dilation or 1)  # noqa: E731
        _replace_basic_blocks(backbone, make_block, dema_blocks)
    channels = list(backbone.feature_info.channels()[1:])
    neck = RMAPyramid(channels) if rma else None
    return HRNetV2(backbone, num_classes, neck=neck, dropout=dropout)
