"""The paper's comparison models, built with segmentation-models-pytorch.

| name        | paper row   | smp model                                   |
|-------------|-------------|---------------------------------------------|
| deeplabv3   | DeeplabV3   | DeepLabV3+ with a MobileNetV2 encoder       |
| pspnet      | PSPNet      | PSPNet with a MobileNetV2 encoder           |
| segformer   | SegFormer   | SegFormer with a MiT-b0 encoder             |
| unet_vgg    | Unet (VGG)  | U-Net with a VGG16 encoder                  |
| se_unet     | SE-Unet     | U-Net (VGG16) with scSE decoder attention   |

The paper's numbers come from the "bubbliiiing" implementations. smp's are lighter,
some by much: DeepLabV3+ has about a quarter fewer parameters and U-Net under half the
FLOPs at 512 px (notebook 07 and REPRODUCTION.md give both counts side by side).
"""

from __future__ import annotations

from torch import nn

from .weights import check_hub, load_local_weights, pretrained_download_error

# smp class name and its options; smp itself is imported when a comparison model is built,
# so the HRNet family works where smp is not installed (the GPU machines' image lacks it)
SMP_MODELS: dict[str, tuple[str, dict]] = {
    "deeplabv3": ("DeepLabV3Plus", dict(encoder_name="mobilenet_v2")),
    "pspnet": ("PSPNet", dict(encoder_name="mobilenet_v2")),
    "segformer": ("Segformer", dict(encoder_name="mit_b0")),
    "unet_vgg": ("Unet", dict(encoder_name="vgg16")),
    "se_unet": ("Unet", dict(encoder_name="vgg16", decoder_attention_type="scse")),
}


def smp_model(name: str, num_classes: int = 2, pretrained=False, **options) -> nn.Module:
    """Build comparison model ``name``; ``pretrained`` is False, True (ImageNet download) or a file."""
    import segmentation_models_pytorch as smp  # see SMP_MODELS: only needed for these models

    class_name, defaults = SMP_MODELS[name]
    cls = getattr(smp, class_name)
    kwargs = {**defaults, **options, "classes": num_classes}
    if pretrained is True:
        what = f"{kwargs['encoder_name']} (smp encoder)"
        settings = smp.encoders.encoders.get(kwargs["encoder_name"], {}).get("pretrained_settings", {})
        repository = settings.get("imagenet", {}).get("repo_id")
        check_hub(repository, what)
        try:
            return cls(encoder_weights="imagenet", **kwargs)
        except Exception as err:  # download errors differ between hub versions
            raise pretrained_download_error(what, err, repository) from err
    model = cls(encoder_weights=None, **kwargs)
    if pretrained:
        load_local_weights(model.encoder, pretrained, what=f"{kwargs['encoder_name']} encoder")
    return model
