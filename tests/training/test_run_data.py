import pytest

from emr_lib.data import DataError
from emr_lib.data.augment import Resize
from emr_lib.training.profiles import get_config
from emr_lib.training.run_data import cached_views, model_gsd, run_datasets


def test_a_config_gives_its_splits_and_a_dataset_per_split(tmp_path):
    data = run_datasets(get_config("quick", synthetic_n=20, size=32, synthetic_size=64), tmp_path / "splits")
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 12, "val": 4, "test": 4}
    assert (tmp_path / "splits" / "test.txt").read_text().split() == data.splits["test"]
    assert data.test.names == data.splits["test"] and tuple(data.test[0]["image"].shape) == (3, 32, 32)
    assert len(data.view("all")) == 20 and len(data.train()) == 12
    with pytest.raises(DataError, match="split 'holdout' not found"):
        data.view("holdout")


def test_a_split_without_test_part_reports_on_val():
    data = run_datasets(get_config("quick", synthetic_n=20, split_ratios={"train": 0.8, "val": 0.2}))
    assert data.test_split == "val" and data.test.names == data.splits["val"]
    with pytest.raises(ValueError, match="needs out_dir"):
        run_datasets(get_config("quick", synthetic_n=20, offline_expansion=2.0)).train()


def test_several_datasets_train_as_one_with_each_split_alike(tmp_path):
    from emr_lib.data import CombinedDataset, SyntheticLandslides

    first = SyntheticLandslides(20, size=64, seed=1).save(tmp_path / "first", progress=False)
    second = SyntheticLandslides(10, size=64, seed=2).save(tmp_path / "second", progress=False)
    data = run_datasets(get_config("quick", data=f"{first},{second}", size=64))
    assert isinstance(data.base, CombinedDataset) and data.parts == {"first": 20, "second": 10}
    assert data.description == f"{first} + {second}"
    for key, (from_first, from_second) in {"train": (12, 6), "val": (4, 2), "test": (4, 2)}.items():
        names = data.splits[key]
        assert sum(n.startswith("first.") for n in names) == from_first
        assert sum(n.startswith("second.") for n in names) == from_second
    assert data.test[0]["name"].startswith("first.")
    single = run_datasets(get_config("quick", data=str(first), size=64))
    assert data.base.read(0)[0].tobytes() == single.base.read(0)[0].tobytes() and single.parts == {}


def test_the_model_ground_pixel_size_follows_the_resizing(real_data):
    quick = get_config("quick", synthetic_n=8, synthetic_size=128, size=64)
    assert model_gsd(quick) == pytest.approx(2.0)  # nominal 1 m synthetic scenes, shrunk 2x
    assert model_gsd(get_config("quick", data=str(real_data / "bijie-224"), size=160)) == pytest.approx(0.8 * 224 / 160)
    assert model_gsd(get_config("quick", data=str(real_data / "bijie-224"), size=160, gsd=0.5)) == pytest.approx(0.7)
    assert run_datasets(quick).model_gsd == pytest.approx(2.0)


def test_cached_views_serve_the_same_items_from_memory_within_the_limit():
    data = run_datasets(get_config("quick", synthetic_n=24))
    views = [data.train(), data.val]
    train_view, val_view = cached_views(views, progress=False)
    assert train_view.names == views[0].names and train_view.transform is views[0].transform
    assert train_view.base is val_view.base and len(train_view.base.samples) == len(views[0]) + len(views[1])
    first, again = val_view[0], views[1][0]
    assert (first["image"] == again["image"]).all() and (first["mask"] == again["mask"]).all()
    image, _ = val_view.read(0)
    image[:] = 0  # a transform may write into what it reads: the cache keeps its own copy
    assert val_view.read(0)[0].any()
    assert cached_views(views, progress=False, limit_bytes=0) == views  # too large: served as before


def test_cpu_fast_augments_at_the_training_size_from_images_kept_at_it():
    data = run_datasets(get_config("quick", synthetic_n=24, synthetic_size=96, size=64))
    view = data.train(augment_at_size=True)
    steps = view.transform.transforms
    assert isinstance(steps[0], Resize) and not any(isinstance(step, Resize) for step in steps[1:])
    assert isinstance(data.train().transform.transforms[-1], Resize)  # by default: augment, then resize
    train_view, val_view = cached_views([view, data.val], progress=False)
    assert train_view.base.read(0)[0].shape == (64, 64, 3)  # both resize first: kept at the training size
    assert cached_views([data.train(), data.val], progress=False)[0].base.read(0)[0].shape == (96, 96, 3)
    assert train_view[0]["image"].shape == (3, 64, 64)
    # validation resizes only, so its inputs are those it reads without the cache
    assert all((val_view[i]["image"] == data.val[i]["image"]).all() for i in range(len(data.val)))


def test_a_split_after_expansion_puts_copies_of_one_image_on_both_sides_and_only_when_asked():
    from emr_lib.training.profiles import get_config
    from emr_lib.training.run_data import run_datasets

    honest = run_datasets(get_config("quick", synthetic_n=20, split_ratios={"train": 0.8, "val": 0.2}))
    from emr_lib.data import original_of

    originals = lambda names: {original_of(name) for name in names}  # noqa: E731
    assert not originals(honest.splits["train"]) & originals(honest.splits["val"])
    leaky_config = get_config(
        "quick", synthetic_n=20, split_ratios={"train": 0.8, "val": 0.2}, split_after_expansion=3.0
    )
    leaky = run_datasets(leaky_config)
    assert len(leaky.base) == 60 and sum(map(len, leaky.splits.values())) == 60
    assert originals(leaky.splits["train"]) & originals(leaky.splits["val"])  # the leak, measured on purpose
    assert "before the split" in leaky.description
    image, mask = leaky.train()[0]["image"], leaky.train()[0]["mask"]
    assert image.shape[-1] == leaky_config.size and mask.shape == image.shape[-2:]
    with pytest.raises(ValueError, match="excludes offline_expansion"):
        get_config("quick", split_after_expansion=3.0, offline_expansion=2.0)


def test_a_tiled_part_of_several_datasets_keeps_each_scene_on_one_side_of_the_ablation_split(tmp_path):
    """Bijie + Sichuan as the paper's Tables 4-5: the 4:1 split never puts tiles of one scene in both parts."""
    import json

    from emr_lib.data import SyntheticLandslides, scene_of
    from emr_lib.experiments import ABLATION_SPLIT
    from emr_lib.training.run_data import scene_split

    plain = SyntheticLandslides(10, size=64, seed=1).save(tmp_path / "plain", progress=False)
    tiled = SyntheticLandslides(40, size=64, seed=2).save(tmp_path / "tiled", progress=False)
    for folder in ("images", "masks"):  # 10 scenes of 4 tiles each, named as `data prepare sichuan` names them
        for i, path in enumerate(sorted((tiled / folder).glob("*.png"))):
            path.rename(path.with_name(f"scene{i // 4:02d}_y{64 * (i % 2):05d}_x{64 * (i % 4 // 2):05d}.png"))
    (tiled / "manifest.json").write_text(json.dumps({"split_unit": "scene"}))
    config = get_config("quick", data=f"{plain},{tiled}", size=64, split_ratios=ABLATION_SPLIT)
    splits = run_datasets(config).splits
    scenes = {key: {scene_of(n) for n in names if n.startswith("tiled.")} for key, names in splits.items()}
    assert set(splits) == {"train", "val"} and len(scenes["train"]) == 8 and len(scenes["val"]) == 2
    assert not scenes["train"] & scenes["val"]
    assert all(len([n for n in splits["val"] if scene_of(n) == s]) == 4 for s in scenes["val"])  # whole scenes
    assert scene_split(config.data) and not scene_split(str(plain))  # intervals resample the scenes too
    # the split drawn after the expansion (the paper's leak, on purpose): copies of one tile on both sides,
    # but each copy of a scene whole on one, as the paper split whole images
    from emr_lib.data import copy_group, original_of

    leaky = run_datasets(
        get_config("quick", data=config.data, size=64, split_ratios=ABLATION_SPLIT, split_after_expansion=3.0)
    ).splits
    assert {original_of(n) for n in leaky["train"]} & {original_of(n) for n in leaky["val"]}
    assert not {copy_group(n) for n in leaky["train"]} & {copy_group(n) for n in leaky["val"]}
    assert copy_group("tiled.scene03_y00064_x00000__aug02") == "tiled.scene03__aug02"
    assert copy_group("plain.0007") == "plain.0007" and copy_group("plain.0007__aug01") == "plain.0007__aug01"


def test_a_run_on_prepared_images_much_larger_than_its_input_says_how_to_prepare_them(tmp_path):
    import json

    from emr_lib.training.run_data import shrink_notes

    scenes, tiles, plain = tmp_path / "scenes", tmp_path / "tiles", tmp_path / "plain"
    held = {
        scenes: {"dataset": "sichuan", "source_sizes": {"1024x1024": 36}},  # prepared without --size or --tile
        tiles: {"dataset": "sichuan", "resized": {"size": 480}, "tiling": {"tile": 160}},  # the workshop's input
        plain: {"dataset": "bijie", "resized": {"size": 224}},
    }
    for folder, manifest in held.items():
        folder.mkdir()
        (folder / "manifest.json").write_text(json.dumps(manifest))
    (note,) = shrink_notes(get_config("workshop", data=f"{plain},{scenes},synthetic"))
    assert note.startswith(f"note: {scenes} holds images of 1024 px, resized to 160 px for this run (6.4 times")
    assert note.endswith("`python -m emr_lib data prepare sichuan SRC DEST --size 480 --tile 160` prepares the "
                         "workshop's input (data/README.md)")  # fmt: skip
    assert shrink_notes(get_config("workshop", data=f"{tiles},{plain}")) == []
    assert len(shrink_notes(get_config("workshop", data=str(plain), size=64))) == 1  # 224 px at 64: 3.5 times
