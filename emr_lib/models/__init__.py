"""Models: one entry point, :func:`build_model`, and the blocks they are made of.

>>> from emr_lib.models import build_model, list_models
>>> model = build_model("emr_hrnet", num_classes=2, width="18_small")

Every model maps (B, 3, H, W) to logits (B, num_classes, H, W) for H, W divisible by 32.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from .blocks import CBAM, DEMA, EMA, GAM, MDTA, RAD, AttentionBasicBlock, ParNetAttention, RefConv
from .comparison import SMP_MODELS, smp_model
from .hrnet import HRNetV2, RMAPyramid, emr_hrnet, hrnet
from .weights import PretrainedWeightsError

__all__ = [
    "count_parameters",
    "build_model",
    "list_models",
    "deploy",
    "backbone_of",
    "EMA",
    "MDTA",
    "RefConv",
    "DEMA",
    "RAD",
    "CBAM",
    "GAM",
    "ParNetAttention",
    "AttentionBasicBlock",
    "HRNetV2",
    "RMAPyramid",
    "PretrainedWeightsError",
    "explicit_options",
]

_BUILDERS = {"hrnet": hrnet, "emr_hrnet": emr_hrnet} | {name: partial(smp_model, name) for name in SMP_MODELS}


# Options whose default changed, as (the default now, the default before): a run or checkpoint
# that does not name one was made with the old default. emr_hrnet's DEMA placement became the
# paper's ("all") at commit 0a02350; before, it was the kit's lighter variant ("last").
_CHANGED_DEFAULTS = {"emr_hrnet": {"dema_blocks": ("all", "last")}}


def explicit_options(name: str, options: dict, stored: bool = False) -> dict:
    """``options`` with every option whose default changed spelled out, so that a run's recorded
    settings say which model it trained: the default now for a new run, the default before
    (``stored=True``) for the options of a run or checkpoint written before the change."""
    changed = _CHANGED_DEFAULTS.get(name, {})
    return {**{key: old if stored else new for key, (new, old) in changed.items()}, **options}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return list(_BUILDERS)


def build_model(name: str, num_classes: int = 2, **options) -> nn.Module:
    """Build model ``name`` (see :func:`list_models`) with ``num_classes`` output channels.

    Options by model:
        hrnet: ``width`` (18, 32, 48, "18_small"; default 32), ``dropout`` (0), ``pretrained``.
        emr_hrnet: ``width``, ``dema`` (True), ``rma`` (True), ``block`` ("dema", "gam",
            "parnet", "cbam"), ``dema_blocks`` ("all", the paper's placement, or "last", the
            kit's lighter variant), ``dilation``, ``dropout`` (0.5), ``pretrained``.
        deeplabv3, pspnet, segformer, unet_vgg, se_unet: ``pretrained`` and smp options.

    ``pretrained`` is False (default, builds offline), True (downloads ImageNet weights,
    needs a network) or the path of a local weights file.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {list_models()}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    return _BUILDERS[name](num_classes=num_classes, **options)


def backbone_of(model: nn.Module) -> nn.Module | None:
    """The pretrainable part of a model: HRNet's backbone or an smp model's encoder (None if neither)."""
    return getattr(model, "backbone", None) or getattr(model, "encoder", None)


def deploy(model: nn.Module) -> nn.Module:
    """Convert a model for inference, in place: every :class:`RefConv` becomes a plain conv.

    Returns the model in eval mode. Outputs are unchanged (up to float rounding).
    """
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, RefConv):
                setattr(parent, child_name, child.to_conv())
    return model.eval()


def count_parameters(model: nn.Module, trainable_only: bool = False, convention: str = "torch") -> int:
    """Number of parameters (frozen buffers such as RefConv's base kernel are not parameters);
    the training loop records it and Table 7 reports it.

    ``convention="modules"`` counts only the parameters of leaf modules, as thop's total does:
    a bare ``nn.Parameter`` of a composite module (MDTA's temperature) is left out.
    """
    if convention == "modules":
        leaves = [m for m in model.modules() if not list(m.children())]
        params = [p for m in leaves for p in m.parameters(recurse=False)]
    elif convention == "torch":
        params = list(model.parameters())
    else:
        raise ValueError(f"convention must be 'torch' or 'modules', got {convention!r}")
    return sum(p.numel() for p in params if p.requires_grad or not trainable_only)
