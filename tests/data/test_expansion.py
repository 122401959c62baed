import json

import pytest

from emr_lib.data import FolderDataset, SyntheticLandslides, make_splits
from emr_lib.data.expansion import PAPER_EXPANSION, expand_dataset


def test_expand_dataset_uses_only_the_training_split(tmp_path):
    dataset = SyntheticLandslides(20, size=64, seed=0, p_empty=0.2)
    splits = make_splits(dataset.names, seed=0)
    manifest = expand_dataset(dataset, splits["train"], tmp_path, seed=0, progress=False)
    assert manifest["total"] == round(PAPER_EXPANSION * 12)
    expanded = FolderDataset(tmp_path / "images", tmp_path / "masks")
    assert len(expanded) == manifest["total"]
    record = json.loads((tmp_path / "manifest.json").read_text())
    sources = {r["source"] for r in record["files"]}
    assert sources == set(splits["train"])
    assert not sources & (set(splits["val"]) | set(splits["test"]))
    ops = [op["op"] for r in record["files"] for op in r["ops"]]
    assert {"center_rep", "flip", "rotate90", "rotate", "brightness"} <= set(ops)
    for r in record["files"]:  # an original and its copies keep the original's name as prefix
        assert r["file"].split("__")[0].removesuffix(".png") == r["source"]
    with pytest.raises(ValueError, match="not in the dataset"):
        expand_dataset(dataset, ["unknown"], tmp_path / "again", progress=False)
    assert not (tmp_path / "again").exists()  # a wrong split leaves no half-made folder


def test_expansion_applies_the_training_recipe_and_records_what_it_drew():
    import numpy as np

    from emr_lib.data.augment import train_transform
    from emr_lib.data.expansion import ExpandedDataset

    dataset = SyntheticLandslides(6, size=64, seed=0)
    expanded = ExpandedDataset(dataset, dataset.names, factor=3.0, centerrep_p=1.0, seed=4)
    assert len(expanded) == 18 and expanded.names[:3] == [
        "synthetic_00000",
        "synthetic_00000__aug01",
        "synthetic_00000__aug02",
    ]
    image, mask = expanded.read(1)
    again, _ = expanded.read(1)
    assert np.array_equal(image, again)  # a copy reads the same every time, alone
    ops = expanded.operations["synthetic_00000__aug01"]
    assert ops[0]["op"] == "center_rep"  # every landslide copy got CenterRep at p = 1
    recipe = train_transform(size=None, centerrep=1.0)  # the recipe training uses, with the copy's generator
    same, same_mask, same_ops = recipe.apply(*dataset.read(0), np.random.default_rng([4, 0, 1]))
    assert np.array_equal(image, same) and np.array_equal(mask, same_mask) and ops == same_ops
    assert expanded.manifest()["files"][0] == {"file": "synthetic_00000.png", "source": "synthetic_00000", "ops": []}


def test_a_copy_counts_with_its_source_image_or_scene():
    from emr_lib.data import source_of

    assert source_of("bijie-224.qx095__aug03") == source_of("bijie-224.qx095") == "bijie-224.qx095"
    assert source_of("sichuan.Landslide025_y00000_x00160__aug12") == "sichuan.Landslide025"
    assert source_of("sichuan.Landslide025_y00160_x00000") == "sichuan.Landslide025"
