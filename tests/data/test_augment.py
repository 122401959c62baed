import numpy as np
import pytest
import torch

from emr_lib.data import BijieDataset
from emr_lib.data.augment import (
    Compose,
    RandomFlip,
    RandomRotate90,
    RandomRotation,
    RandomScale,
    center_rep,
    train_transform,
)


def _patch_mask(shape, patch):
    top, left, h, w = patch
    region = np.zeros(shape, bool)
    region[top : top + h, left : left + w] = True
    return region


def _check_center_rep(image, mask, out_image, out_mask, info, fill=(0.2, 0.3)):
    touched = np.zeros(mask.shape, bool)
    for p in info:
        y0, x0, y1, x1 = p["bbox"]
        region = _patch_mask(mask.shape, p["patch"])
        touched |= region
        ys, xs = np.nonzero(region)
        assert y0 <= ys.min() and ys.max() <= y1 and x0 <= xs.min() and xs.max() <= x1  # inside the box
        assert abs((ys.min() + ys.max()) / 2 - p["center"][0]) <= 1  # centred on the box centre
        assert abs((xs.min() + xs.max()) / 2 - p["center"][1]) <= 1
        if min(y1 - y0, x1 - x0) >= 20:  # small boxes cannot hit a fraction exactly in whole pixels
            assert fill[0] - 0.02 <= region.sum() / ((y1 - y0 + 1) * (x1 - x0 + 1)) <= fill[1] + 0.02
        assert out_mask[region].sum() == 0  # background where the patch is
    assert np.array_equal(out_image[~touched], image[~touched])  # nothing else changes
    assert np.array_equal(out_mask[~touched], (mask > 0)[~touched])


@pytest.mark.real_data
def test_center_rep_properties_on_real_bijie(real_data):
    dataset = BijieDataset(real_data / "bijie-224")
    sources = [dataset.read(i)[0] for i in range(770, 775)]  # non-landslide images
    rng = np.random.default_rng(0)
    for i in range(0, 770, 25):
        image, mask = dataset.read(i)
        source = sources[i % 5] if i % 2 else None
        out_image, out_mask, info = center_rep(image, mask, source=source, rng=rng, return_info=True)
        assert info, f"no patch for {dataset.names[i]}"
        _check_center_rep(image, mask, out_image, out_mask, info)


def test_center_rep_fraction_of_a_large_landslide_is_exact():
    mask = np.zeros((200, 200), np.uint8)
    mask[40:160, 20:180] = 1  # 120 x 160 box
    image = np.zeros((200, 200, 3), np.uint8)
    out_image, out_mask, info = center_rep(image, mask, fill=0.25, rng=0, return_info=True)
    assert abs(info[0]["achieved_fraction"] - 0.25) < 0.005
    assert info[0]["patch"][2:] == (60, 80)  # the box's aspect ratio
    _check_center_rep(image, mask, out_image, out_mask, info, fill=(0.25, 0.25))


def test_center_rep_takes_background_or_source_content():
    image = np.zeros((64, 64, 3), np.uint8)
    image[...] = (10, 120, 10)  # vegetation
    mask = np.zeros((64, 64), np.uint8)
    mask[20:44, 16:48] = 1
    image[mask == 1] = (200, 150, 100)  # soil
    out, _, info = center_rep(image, mask, rng=0, return_info=True)
    patch = _patch_mask(mask.shape, info[0]["patch"])
    assert info[0]["content"] == "background" and np.all(out[patch] == (10, 120, 10))
    source = np.full((50, 50, 3), 77, np.uint8)
    out, _, info = center_rep(image, mask, source=source, rng=0, return_info=True)
    assert info[0]["content"] == "source" and np.all(out[_patch_mask(mask.shape, info[0]["patch"])] == 77)


def test_center_rep_edge_cases():
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    empty = np.zeros((64, 64), np.uint8)
    out_image, out_mask = center_rep(image, empty, rng=0)
    assert np.array_equal(out_image, image) and not out_mask.any()

    border = np.zeros((64, 64), np.uint8)
    border[0:30, 40:64] = 1  # touches the top and right borders
    out_image, out_mask, info = center_rep(image, border, rng=0, return_info=True)
    _check_center_rep(image, border, out_image, out_mask, info)

    two = np.zeros((64, 64), np.uint8)
    two[5:25, 5:25] = 1
    two[40:60, 35:60] = 1
    _, _, per_component = center_rep(image, two, rng=0, return_info=True)
    _, _, union = center_rep(image, two, rng=0, per="union", return_info=True)
    assert len(per_component) == 2 and len(union) == 1
    assert union[0]["bbox"] == (5, 5, 59, 59)

    full = np.ones((32, 32), np.uint8)  # no background to copy: the window is inpainted
    _, out_mask, info = center_rep(image[:32, :32], full, rng=0, return_info=True)
    assert info[0]["content"] == "inpainted" and out_mask.sum() < full.sum()


def _marked(size=48):
    """An image whose red channel is the mask, so any joint transform must keep them in step."""
    mask = np.zeros((size, size), np.uint8)
    mask[5:20, 10:40] = 1
    mask[30:44, 3:12] = 1
    image = np.zeros((size, size, 3), np.uint8)
    image[..., 0] = mask * 255
    image[..., 1] = np.arange(size, dtype=np.uint8)[None, :]
    return image, mask


@pytest.mark.parametrize("transform", [RandomFlip(p=1.0), RandomRotate90(), RandomRotation(30, p=1.0)])
def test_joint_transforms_keep_image_and_mask_aligned(transform):
    image, mask = _marked()
    for seed in range(5):
        out_image, out_mask = transform(image, mask, np.random.default_rng(seed))
        agree = ((out_image[..., 0] > 127) == (out_mask == 1)).mean()
        assert agree > 0.97, agree
        assert set(np.unique(out_mask)) <= {0, 1}


def test_compose_is_reproducible_with_torch_seed():
    image, mask = _marked()
    transform = train_transform(size=32, centerrep=0.5)
    torch.manual_seed(5)
    first = [transform(image, mask) for _ in range(3)]
    torch.manual_seed(5)
    second = [transform(image, mask) for _ in range(3)]
    for (a, b), (c, d) in zip(first, second):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    assert first[0][0].shape == (32, 32, 3)
    assert isinstance(transform, Compose)


def test_random_scale_keeps_the_size_and_a_binary_mask():
    image = np.random.default_rng(0).integers(1, 255, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 1
    rng, factors = np.random.default_rng(0), []
    for _ in range(20):
        ops = []
        out_image, out_mask = RandomScale(0.5, 2.0)(image, mask, rng, ops)
        factors.append(ops[0]["factor"])
        assert out_image.shape == image.shape and set(np.unique(out_mask)) <= {0, 1}
        if factors[-1] < 0.9:  # shrunk: the padding is no-data black
            assert (out_image == 0).all(axis=2).any()
    assert min(factors) < 0.8 and max(factors) > 1.3
    recipe = train_transform(64, scale_jitter=[0.5, 2.0])
    assert isinstance(recipe.transforms[-1], RandomScale)
    assert not any(isinstance(step, RandomScale) for step in train_transform(64).transforms)  # off by default
