import hashlib
import io
import json
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from emr_lib.cli import main
from emr_lib.data import (
    BijieDataset,
    DataError,
    SyntheticLandslides,
    dataset_kind,
    make_splits,
    open_dataset,
    prepare_dataset,
    safe_extract,
)
from emr_lib.experiments.paper import TABLE3, comparison_table


def _png(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _bijie_zip(real_data, path, n=6, non=3, drop_mask=None):
    dataset = BijieDataset(real_data / "bijie-224")
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            image, mask = dataset.read(i)
            name = dataset.names[i]
            zf.writestr(f"Bijie-landslide-dataset/landslide/image/{name}.png", _png(image))
            if name != drop_mask:
                zf.writestr(f"Bijie-landslide-dataset/landslide/mask/{name}.png", _png(mask * 255))  # official 0/255
        for i in range(770, 770 + non):
            zf.writestr(f"Bijie-landslide-dataset/non-landslide/image/{dataset.names[i]}.png", _png(dataset.read(i)[0]))
    return dataset.names[:n]


@pytest.mark.real_data
def test_prepare_bijie_zip_writes_the_kit_layout_and_manifest(real_data, tmp_path):
    names = _bijie_zip(real_data, tmp_path / "Bijie.zip")
    manifest = prepare_dataset("bijie", tmp_path / "Bijie.zip", tmp_path / "out", progress=False)
    assert manifest["counts"] == {"landslide": 6, "non_landslide": 3}
    assert any("official release has 770" in note for note in manifest["notes"])
    prepared = open_dataset(tmp_path / "out")
    assert len(prepared) == 9 and set(names) <= set(prepared.names)
    assert len(open_dataset(tmp_path / "out", include_non_landslide=False)) == 6  # what training opens
    for relative, digest in manifest["files"].items():
        assert hashlib.sha256((tmp_path / "out" / relative).read_bytes()).hexdigest() == digest
    original = BijieDataset(real_data / "bijie-224")
    assert np.array_equal(prepared.read(prepared.names.index(names[0]))[1], original.read(0)[1])  # now 0/1
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["non_landslide"]


@pytest.mark.real_data
def test_prepare_reports_a_missing_mask(real_data, tmp_path):
    names = _bijie_zip(real_data, tmp_path / "Bijie.zip", drop_mask=None)
    _bijie_zip(real_data, tmp_path / "broken.zip", drop_mask=names[2])
    with pytest.raises(DataError, match=rf"have no mask.*{names[2]}\.png"):
        prepare_dataset("bijie", tmp_path / "broken.zip", tmp_path / "out", progress=False)


def test_prepare_sichuan_tar_with_labels_folder(tmp_path):
    synthetic = SyntheticLandslides(5, size=64)
    with tarfile.open(tmp_path / "sichuan.tar.gz", "w:gz") as tf:
        for i, name in enumerate(synthetic.names):
            image, mask = synthetic.read(i)
            for folder, array in (("img", image), ("label", mask * 255)):
                data = _png(array)
                info = tarfile.TarInfo(f"sichuan/{folder}/{name}.png")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    manifest = prepare_dataset("sichuan", tmp_path / "sichuan.tar.gz", tmp_path / "out", progress=False)
    assert manifest["counts"]["landslide"] == 5
    assert len(open_dataset(tmp_path / "out")) == 5
    assert dataset_kind(tmp_path / "out") == "sichuan"
    assert comparison_table(dataset_kind(tmp_path / "out")).rows is TABLE3


@pytest.mark.real_data
def test_dataset_kind_of_official_bijie_and_of_unnamed_folders(real_data, tmp_path):
    assert dataset_kind(real_data / "bijie-224") == "bijie"
    assert dataset_kind("synthetic") is None
    (tmp_path / "images").mkdir()
    assert dataset_kind(tmp_path) is None  # your own data
    (tmp_path / "manifest.json").write_text(json.dumps({"dataset": "elsewhere"}))
    assert dataset_kind(tmp_path) is None


def _zip_with(path, member, data=b"x", symlink=False):
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo(member)
        if symlink:
            info.external_attr = 0o120777 << 16
        zf.writestr(info, data)


@pytest.mark.parametrize("member", ["../evil.txt", "a/../../evil.txt", "/tmp/evil.txt"])
def test_zip_members_escaping_the_destination_are_refused(tmp_path, member):
    _zip_with(tmp_path / "bad.zip", member)
    with pytest.raises(DataError, match="refusing"):
        safe_extract(tmp_path / "bad.zip", tmp_path / "dest")
    assert not (tmp_path / "evil.txt").exists()
    assert not any((tmp_path / "dest").rglob("*"))


def test_zip_symlinks_are_refused(tmp_path):
    _zip_with(tmp_path / "link.zip", "link", data=b"/etc/passwd", symlink=True)
    with pytest.raises(DataError, match="symbolic link"):
        safe_extract(tmp_path / "link.zip", tmp_path / "dest")


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_tar_links_are_refused(tmp_path, kind):
    with tarfile.open(tmp_path / "bad.tar", "w") as tf:
        info = tarfile.TarInfo("data/link")
        info.type = kind
        info.linkname = "../../etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="link"):
        safe_extract(tmp_path / "bad.tar", tmp_path / "dest")


def test_tar_parent_paths_are_refused(tmp_path):
    with tarfile.open(tmp_path / "bad.tar", "w") as tf:
        info = tarfile.TarInfo("../outside.txt")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DataError, match="escape"):
        safe_extract(tmp_path / "bad.tar", tmp_path / "dest")
    assert not (tmp_path / "outside.txt").exists()


def test_cli_prepare_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["data", "prepare", "bijie", str(tmp_path / "missing.zip"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "source not found" in err and "missing.zip" in err and "Traceback" not in err


def test_cli_synthetic_and_split(tmp_path, capsys):
    assert main(["data", "synthetic", str(tmp_path / "syn"), "--n", "10", "--size", "64"]) == 0
    assert main(["data", "split", str(tmp_path / "syn"), "--ratios", "4", "1", "--out", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "train.txt").read_text().count("\n") == 8


def test_prepare_resizes_as_the_tables_copy_and_names_its_fingerprint(tmp_path, capsys):
    synthetic = SyntheticLandslides(4, size=64)
    source = tmp_path / "src"
    (source / "img").mkdir(parents=True)
    (source / "label").mkdir()
    for i, name in enumerate(synthetic.names):
        image, mask = synthetic.read(i)
        wide = np.concatenate([image, image], axis=1)  # 64 x 128: the aspect ratio is not kept
        Image.fromarray(wide).save(source / "img" / f"{name}.png")
        Image.fromarray(np.concatenate([mask, mask], axis=1) * 255).save(source / "label" / f"{name}.png")
    assert main(["data", "prepare", "sichuan", str(source), str(tmp_path / "out"), "--size", "32"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["resized"] == {
        "size": 32,
        "image_interpolation": "bilinear",
        "mask_interpolation": "nearest",
        "aspect_ratio_kept": False,
    }
    prepared = open_dataset(tmp_path / "out")
    image, mask = prepared.read(0)
    assert image.shape == (32, 32, 3) and set(np.unique(mask)) <= {0, 1}  # nearest keeps the classes
    assert f"data_fingerprint {manifest['data_fingerprint']}" in out
    assert manifest["data_fingerprint"] == open_dataset(tmp_path / "out", include_non_landslide=False).fingerprint()
    with pytest.raises(SystemExit):  # below 32 px: refused by the parser, in one line
        main(["data", "prepare", "sichuan", str(source), str(tmp_path / "x"), "--size", "8"])


def _scene_folder(root, n=4, size=96, colour=(255, 0, 255), label_dir="masks"):
    """A PNG copy of Sichuan's layout: images/Landslide00N.png and masks/LandslideLabel00N.png in colour."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / label_dir).mkdir()
    for i in range(1, n + 1):
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
            root / "images" / f"Landslide{i:03d}.png"
        )
        label = np.zeros((size, size, 3), np.uint8)
        label[10 * i : 10 * i + 30, 20:60] = colour
        Image.fromarray(label).save(root / label_dir / f"LandslideLabel{i:03d}.png")
    return root


def test_prepare_sichuan_pairs_scenes_by_number_reads_coloured_labels_and_tiles_them(tmp_path, capsys):
    source = _scene_folder(tmp_path / "src")
    dest = tmp_path / "out"
    assert main(["data", "prepare", "sichuan", str(source), str(dest), "--size", "64", "--tile", "32"]) == 0
    out = capsys.readouterr().out
    assert "4 scenes cut into 4 tiles of 32 px" in out and "255,0,255" in out
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["scenes"] == [f"Landslide{i:03d}" for i in range(1, 5)] and manifest["split_unit"] == "scene"
    assert manifest["counts"]["landslide"] == 16 and list(manifest["label_colours"])[1] == "255,0,255"
    dataset = open_dataset(dest)
    assert (
        "Landslide001_y00032_x00000" in dataset.names
        and dataset.group_of("Landslide003_y00000_x00032") == "Landslide003"
    )
    masks = np.stack([dataset.read(i)[1] for i in range(len(dataset))])
    assert set(np.unique(masks)) == {0, 1} and masks.any()
    assert main(["data", "split", str(dest), "--out", str(tmp_path / "split"), "--ratios", "2", "1", "1"]) == 0
    assert "train: 2 scenes (8 tiles)" in capsys.readouterr().out
    with pytest.raises(DataError, match="multiple of it"):
        prepare_dataset("sichuan", source, tmp_path / "bad", size=64, tile=48, progress=False)


def test_prepare_sichuan_reads_the_official_tif_zip_and_names_a_lone_or_broken_file(tmp_path):
    source = _scene_folder(tmp_path / "png", n=3, label_dir="labels")
    with zipfile.ZipFile(tmp_path / "landslide.zip", "w") as zf:
        for path in sorted(source.rglob("*.png")):
            buffer = io.BytesIO()
            Image.open(path).save(buffer, format="TIFF")
            zf.writestr(f"landslide/{path.parent.name}/{path.stem}.tif", buffer.getvalue())
    manifest = prepare_dataset("sichuan", tmp_path / "landslide.zip", tmp_path / "out", progress=False)
    assert manifest["scenes"] == ["Landslide001", "Landslide002", "Landslide003"] and manifest["tiling"] is None
    assert "official release has 59" in manifest["notes"][0] and manifest["source_sha256"]
    (source / "labels" / "LandslideLabel002.png").unlink()
    with pytest.raises(DataError, match=r"Landslide002\.png has no label"):
        prepare_dataset("sichuan", source, tmp_path / "lone", progress=False)
    (source / "labels" / "LandslideLabel002.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"cannot read label .*LandslideLabel002\.png"):
        prepare_dataset("sichuan", source, tmp_path / "broken", progress=False)


@pytest.mark.real_data
def test_prepare_the_shared_sichuan_copy_as_the_workshop_does(real_data, tmp_path):
    if not (real_data / "sichuan-36").is_dir():
        pytest.skip("no sichuan-36 beside the data")
    manifest = prepare_dataset(
        "sichuan", real_data / "sichuan-36", tmp_path / "out", size=480, tile=160, progress=False
    )
    assert len(manifest["scenes"]) == 36 and manifest["counts"]["landslide"] == 324
    assert set(manifest["label_colours"]) == {"background (0,0,0)", "255,0,255"}  # magenta, nothing else
    shares = sorted(manifest["landslide_share"].values())
    assert 0.04 < shares[0] and shares[-1] < 0.4  # 5.5-35 % as the data's README says
    dataset = open_dataset(tmp_path / "out")
    splits = make_splits(dataset.names, seed=0, group_of=dataset.group_of)
    sides = [{dataset.group_of(n) for n in names} for names in splits.values()]
    assert [len(s) for s in sides] == [22, 7, 7] and not (sides[0] & sides[1] or sides[0] & sides[2])
