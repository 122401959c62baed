"""Georeferenced rasters and polygons: reading a scene window by window, writing GeoTIFFs and vectors.

Everything goes through rasterio (GDAL), so a scene can be a GeoTIFF of any size, or a PNG
or JPEG without coordinates. Nothing here holds a whole scene: reads are windows,
resampled on the fly to the resolution the model wants, and GDAL's block cache is capped
(:data:`GDAL_CACHE_MB`) so memory follows the window size, not the scene's.

Layout of what :func:`emr_lib.mapping.scene.map_scene` writes (all in the scene's CRS and grid)::

    probability.tif   float32 landslide probability, nodata -1
    mask.tif          uint8 0 background / 1 landslide, nodata 255
    landslides.gpkg   one polygon per landslide: area_m2, mean_prob (or .geojson)
    quicklook.png     a small picture of the scene with the landslides outlined
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
import rasterio.windows
import shapely
from rasterio.enums import MaskFlags, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.features import geometry_mask, shapes
from rasterio.windows import Window

from ..data.io import DataError

__all__ = [
    "GDAL_CACHE_MB",
    "PROBABILITY_NODATA",
    "MASK_NODATA",
    "Scene",
    "open_scene",
    "raster_profile",
    "scene_blocks",
    "polygons_from_mask",
    "write_polygons",
    "write_synthetic_geotiff",
    "read_raster",
    "pixel_region",
]

GDAL_CACHE_MB = 64  # GDAL's default is 5 % of RAM, which would grow with the scene
PROBABILITY_NODATA = -1.0
MASK_NODATA = 255


@dataclass
class Scene:
    """An open scene: where it is, its grid, which bands are RGB, and its ground pixel size."""

    path: Path
    dataset: rasterio.DatasetReader
    bands: tuple[int, int, int]
    gsd_m: float | None  # metres per pixel, from a projected CRS or --gsd; None if unknown
    stretch: tuple[float, float] | None  # (low, high) mapped to 0-255 for non-8-bit imagery

    @property
    def width(self) -> int:
        return self.dataset.width

    @property
    def height(self) -> int:
        return self.dataset.height

    @property
    def crs(self):
        return self.dataset.crs

    @property
    def transform(self):
        return self.dataset.transform

    @property
    def georeferenced(self) -> bool:
        return self.dataset.crs is not None

    @property
    def has_mask(self) -> bool:
        """Whether the file marks its no-data (a nodata value, a mask band or alpha)."""
        flags = self.dataset.mask_flag_enums
        return not all(MaskFlags.all_valid in flags[band - 1] for band in self.bands)

    def read(self, window: Window, out_shape: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """RGB (h, w, 3) uint8 and validity (h, w) bool of ``window``, resampled to ``out_shape``.

        Without a nodata value or mask in the file, all-zero pixels are no-data (black outside
        an orthophoto's flown area).
        """
        shape = out_shape or (int(round(window.height)), int(round(window.width)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                bilinear = Resampling.bilinear
                data = self.dataset.read(self.bands, window=window, out_shape=(3, *shape), resampling=bilinear)
                if self.has_mask:
                    masks = self.dataset.read_masks(self.bands, window=window, out_shape=(3, *shape))
                    valid = np.all(masks > 0, axis=0)
        except RasterioError as err:
            raise DataError(
                f"cannot read part of {self.path} (rows from {window.row_off:.0f}, columns from {window.col_off:.0f}): "
                "the file looks truncated or corrupt; copy or download it again"
            ) from err
        if self.stretch is not None:
            low, high = self.stretch
            data = np.clip((data.astype(np.float32) - low) * (255 / max(high - low, 1e-6)), 0, 255)
        rgb = np.ascontiguousarray(data.astype(np.uint8).transpose(1, 2, 0))
        if not self.has_mask:
            valid = np.any(rgb > 0, axis=2)
        return rgb, valid

    def overview(self, max_side: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """The whole scene shrunk to at most ``max_side`` pixels (for quick looks)."""
        factor = max(self.width, self.height) / max_side
        shape = (max(1, round(self.height / max(factor, 1))), max(1, round(self.width / max(factor, 1))))
        return self.read(Window(0, 0, self.width, self.height), shape)

    def close(self) -> None:
        self.dataset.close()


def _ground_pixel_size(dataset, path: Path, gsd: float | None) -> float | None:
    if gsd is not None:
        if gsd <= 0:
            raise DataError(f"--gsd must be a positive number of metres per pixel, got {gsd}")
        return float(gsd)
    crs = dataset.crs
    if crs is None:
        return None
    if crs.is_geographic:
        raise DataError(
            f"{path} is in a geographic CRS ({crs.to_string()}, degrees), so its pixel size in metres is unknown: "
            "pass --gsd METRES, or reproject it to a projected CRS (e.g. gdalwarp -t_srs EPSG:32648)"
        )
    unit_factor = crs.linear_units_factor[1] if crs.is_projected else 1.0
    return abs(dataset.transform.a) * unit_factor


def _tiled_copy(dataset, path: Path, workdir: Path):
    """A tiled GeoTIFF copy of a PNG or JPEG, streamed by GDAL: those formats decode from the
    start of the file on every window read, so a scene would be decoded once per window."""
    copy = workdir / "scene_tiled.tif"
    try:
        rasterio.shutil.copy(dataset, copy, driver="GTiff", tiled=True, blockxsize=256, blockysize=256)
    except RasterioError as err:
        raise DataError(f"cannot read {path}: {err}; the file looks truncated or corrupt") from err
    finally:
        dataset.close()
    return rasterio.open(copy)


def open_scene(
    path: str | Path, bands: tuple[int, ...] | None = None, gsd: float | None = None, workdir: Path | None = None
) -> Scene:
    """Open a scene for windowed reading, checking what a mapping run needs from it.

    ``bands`` (1-based, default 1,2,3) pick the RGB bands; ``gsd`` (metres per pixel) is
    required for a scene in degrees and gives a scene without coordinates a scale. With
    ``workdir``, a scene in a format without random access (PNG, JPEG) is read through a
    tiled copy made there.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"scene not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path)
            if workdir is not None and dataset.driver not in ("GTiff", "COG", "VRT"):
                dataset = _tiled_copy(dataset, path, workdir)
    except RasterioError as err:
        raise DataError(f"cannot read {path} as a raster ({err}); give a GeoTIFF, PNG or JPEG scene") from err
    try:
        if bands is None:
            if dataset.count < 3:
                raise DataError(
                    f"{path} has {dataset.count} band(s), and RGB needs three: pass --bands, "
                    "e.g. --bands 1,1,1 for a grey image"
                )
            bands = (1, 2, 3)
        bands = tuple(int(b) for b in bands)
        if len(bands) != 3 or not all(1 <= b <= dataset.count for b in bands):
            raise DataError(f"--bands must name three bands between 1 and {dataset.count} for {path}, got {bands}")
        scene = Scene(path, dataset, bands, _ground_pixel_size(dataset, path, gsd), None)
        if dataset.dtypes[bands[0] - 1] != "uint8":
            scene.stretch = _percentile_stretch(scene)
    except Exception:
        dataset.close()
        raise
    if not scene.georeferenced:
        warnings.warn(
            f"{path} has no coordinates: outputs are in pixel coordinates"
            + ("" if scene.gsd_m else ", and areas in pixels (pass --gsd for square metres)"),
            stacklevel=2,
        )
    return scene


def _percentile_stretch(scene: Scene) -> tuple[float, float]:
    """2-98 % of a shrunk read: how 16-bit or float imagery is mapped to the 8 bits the models saw."""
    factor = max(1.0, max(scene.width, scene.height) / 512)
    shape = (3, max(1, round(scene.height / factor)), max(1, round(scene.width / factor)))
    data = scene.dataset.read(scene.bands, out_shape=shape).astype(np.float64)
    valid = data[data > 0]
    if valid.size == 0:
        return (0.0, 1.0)
    low, high = np.percentile(valid, [2, 98])
    return float(low), float(high)


def raster_profile(scene: Scene, dtype: str, nodata: float) -> dict:
    """A tiled, compressed single-band GeoTIFF on the scene's grid."""
    return {
        "driver": "GTiff",
        "width": scene.width,
        "height": scene.height,
        "count": 1,
        "dtype": dtype,
        "nodata": nodata,
        "crs": scene.crs,
        "transform": scene.transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }


def scene_blocks(height: int, width: int, block: int = 1024) -> list[Window]:
    """Windows of at most ``block`` pixels that tile a ``height`` x ``width`` grid, row by row."""
    return [
        Window(x, y, min(block, width - x), min(block, height - y))
        for y in range(0, height, block)
        for x in range(0, width, block)
    ]


def _pixel_window(bounds: tuple[float, float, float, float], raster) -> Window:
    """The pixel window of map ``bounds`` in ``raster``, for north-up and pixel-coordinate grids alike."""
    inverse = ~raster.transform
    columns, rows = zip(*(inverse * (x, y) for x in bounds[0::2] for y in bounds[1::2]))
    col0, row0 = max(0, math.floor(min(columns))), max(0, math.floor(min(rows)))
    col1, row1 = min(raster.width, math.ceil(max(columns))), min(raster.height, math.ceil(max(rows)))
    return Window(col0, row0, max(1, col1 - col0), max(1, row1 - row0))


def _mask_polygons(mask_path: str | Path, area_per_unit: float, min_area: float) -> list:
    """Simplified landslide polygons of a mask GeoTIFF, at least ``min_area`` large.

    Read block by block. A piece inside its block is final at once (simplified, kept if large
    enough), so memory holds simplified polygons only; pieces that touch a block's edge may
    go on in the next block and are merged at the end, then simplified.
    """
    finished, edge_pieces = [], []
    with rasterio.open(mask_path) as src:
        pixel = abs(src.transform.a)
        for window in scene_blocks(src.height, src.width):
            block = src.read(1, window=window)
            landslide = block == 1
            if not landslide.any():
                continue
            left, bottom, right, top = rasterio.windows.bounds(window, src.transform)
            inner = (min(left, right) + pixel / 2, min(bottom, top) + pixel / 2)
            outer = (max(left, right) - pixel / 2, max(bottom, top) - pixel / 2)
            for geometry, _ in shapes(block, mask=landslide, transform=src.window_transform(window)):
                piece = shapely.geometry.shape(geometry)
                x0, y0, x1, y1 = piece.bounds
                if x0 < inner[0] or y0 < inner[1] or x1 > outer[0] or y1 > outer[1]:
                    edge_pieces.append(piece)
                elif piece.area * area_per_unit >= min_area:
                    finished.append(piece.simplify(pixel, preserve_topology=True))
    merged = shapely.unary_union(edge_pieces) if edge_pieces else shapely.geometry.Polygon()
    for polygon in getattr(merged, "geoms", [merged]):
        if not polygon.is_empty and polygon.area * area_per_unit >= min_area:
            finished.append(polygon.simplify(pixel, preserve_topology=True))
    return finished


def polygons_from_mask(
    mask_path: str | Path, probability_path: str | Path, gsd_m: float | None, min_area: float = 0.0
) -> tuple[list, list[float], list[float]]:
    """Landslide polygons of a mask GeoTIFF, with their area and mean probability.

    Pieces cut by block edges are merged; polygons are simplified to the pixel size; those
    smaller than ``min_area`` (m², or pixels when the ground size is unknown) are dropped.
    Areas are in m² when the pixel size is known, else in pixels.
    """
    with rasterio.open(mask_path) as src:
        pixel = abs(src.transform.a)
    # area in m²: map units when projected; pixels times gsd² when the scene has no coordinates
    area_per_unit = (gsd_m / pixel) ** 2 if gsd_m else 1.0
    polygons = _mask_polygons(mask_path, area_per_unit, min_area)
    areas, means = [], []
    with rasterio.open(probability_path) as prob:
        for polygon in polygons:
            window = _pixel_window(polygon.bounds, prob)
            values = prob.read(1, window=window)
            inside = geometry_mask([polygon], values.shape, prob.window_transform(window), invert=True)
            inside &= values >= 0
            areas.append(float(polygon.area * area_per_unit))
            means.append(float(values[inside].mean()) if inside.any() else math.nan)
    return polygons, areas, means


def write_polygons(path: str | Path, polygons: list, areas: list[float], means: list[float], crs, driver: str) -> None:
    """Write polygons with ``area_m2`` and ``mean_prob`` to a GeoPackage or GeoJSON file."""
    import pyogrio.raw

    geometry = shapely.to_wkb(np.array(polygons, dtype=object)) if polygons else np.array([], dtype=object)
    with warnings.catch_warnings():  # a scene without a CRS was already warned about when it was opened
        warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
        pyogrio.raw.write(
            str(path),
            geometry,
            [np.asarray(areas, np.float64), np.asarray(means, np.float64)],
            ["area_m2", "mean_prob"],
            layer="landslides",
            driver=driver,
            geometry_type="Polygon",
            crs=crs.to_wkt() if crs is not None else None,
            promote_to_multi=False,
        )


def write_synthetic_geotiff(
    path: str | Path,
    size: int = 1024,
    gsd_m: float = 1.0,
    seed: int = 0,
    crs: str = "EPSG:32648",
    origin: tuple[float, float] = (500_000.0, 3_000_000.0),
    nodata_border: int = 0,
    block: int = 1024,
) -> tuple[Path, Path]:
    """A georeferenced synthetic scene and its mask, written block by block (any size, little memory).

    Each block is one of the kit's synthetic landslide scenes at ``gsd_m`` metres per pixel
    (UTM zone 48N by default, south-west China). ``nodata_border`` pixels around the scene
    are black, as outside an orthophoto's flown area. Returns the image and mask paths.
    """
    from ..data.synthetic import SyntheticLandslides

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mask_path = path.with_name(f"{path.stem}_mask.tif")
    transform = rasterio.transform.from_origin(origin[0], origin[1], gsd_m, gsd_m)
    profile = dict(
        driver="GTiff", width=size, height=size, crs=crs, transform=transform, tiled=True, blockxsize=256,
        blockysize=256, compress="deflate", BIGTIFF="IF_SAFER",
    )  # fmt: skip
    block = min(block, size)
    windows = scene_blocks(size, size, block)
    scenes = SyntheticLandslides(min(len(windows), 16), size=block, seed=seed)
    with (
        rasterio.open(path, "w", count=3, dtype="uint8", **profile) as img,
        rasterio.open(mask_path, "w", count=1, dtype="uint8", **profile) as msk,
    ):
        for i, window in enumerate(windows):
            image, mask = scenes.read(i * 5 % len(scenes))  # 5 is prime to 16: neighbours differ
            h, w = int(window.height), int(window.width)
            image, mask = image[:h, :w].copy(), mask[:h, :w].copy()
            y, x = np.mgrid[window.row_off : window.row_off + h, window.col_off : window.col_off + w]
            inner = slice(nodata_border, size - nodata_border)
            outside = (y < inner.start) | (x < inner.start) | (y >= inner.stop) | (x >= inner.stop)
            image[outside], mask[outside] = 0, 0
            image[~outside & np.all(image == 0, axis=2)] = 1  # black stays reserved for no-data
            img.write(image.transpose(2, 0, 1), window=window)
            msk.write(mask[None], window=window)
    return path, mask_path


def read_raster(path: str | Path) -> np.ndarray:
    """A whole raster as an array: (H, W, 3) uint8 for an RGB scene, (H, W) for a one-band mask.

    For cutting training tiles (:func:`emr_lib.data.tile_scene`), which holds the scene anyway;
    mapping never calls it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read(1) if src.count == 1 else np.ascontiguousarray(src.read((1, 2, 3)).transpose(1, 2, 0))


def pixel_region(path: str | Path, region: list[float]) -> tuple[int, int, int, int] | None:
    """``region`` (x0, y0, x1, y1 in the raster's map coordinates) as a pixel box (col0, row0, col1, row1);
    None when the raster at ``path`` has no coordinate reference system."""
    with rasterio.open(path) as src:
        if src.crs is None:
            return None
        rows, cols = rasterio.transform.rowcol(src.transform, region[0::2], region[1::2])
    return (int(min(cols)), int(min(rows)), int(max(cols)), int(max(rows)))
