"""`map`: georeferenced outputs on the scene's grid, resampling to the training GSD, bad input, memory."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from conftest import REPO
from emr_lib.cli import main
from emr_lib.data import DataError
from emr_lib.mapping.geo import (
    MASK_NODATA,
    PROBABILITY_NODATA,
    polygons_from_mask,
    write_polygons,
    write_synthetic_geotiff,
)
from emr_lib.mapping.scene import checkpoint_gsd, map_scene, scene_metrics, window_weights
from emr_lib.training.loop import train
from emr_lib.training.profiles import get_config


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """The quick profile's model, trained 10 epochs (about 20 s) so that it finds the synthetic
    landslides and polygons appear: with DEMA in every basic block (the paper's placement) its
    attention gates start low, and 5 epochs left it predicting background only."""
    out = tmp_path_factory.mktemp("run")
    train(get_config("quick", epochs=10), out, progress=False)
    return out / "best.pt"


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 384 px UTM scene at 1 m with a 32 px black (no-data) border, never seen in training."""
    return write_synthetic_geotiff(tmp_path_factory.mktemp("scene") / "scene.tif", 384, 1.0, 7, nodata_border=32)


def test_map_writes_rasters_on_the_scene_grid_and_polygons_inside_it(checkpoint, scene, tmp_path):
    summary = map_scene(scene[0], checkpoint, tmp_path, window=128, progress=False)
    assert summary["scale"] == pytest.approx(1.0) and summary["model_gsd_m"] == pytest.approx(1.0)
    with rasterio.open(scene[0]) as src, rasterio.open(tmp_path / "probability.tif") as prob:
        with rasterio.open(tmp_path / "mask.tif") as mask:
            for out in (prob, mask):
                assert (out.width, out.height, out.crs, out.transform) == (
                    src.width,
                    src.height,
                    src.crs,
                    src.transform,
                )
                assert out.block_shapes[0] == (256, 256) and out.compression is not None
            no_data = np.all(src.read() == 0, axis=0)
            mask_values, prob_values = mask.read(1), prob.read(1)
            bounds = shapely.box(*src.bounds)
    assert no_data.any() and np.array_equal(mask_values == MASK_NODATA, no_data)
    assert np.array_equal(prob_values == PROBABILITY_NODATA, no_data)
    assert set(np.unique(mask_values[~no_data])) <= {0, 1} and (0 <= prob_values[~no_data]).all()
    info = pyogrio.read_info(tmp_path / "landslides.gpkg")
    assert info["crs"] == "EPSG:32648" and info["features"] == summary["polygons"] > 0
    _, _, geometry, (areas, mean_probs) = pyogrio.raw.read(tmp_path / "landslides.gpkg")
    assert all(bounds.contains(p) for p in shapely.from_wkb(geometry))
    assert ((0.5 <= mean_probs) & (mean_probs <= 1)).all()
    assert (areas >= 16).all() and sum(areas) <= summary["landslide_area_m2"] * 1.2
    assert (tmp_path / "quicklook.png").is_file() and json.loads((tmp_path / "map.json").read_text())["polygons"]
    assert not list(tmp_path.glob(".partial*"))
    truth = scene_metrics(tmp_path / "mask.tif", scene[1])
    assert 0 <= truth["mIoU"] <= 1


def test_map_matches_the_training_ground_pixel_size(checkpoint, scene, tmp_path):
    coarse = tmp_path / "coarse.tif"  # the same scene, told it is at 2 m: the model (1 m) sees it enlarged 2x
    with rasterio.open(scene[0]) as src:
        profile = {**src.profile, "transform": from_origin(500_000, 3_000_000, 2.0, 2.0)}
        with rasterio.open(coarse, "w", **profile) as dst:
            dst.write(src.read())
    assert map_scene(coarse, checkpoint, tmp_path / "a", window=128, progress=False)["scale"] == pytest.approx(2.0)
    assert map_scene(coarse, checkpoint, tmp_path / "b", window=128, scale=0.5, progress=False)["scale"] == 0.5
    assert checkpoint_gsd({"model_gsd_m": 1.12}) == 1.12


def test_a_png_without_coordinates_is_mapped_in_pixels_with_a_warning(checkpoint, scene, tmp_path):
    from PIL import Image

    with rasterio.open(scene[0]) as src:
        Image.fromarray(src.read().transpose(1, 2, 0)).save(tmp_path / "scene.png")
    with pytest.warns(UserWarning, match="no coordinates"):
        summary = map_scene(tmp_path / "scene.png", checkpoint, tmp_path / "out", window=128, progress=False)
    assert summary["crs"] is None and summary["landslide_area_m2"] is None
    with rasterio.open(tmp_path / "out" / "mask.tif") as mask:
        assert (mask.width, mask.height) == (384, 384)


def test_polygons_have_the_mask_area_in_square_metres_and_merge_across_blocks(tmp_path):
    mask = np.zeros((1, 1200, 1100), np.uint8)
    mask[0, 1000:1050, 1000:1100] = 1  # crosses the 1024-px block edge: one polygon, not two
    mask[0, 10:12, 10:12] = 1  # 4 px: below the minimum area
    profile = dict(driver="GTiff", width=1100, height=1200, count=1, dtype="uint8", crs="EPSG:32648",
                   transform=from_origin(0, 0, 0.5, 0.5))  # fmt: skip
    with rasterio.open(tmp_path / "mask.tif", "w", **profile) as dst:
        dst.write(mask)
    with rasterio.open(tmp_path / "prob.tif", "w", **{**profile, "dtype": "float32"}) as dst:
        dst.write(mask.astype(np.float32) * 0.75)
    polygons, areas, means = polygons_from_mask(tmp_path / "mask.tif", tmp_path / "prob.tif", 0.5, min_area=2.0)
    assert len(polygons) == 1 and areas == [pytest.approx(50 * 100 * 0.25)] and means == [pytest.approx(0.75)]
    write_polygons(tmp_path / "p.geojson", polygons, areas, means, rasterio.crs.CRS.from_epsg(32648), "GeoJSON")
    assert pyogrio.read_info(tmp_path / "p.geojson")["features"] == 1


def test_window_weights_blend_smoothly():
    weights = window_weights(64)
    assert weights.shape == (64, 64) and (weights > 0).all() and np.allclose(weights, weights.T)
    assert weights[32, 32] > 0.99 and weights[0, 0] < 0.01


def _write(path, data, crs="EPSG:32648", nodata=None):
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0], dtype="uint8",
                   crs=crs, transform=from_origin(0, 0, 1, 1), nodata=nodata)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return path


def test_bad_scenes_fail_with_one_line_naming_the_file_and_the_fix(checkpoint, scene, tmp_path):
    grey = _write(tmp_path / "grey.tif", np.full((1, 64, 64), 90, np.uint8))
    degrees = _write(tmp_path / "degrees.tif", np.full((3, 64, 64), 90, np.uint8), crs="EPSG:4326")
    empty = _write(tmp_path / "empty.tif", np.zeros((3, 64, 64), np.uint8), nodata=0)
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(scene[0].read_bytes()[:20_000])
    cases = [
        (grey, "1 band.*--bands"),
        (degrees, "geographic CRS.*--gsd"),
        (empty, "all no-data"),
        (junk, "cannot read .*junk.tif"),
        (truncated, "truncated.tif.*truncated or corrupt"),
    ]
    for path, message in cases:
        with pytest.raises(DataError, match=message):
            map_scene(path, checkpoint, tmp_path / "out", window=128, progress=False)
        assert not (tmp_path / "out").exists(), f"{path.name} left a half-written result"
    map_scene(grey, checkpoint, tmp_path / "grey", bands=(1, 1, 1), window=128, progress=False)
    map_scene(degrees, checkpoint, tmp_path / "deg", gsd=1.0, window=128, progress=False)
    with pytest.raises(DataError, match="earlier map.*--overwrite"):
        map_scene(grey, checkpoint, tmp_path / "grey", bands=(1, 1, 1), window=128, progress=False)


def test_map_command_writes_geojson_and_refuses_to_overwrite(checkpoint, scene, tmp_path, capsys):
    args = ["map", str(scene[0]), str(checkpoint), str(tmp_path), "--window", "128"]  # SCENE CHECKPOINT OUT
    assert main([*args, "--format", "geojson", "--tta", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "landslides" in out and (tmp_path / "landslides.geojson").is_file()
    assert "model ground pixel size 1.00 m (nominal" in out  # the training images were resized
    assert f"emr_lib transfer {checkpoint} SCENE OUT --mask MASK --tile SIZE --scale 1" in out  # the next step
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    old_spelling = ["map", str(scene[0]), "--checkpoint", str(checkpoint), "--out", str(tmp_path)]
    assert main(old_spelling) == 2 and "--overwrite" in capsys.readouterr().err  # --checkpoint/--out still read
    assert main(["map", str(scene[0]), str(checkpoint)]) == 2 and "OUT is missing" in capsys.readouterr().err


@pytest.mark.slow
def test_peak_memory_follows_the_window_not_the_scene(checkpoint, tmp_path):
    script = (
        "import resource, sys, warnings; warnings.simplefilter('ignore'); from emr_lib.mapping.scene import map_scene; "
        "map_scene(sys.argv[1], sys.argv[2], sys.argv[3], window=128, progress=False); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    peaks = {}
    for size in (768, 1536):  # 4x the area
        path, _ = write_synthetic_geotiff(tmp_path / f"s{size}.tif", size, 1.0, 0, block=256)
        done = subprocess.run([sys.executable, "-c", script, str(path), str(checkpoint), str(tmp_path / f"o{size}")],
                              capture_output=True, text=True, cwd=REPO, check=True)  # fmt: skip
        peaks[size] = int(done.stdout.split()[-1])
    assert peaks[1536] <= 1.3 * peaks[768], peaks


def test_real_uav_scene_is_mapped_on_its_own_grid(checkpoint, real_data, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = map_scene(real_data / "uav-road" / "image.png", checkpoint, tmp_path, scale=0.05, progress=False)
    with rasterio.open(tmp_path / "mask.tif") as mask:
        assert (mask.width, mask.height) == (6144, 7680)
        corner = mask.read(1, window=((0, 64), (0, 64)))
    assert summary["valid_pixels"] < 6144 * 7680 and (corner == MASK_NODATA).all()  # black outside the flight
    assert 0 < scene_metrics(tmp_path / "mask.tif", real_data / "uav-road" / "mask.png")["mIoU"] < 1


def test_tiles_for_fine_tuning_come_from_a_region_in_map_coordinates(scene, tmp_path, capsys):
    top_half = "500000,2999808,500384,3000000"  # x0,y0,x1,y1 in metres (UTM): rows 0-192 of 384
    args = ["data", "tile", str(scene[0]), str(scene[1]), str(tmp_path), "--tile", "64", "--max-nodata", "1"]
    assert main([*args, "--region", top_half, "--region-units", "map"]) == 0
    rows = {int(p.stem.split("_y")[1][:5]) for p in (tmp_path / "images").glob("*.png")}
    assert rows and max(rows) + 64 <= 192
    assert main([*args, "--region", "1,2,3"]) == 2 and "four numbers" in capsys.readouterr().err


def test_sixteen_bit_imagery_is_stretched_to_eight_bits(tmp_path):
    from emr_lib.mapping.geo import open_scene

    values = np.linspace(1000, 4000, 3 * 64 * 64).reshape(3, 64, 64).astype(np.uint16)
    path = tmp_path / "uint16.tif"
    profile = dict(driver="GTiff", width=64, height=64, count=3, dtype="uint16", crs="EPSG:32648",
                   transform=from_origin(0, 0, 1, 1))  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values)
    scene = open_scene(path)
    try:
        rgb, valid = scene.read(rasterio.windows.Window(0, 0, 64, 64))
    finally:
        scene.close()
    assert rgb.dtype == np.uint8 and valid.all() and rgb.min() == 0 and rgb.max() == 255
