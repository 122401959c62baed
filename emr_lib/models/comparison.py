"""The paper's comparison models, built with segmentation-models-pytorch.

| name        | paper row   | smp model                                   |
|-------------|-------------|---------------------------------------------|
| deeplabv3   | DeeplabV3   | DeepLabV3+ with a MobileNetV2 encoder       |
| pspnet      | PSPNet      | PSPNet with a MobileNetV2 encoder           |
| segformer   | SegFormer   | SegFormer with a MiT-b0 encoder             |
| unet_vgg    | Unet (VGG)  | U-Net with a VGG16 encoder                  |
| se_unet     | SE-Unet     | U-Net (VGG16) with scSE decoder attention   |

The paper's numbers come from the "bubbliiiing" implementations; smp's decoders
differ slightly, so parameter counts differ by a few percent (the efficiency
report shows both).
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
from torch import nn

from .weights import load_local_weights, pretrained_download_error

SMP_MODELS: dict[str, tuple[type, dict]] = {
    "deeplabv3": (smp.DeepLabV3Plus, dict(encoder_name="mobilenet_v2")),
    "pspnet": (smp.PSPNet, dict(encoder_name="mobilenet_v2")),
    "segformer": (smp.Segformer, dict(encoder_name="mit_b0")),
    "unet_vgg": (smp.Unet, dict(encoder_name="vgg16")),
    "se_unet": (smp.Unet, dict(encoder_name="vgg16", decoder_attention_type="scse")),
}


def smp_model(name: str, num_classes: int = 2, pretrained=False, **options) -> nn.Module:
    """Build comparison model ``name``; ``pretrained`` is False, True (ImageNet download) or a file."""
    cls, defaults = SMP_MODELS[name]
    kwargs = {**defaults, **options, "classes": num_classes}
    if pretrained is True:
        try:
            return cls(encoder_weights="imagenet", **kwargs)
        except Exception as err:  # download errors differ between hub versions
            raise pretrained_download_error(f"smp '{name}' ({kwargs['encoder_name']} encoder)", err) from err
    model = cls(encoder_weights=None, **kwargs)
    if pretrained:
        load_local_weights(model.encoder, pretrained, what=f"{kwargs['encoder_name']} encoder")
    return model
