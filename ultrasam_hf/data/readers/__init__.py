"""Readers by format family. Each exposes `list_items(root, spec, categories) -> [RawItem]` (cheap: paths only) and
`load_frames(root, item, spec, categories) -> iterator of Frame` (decodes; raises `SkipItem` for bad input)."""

from types import SimpleNamespace

from . import coco_polygons, ellipse, hdf5, labelme, pairs, point_list_json, video_tracings, volume
from .base import Frame, RawItem, SkipItem


READERS = {
    "image_mask_pairs": pairs,
    "ellipse": ellipse,
    "labelme": labelme,
    "coco_polygons": coco_polygons,
    "point_list_json": point_list_json,
    "volume": volume,
    "npy": SimpleNamespace(list_items=volume.list_items, load_frames=volume.load_npy_frames),
    "hdf5": hdf5,
    "video_tracings": video_tracings,
}

__all__ = ["READERS", "Frame", "RawItem", "SkipItem"]
