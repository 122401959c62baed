import numpy as np
import pytest
import torch
from PIL import Image

from emr_lib.data import (
    BijieDataset,
    DataError,
    DatasetView,
    FolderDataset,
    SyntheticLandslides,
    load_splits,
    make_splits,
    open_dataset,
    save_splits,
    tile_scene,
)


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def _pair_folder(root, n=3, size=32, mask_scale=1):
    rng = np.random.default_rng(0)
    for i in range(n):
        _write(root / "images" / f"s{i}.png", rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
        mask = np.zeros((size, size), np.uint8)
        mask[4:12, 5:20] = mask_scale
        _write(root / "masks" / f"s{i}.png", mask)
    return root


# --- the real Bijie data -------------------------------------------------------------------


@pytest.mark.real_data
def test_bijie_counts_shapes_and_values(real_data):
    dataset = BijieDataset(real_data / "bijie-224")
    assert len(dataset) == 770 + 154
    assert dataset.num_landslide == 770
    assert len(BijieDataset(real_data / "bijie-224", include_non_landslide=False)) == 770
    item = dataset[0]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 224, 224)
    assert 0 <= item["image"].min() and item["image"].max() <= 1
    assert item["mask"].dtype == torch.int64 and item["mask"].shape == (224, 224)
    assert set(item["mask"].unique().tolist()) <= {0, 1}
    assert item["name"] == dataset.names[0]
    non_landslide = dataset[len(dataset) - 1]
    assert non_landslide["mask"].sum() == 0


@pytest.mark.real_data
def test_bijie_landslide_fraction_statistics(real_data):
    dataset = BijieDataset(real_data / "bijie-224", include_non_landslide=False)
    fractions = np.array([dataset.read(i)[1].mean() for i in range(len(dataset))])
    assert 0.07 < fractions.mean() < 0.13  # the data README: mean about 10 %
    assert fractions.min() > 0 and fractions.max() < 0.5


@pytest.mark.real_data
def test_bijie_official_layout_with_0_255_masks(real_data, tmp_path):
    source = BijieDataset(real_data / "bijie-224")
    names = source.names[:3]
    for name in names:
        image, mask = source.read(source.names.index(name))
        _write(tmp_path / "landslide" / "image" / f"{name}.png", image)
        _write(tmp_path / "landslide" / "mask" / f"{name}.png", mask * 255)
    (tmp_path / "landslide" / "dem").mkdir()  # optional folders are ignored
    copy = BijieDataset(tmp_path)
    assert copy.names == names
    for i, name in enumerate(names):
        assert np.array_equal(copy.read(i)[1], source.read(source.names.index(name))[1])


@pytest.mark.real_data
def test_bijie_names_select_a_split(real_data):
    root = real_data / "bijie-224"
    names = BijieDataset(root).names
    picked = [names[5], names[800], names[2]]
    assert BijieDataset(root, names=picked).names == picked
    with pytest.raises(DataError, match="1 name.*not in the dataset.*no_such_image"):
        BijieDataset(root, names=["no_such_image"])


@pytest.fixture(scope="module")
def uav_scene():
    from conftest import real_data_root

    root = real_data_root() / "uav-road"
    if not root.is_dir():
        pytest.skip("UAV scene not found")
    from emr_lib.data import read_image, read_mask

    return read_image(root / "image.png"), read_mask(root / "mask.png")


@pytest.mark.real_data
def test_uav_scene_tiling_skips_nodata_and_covers_the_scene(real_data, uav_scene):
    image, mask = uav_scene
    assert image.shape == (7680, 6144, 3)
    everything = tile_scene(image, mask, tile=512, max_nodata=1.0)
    assert len(everything) == 15 * 12
    assert everything.coverage() == 1.0
    tiles = tile_scene(image, mask, tile=512, max_nodata=0.5)
    assert 0 < len(tiles) < len(everything)  # the black border around the flight is skipped
    assert all(w.nodata_fraction <= 0.5 for w in tiles.windows)
    item = tiles[0]
    assert item["image"].shape == (3, 512, 512) and item["mask"].shape == (512, 512)
    landslide = np.mean([tiles.read(i)[1].mean() for i in range(len(tiles))])
    assert landslide > 0.16  # landslides sit inside the flown area, so kept tiles hold more of them


def test_tiling_with_overlap_reaches_the_borders():
    image = np.full((100, 130, 3), 50, np.uint8)
    image[:, :40] = 0  # no-data strip
    tiles = tile_scene(image, np.zeros((100, 130), np.uint8), tile=32, stride=24, max_nodata=0.5)
    xs = sorted({w.x for w in tiles.windows})
    ys = sorted({w.y for w in tiles.windows})
    assert xs[-1] == 130 - 32 and ys[-1] == 100 - 32 and ys[0] == 0
    assert min(xs) >= 24  # the windows inside the strip were skipped
    with pytest.raises(DataError, match="smaller than one tile"):
        tile_scene(image[:20], tile=32)


def test_tiles_can_be_kept_to_a_region_so_the_rest_stays_unseen():
    image = np.full((100, 130, 3), 50, np.uint8)
    top = tile_scene(image, tile=32, stride=16, region=(0, 0, 130, 50))
    assert all(w.y + w.size <= 50 for w in top.windows) and max(w.y for w in top.windows) == 50 - 32
    assert {w.x for w in top.windows} >= {0, 130 - 32}
    with pytest.raises(DataError, match="region .* not a box inside the scene"):
        tile_scene(image, tile=32, region=(0, 60, 130, 50))


def test_tile_scene_saves_a_folder_dataset(tmp_path):
    image = np.random.default_rng(0).integers(1, 255, (64, 96, 3), dtype=np.uint8)
    mask = np.zeros((64, 96), np.uint8)
    mask[10:30, 40:70] = 1
    tiles = tile_scene(image, mask, tile=32)
    tiles.save(tmp_path)
    folder = FolderDataset(tmp_path / "images", tmp_path / "masks")
    assert len(folder) == 6
    assert sum(folder.read(i)[1].sum() for i in range(len(folder))) == mask.sum()


# --- the synthetic default -------------------------------------------------------------------


def test_synthetic_is_deterministic_and_independent_of_n():
    a, b = SyntheticLandslides(5, size=64, seed=3), SyntheticLandslides(50, size=64, seed=3)
    for i in range(5):
        assert np.array_equal(a.read(i)[0], b.read(i)[0]) and np.array_equal(a.read(i)[1], b.read(i)[1])
    assert not np.array_equal(a.read(0)[0], SyntheticLandslides(5, size=64, seed=4).read(0)[0])


def test_synthetic_items_and_statistics():
    dataset = SyntheticLandslides(100, size=128, seed=0)
    item = dataset[0]
    assert item["image"].shape == (3, 128, 128) and item["image"].dtype == torch.float32
    assert item["mask"].dtype == torch.int64 and item["name"] == "synthetic_00000"
    fractions = np.array([dataset.read(i)[1].mean() for i in range(len(dataset))])
    assert 0.05 < fractions.mean() < 0.15 and fractions.min() > 0  # like Bijie: about 10 %
    image, mask = dataset.read(1)
    # scars are bare soil: redder and brighter than the vegetation around them
    assert image[mask == 1].mean(0)[0] > image[mask == 0].mean(0)[0] + 30


def test_synthetic_empty_share_and_save(tmp_path):
    dataset = SyntheticLandslides(20, size=64, seed=0, p_empty=1.0)
    assert all(dataset.read(i)[1].sum() == 0 for i in range(20))
    SyntheticLandslides(4, size=64).save(tmp_path)
    assert len(open_dataset(tmp_path)) == 4


def test_landslide_only_means_the_same_images_for_training_and_split_files(tmp_path):
    import json

    from emr_lib.cli import main

    SyntheticLandslides(4, size=64).save(tmp_path / "prepared")
    everything = open_dataset(tmp_path / "prepared").names
    # a prepared folder lists its non-landslide images in manifest.json (data prepare writes it)
    (tmp_path / "prepared" / "manifest.json").write_text(json.dumps({"non_landslide": everything[:1]}))
    assert open_dataset(tmp_path / "prepared").names == everything
    assert open_dataset(tmp_path / "prepared", include_non_landslide=False).names == everything[1:]
    for flags, expected in (([], 3), (["--include-non-landslide"], 4)):
        out = tmp_path / f"splits{len(flags)}"
        assert main(["data", "split", str(tmp_path / "prepared"), "--ratios", "1", "1", "--out", str(out), *flags]) == 0
        assert sum(len(f.read_text().split()) for f in out.glob("*.txt")) == expected


# --- splits ----------------------------------------------------------------------------------


def test_splits_are_reproducible_disjoint_and_complete(tmp_path):
    names = [f"img{i:03d}" for i in range(924)]
    splits = make_splits(names, seed=1)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [554, 185, 185]
    assert splits == make_splits(list(reversed(names)), seed=1)  # order of input does not matter
    assert splits != make_splits(names, seed=2)
    assert sorted(sum(splits.values(), [])) == names
    save_splits(splits, tmp_path)
    assert load_splits(tmp_path) == splits
    ablation = make_splits(names, {"train": 0.8, "test": 0.2})
    assert len(ablation["train"]) == 739 and not set(ablation["train"]) & set(ablation["test"])


def test_overlapping_split_files_are_rejected(tmp_path):
    save_splits({"train": ["a", "b"], "test": ["b"]}, tmp_path)
    with pytest.raises(DataError, match="must not overlap"):
        load_splits(tmp_path)


# --- bad input: one clear error naming the file --------------------------------------------


def test_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError, match="not found"):
        FolderDataset(tmp_path / "nope", tmp_path / "masks")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="holds no image files"):
        FolderDataset(tmp_path / "images", tmp_path / "masks")
    with pytest.raises(DataError, match="Bijie dataset folder not found"):
        BijieDataset(tmp_path / "bijie")
    with pytest.raises(DataError, match="neither in the Bijie layout"):
        open_dataset(tmp_path / "images")


def test_names_keep_a_split_in_order_and_views_share_the_check(tmp_path):
    root = _pair_folder(tmp_path, n=4)
    full = FolderDataset(root / "images", root / "masks")
    part = FolderDataset(root / "images", root / "masks", names=["s3", "s0"])
    assert part.names == ["s3", "s0"]
    assert np.array_equal(part.read(0)[0], full.read(3)[0])
    view = DatasetView(full, ["s2", "s1"])
    assert [item["name"] for item in view] == ["s2", "s1"]
    assert np.array_equal(view.read(1)[0], full.read(1)[0])
    for make in (
        lambda: FolderDataset(root / "images", root / "masks", names=["s1", "s9", "x"]),
        lambda: DatasetView(full, ["s1", "s9", "x"]),
    ):
        with pytest.raises(DataError, match=r"2 name\(s\) of the split are not in the dataset.*s9"):
            make()


def test_image_without_mask_and_mask_without_image(tmp_path):
    root = _pair_folder(tmp_path)
    (root / "masks" / "s1.png").unlink()
    with pytest.raises(DataError, match=r"1 image\(s\) .* have no mask.*s1\.png"):
        FolderDataset(root / "images", root / "masks")
    _write(root / "masks" / "s1.png", np.zeros((32, 32), np.uint8))
    (root / "images" / "s2.png").unlink()
    with pytest.raises(DataError, match=r"1 mask\(s\) .* have no image.*s2\.png"):
        FolderDataset(root / "images", root / "masks")


def test_size_mismatch_names_both_files(tmp_path):
    root = _pair_folder(tmp_path)
    _write(root / "masks" / "s0.png", np.zeros((30, 32), np.uint8))
    dataset = FolderDataset(root / "images", root / "masks")
    with pytest.raises(DataError, match=r"s0\.png is 32x32 but its mask .*s0\.png is 32x30"):
        dataset[0]
    assert len(dataset.validate(progress=False)) == 1


def test_corrupt_image_is_named(tmp_path):
    root = _pair_folder(tmp_path)
    (root / "images" / "s1.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=r"cannot read image .*s1\.png.*corrupt"):
        FolderDataset(root / "images", root / "masks")[1]


def test_mask_values_must_be_binary_unless_thresholded(tmp_path):
    root = _pair_folder(tmp_path, mask_scale=255)
    mask = np.zeros((32, 32), np.uint8)
    mask[:8] = 200
    mask[8:10] = 255
    _write(root / "masks" / "s2.png", mask)
    dataset = FolderDataset(root / "images", root / "masks")
    assert dataset[0]["mask"].max() == 1  # 0/255 is fine
    with pytest.raises(DataError, match=r"s2\.png has values other than 0/1/255 \(200\)"):
        dataset[2]
    thresholded = FolderDataset(root / "images", root / "masks", mask_threshold=127)
    assert thresholded[2]["mask"].sum() == 10 * 32


def test_palette_and_rgb_masks(tmp_path):
    root = _pair_folder(tmp_path, n=2)
    palette = Image.fromarray(np.pad(np.ones((8, 8), np.uint8), 12)).convert("P")
    palette.save(root / "masks" / "s0.png")
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[:4, :, 0] = 255  # red landslide
    _write(root / "masks" / "s1.png", rgb)
    dataset = FolderDataset(root / "images", root / "masks")
    assert dataset[0]["mask"].sum() == 64 and dataset[1]["mask"].sum() == 4 * 32


def test_every_dataset_shares_one_base_and_saves_the_folder_layout(tmp_path):
    from emr_lib.data import SampleDataset, SceneTiles, synthetic_scene
    from emr_lib.data.expansion import ExpandedDataset

    synthetic = SyntheticLandslides(4, size=64, seed=0)
    tiles = tile_scene(*synthetic_scene(grid=2, size=64), tile=64)
    view = DatasetView(synthetic, synthetic.names[:2])
    expanded = ExpandedDataset(synthetic, synthetic.names[:2], factor=2.0)
    for dataset in (
        synthetic,
        tiles,
        view,
        expanded,
        FolderDataset(synthetic.save(tmp_path / "s") / "images", tmp_path / "s" / "masks"),
    ):
        assert isinstance(dataset, SampleDataset) and len(dataset) == len(dataset.names)
        item = dataset[len(dataset) - 1]
        assert item["name"] == dataset.names[-1] and item["image"].dtype == torch.float32
    expanded.save(tmp_path / "e", progress=False)
    assert FolderDataset(tmp_path / "e" / "images", tmp_path / "e" / "masks").names == sorted(expanded.names)
    assert isinstance(tiles, SceneTiles)


def test_pack_keeps_every_pixel_and_opens_like_a_folder(tmp_path, capsys):
    from emr_lib.cli import main
    from emr_lib.data import PackedDataset

    source = SyntheticLandslides(6, size=64, seed=3, p_empty=0.5)
    folder = source.save(tmp_path / "folder", progress=False)
    assert main(["data", "pack", str(folder), str(tmp_path / "pack.npz"), "--size", "64"]) == 0
    assert "packed 6 images of 64 px" in capsys.readouterr().out
    packed = open_dataset(tmp_path / "pack.npz")
    assert isinstance(packed, PackedDataset) and packed.names == source.names
    for i in range(6):  # lossless
        assert all(np.array_equal(a, b) for a, b in zip(packed.read(i), source.read(i)))
    assert tuple(packed[0]["image"].shape) == (3, 64, 64)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read packed dataset .*bad.npz"):
        open_dataset(tmp_path / "bad.npz")


@pytest.mark.real_data
def test_pack_real_bijie_leaves_out_non_landslide_images_when_asked(real_data, tmp_path):
    from emr_lib.data import BijieDataset, PackedDataset, dataset_kind, pack_dataset

    bijie = BijieDataset(real_data / "bijie-224")
    subset = DatasetView(bijie, bijie.names[:4] + bijie.names[-2:])  # 4 landslide, 2 non-landslide
    pack_dataset(subset, tmp_path / "b.npz", 224, kind="bijie", non_landslide=bijie.names[-2:], progress=False)
    assert len(PackedDataset(tmp_path / "b.npz")) == 6
    assert PackedDataset(tmp_path / "b.npz", include_non_landslide=False).names == bijie.names[:4]
    assert dataset_kind(tmp_path / "b.npz") == "bijie"


def test_tiles_name_their_scene_and_other_names_are_their_own_scene():
    from emr_lib.data import scene_of

    assert scene_of("Landslide001_y00160_x00320") == "Landslide001"
    assert scene_of("sichuan.Landslide001_y00000_x00000") == "sichuan.Landslide001"
    assert scene_of("df002") == "df002" and scene_of("a_y1_x2") == "a_y1_x2"


def test_a_split_of_tiles_keeps_every_scene_on_one_side_and_plain_names_split_as_before():
    from emr_lib.data import scene_of

    names = [f"scene{s:02d}_y{y:05d}_x{x:05d}" for s in range(20) for y in (0, 160) for x in (0, 160)]
    splits = make_splits(names, seed=3, group_of=scene_of)
    scenes = {key: {scene_of(n) for n in value} for key, value in splits.items()}
    assert [len(scenes[k]) for k in ("train", "val", "test")] == [12, 4, 4]
    assert not (scenes["train"] & scenes["val"] or scenes["train"] & scenes["test"] or scenes["val"] & scenes["test"])
    assert sorted(sum(splits.values(), [])) == sorted(names)
    plain = [f"img{i:03d}" for i in range(50)]  # each image its own group: the very split of before
    assert make_splits(plain, seed=1, group_of=scene_of) == make_splits(plain, seed=1)


def test_fold_splits_test_every_scene_once_over_the_folds():
    from emr_lib.data import fold_splits, scene_of

    names = [f"s{s:02d}_y{y:05d}_x00000" for s in range(36) for y in (0, 160, 320)]
    folds = [fold_splits(names, 5, k, seed=0, group_of=scene_of) for k in range(5)]
    tested = [{scene_of(n) for n in f["test"]} for f in folds]
    assert sorted(len(t) for t in tested) == [7, 7, 7, 7, 8]
    assert set().union(*tested) == {f"s{s:02d}" for s in range(36)} and sum(map(len, tested)) == 36
    for k, f in enumerate(folds):
        assert {scene_of(n) for n in f["val"]} == tested[(k + 1) % 5]  # the next fold validates
        assert sorted(f["train"] + f["val"] + f["test"]) == sorted(names)
    assert fold_splits(names, 5, 2, seed=0, group_of=scene_of) == folds[2]
    with pytest.raises(ValueError, match="at least 3 folds"):
        fold_splits(names, 2, 0)
    with pytest.raises(DataError, match="into 5 folds"):
        fold_splits(["a", "b", "c"], 5, 0)


def test_stitched_scenes_put_tiles_back_where_they_were_cut():
    from emr_lib.data import StitchedScenes

    rng = np.random.default_rng(0)
    image, mask = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), (rng.random((96, 96)) > 0.7).astype(np.uint8)
    tiles = tile_scene(image, mask, tile=32, name="Landslide007")
    scenes = StitchedScenes(tiles)
    assert scenes.names == ["Landslide007"] and len(tiles) == 9
    stitched_image, stitched_mask = scenes.read(0)
    assert np.array_equal(stitched_image, image) and np.array_equal(stitched_mask, mask)
    with pytest.raises(DataError, match="not a tile name"):
        StitchedScenes(SyntheticLandslides(2, size=32))


@pytest.mark.real_data
def test_a_copy_is_compared_file_by_file_with_the_list_of_the_tables_copy(real_data, tmp_path, capsys):
    import shutil

    from conftest import REPO
    from emr_lib.cli import main
    from emr_lib.data import TABLES_COPY, compare_checksums

    same = compare_checksums(real_data / "bijie-224", REPO / TABLES_COPY)
    assert same["same"] == same["listed"] == 1694 and not (same["differ"] or same["missing"] or same["extra"])
    copy = tmp_path / "bijie"
    shutil.copytree(real_data / "bijie-224" / "landslide", copy / "landslide")  # no non-landslide images
    mask = copy / "landslide" / "mask" / "df002.png"
    Image.fromarray(np.zeros((224, 224), np.uint8)).save(mask)
    assert main(["data", "compare", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "1539 of the 1694 files" in out and "1 differ: mask/df002" in out and "154 missing" in out
    assert "not the copy the committed tables were made on" in out
