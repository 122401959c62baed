"""Mapping real scenes: GeoTIFF reading and writing, a trained model run over a whole scene, and ONNX export.

The only package that needs the ``maps`` extra (rasterio, shapely, pyogrio, onnx).
"""

from .export import export_onnx, onnx_difference
from .geo import (
    GDAL_CACHE_MB,
    MASK_NODATA,
    PROBABILITY_NODATA,
    Scene,
    open_scene,
    pixel_region,
    polygons_from_mask,
    raster_profile,
    read_raster,
    scene_blocks,
    write_polygons,
    write_synthetic_geotiff,
)
from .scene import (
    OUTPUT_NAMES,
    checkpoint_gsd,
    inference_scale,
    map_scene,
    plot_map,
    scale_sweep,
    scene_metrics,
    window_weights,
)

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
    "OUTPUT_NAMES",
    "checkpoint_gsd",
    "inference_scale",
    "window_weights",
    "map_scene",
    "scene_metrics",
    "scale_sweep",
    "plot_map",
    "export_onnx",
    "onnx_difference",
]
