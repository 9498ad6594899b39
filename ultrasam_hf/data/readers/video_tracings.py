"""Videos + tracing CSV (EchoNet style): only the traced frames (ED/ES) become rows, their polygons filled.

Card spec:
    videos: glob(s) of AVI/MP4 files
    tracings: CSV path relative to the raw root. Either EchoNet-Dynamic columns FileName,X1,Y1,X2,Y2,Frame (each row a
              chord across the ventricle: the outline is the X1/Y1 ends then the X2/Y2 ends reversed, first chord
              skipped, as in echonet/dynamic) or polygon columns FileName,X,Y,Frame (EchoNet-Pediatric)
    category_key: the category key every tracing gets (default "lv")
The frame id is "<video stem>#<frame>"; the group (scan) is the video.
"""

import csv
from pathlib import Path

import cv2
import numpy as np

from .base import Frame, RawItem, SkipItem, glob_relative, path_fields
from .polygons import fill_polygons


def read_tracings(path: Path) -> dict:
    """-> {video stem: {frame: [[x, y], ...]}}"""
    points = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            stem = Path(row["FileName"]).stem if row["FileName"].lower().endswith((".avi", ".mp4")) else row["FileName"]
            entry = points.setdefault(stem, {}).setdefault(int(float(row["Frame"])), [])
            if "X1" in row:
                entry.append((float(row["X1"]), float(row["Y1"]), float(row["X2"]), float(row["Y2"])))
            else:
                entry.append((float(row["X"]), float(row["Y"])))
    polygons = {}
    for stem, frames in points.items():
        for frame, rows in frames.items():
            rows = np.asarray(rows)
            if rows.shape[1] == 4:
                outline = np.concatenate([rows[1:, :2], rows[1:, 2:][::-1]])
            else:
                outline = rows
            polygons.setdefault(stem, {})[frame] = outline.tolist()
    return polygons


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("videos") or not spec.get("tracings"):
        raise ValueError("video_tracings spec needs 'videos' and 'tracings'")
    tracings_path = Path(root) / spec["tracings"]
    if not tracings_path.is_file():
        raise FileNotFoundError(f"tracing CSV not found: {tracings_path}")
    tracings = read_tracings(tracings_path)
    items = []
    for video_path in glob_relative(root, spec["videos"]):
        stem = path_fields(video_path)["stem"]
        item = RawItem(stem, stem, [video_path, spec["tracings"]], {"video": video_path, "frames": tracings.get(stem, {})})
        if not item.payload["frames"]:
            item.skip_reason = f"missing mask: no tracing for {stem} in {spec['tracings']}"
        items.append(item)
    return items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    wanted = item.payload["frames"]
    capture = cv2.VideoCapture(str(Path(root) / item.payload["video"]))
    if not capture.isOpened():
        raise SkipItem(f"unreadable video: {item.payload['video']}")
    decoded, index = {}, 0
    try:
        while index <= max(wanted):
            ok, bgr = capture.read()
            if not ok:
                break
            if index in wanted:
                decoded[index] = bgr
            index += 1
    finally:
        capture.release()
    missing = sorted(set(wanted) - set(decoded))
    if missing:
        raise SkipItem(f"truncated video: {item.payload['video']} has no frame(s) {missing} (read {index})")
    key = str(spec.get("category_key", "lv"))
    for frame_index in sorted(wanted):
        rgb = cv2.cvtColor(decoded[frame_index], cv2.COLOR_BGR2RGB)
        image = rgb[..., 0].copy() if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all() else rgb
        layer = fill_polygons([wanted[frame_index]], image.shape[:2])
        yield Frame(layers={key: layer} if layer.any() else {}, image=image, frame_index=frame_index, image_id=f"{item.item_id}#{frame_index:05d}")
