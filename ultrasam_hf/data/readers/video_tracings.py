"""Videos + tracing CSV (EchoNet style): only the traced frames (ED/ES) become rows, their polygons filled.

Card spec:
    videos: glob(s) of AVI/MP4 files
    tracings: path of the tracing CSV relative to the raw root, a template over the video's path fields and the named
              groups of `id_regex` (EchoNet-Pediatric: one CSV per view, "{dir}/../VolumeTracings.csv"). Either
              EchoNet-Dynamic columns FileName,X1,Y1,X2,Y2,Frame (each row a chord across the ventricle: the outline
              is the X1/Y1 ends then the X2/Y2 ends reversed, first chord skipped, as in echonet/dynamic) or polygon
              columns FileName,X,Y,Frame (EchoNet-Pediatric); rows whose Frame is not a number ("No Systolic") are
              not tracings and are left out
    first_frame: the number the CSV gives a video's first frame (default 0; EchoNet-Pediatric counts from 1)
    category_key: the category key every tracing gets (default "lv")
    id_regex, image_id, key: as for image_mask_pairs (defaults "{stem}")
The frame id is "<video id>#<frame>" (frames counted from 0 in decode order); the group (scan) is the video.
"""

import csv
from pathlib import Path

import numpy as np

from .base import (
    Frame,
    RawItem,
    SkipItem,
    fill_template,
    glob_relative,
    normalise,
    path_fields,
)
from .polygons import fill_polygons
from .video_io import read_video_frames

OPTIONS = frozenset({"videos", "tracings", "first_frame", "category_key", "id_regex", "image_id", "key"})


def read_tracings(path: Path, first_frame: int = 0) -> dict:
    """-> {video stem: {frame (0-based): [[x, y], ...]}}"""
    points = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            stem = (
                Path(row["FileName"]).stem if row["FileName"].lower().endswith((".avi", ".mp4")) else row["FileName"]
            )
            try:
                frame = int(float(row["Frame"])) - first_frame
            except ValueError:
                continue
            entry = points.setdefault(stem, {}).setdefault(frame, [])
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
    first = int(spec.get("first_frame", 0))
    tables, items = {}, []
    for video_path in glob_relative(root, spec["videos"]):
        try:
            fields = path_fields(video_path, spec.get("id_regex"))
        except SkipItem as error:
            items.append(RawItem(video_path, video_path, [video_path], skip_reason=str(error)))
            continue
        tracings_path = normalise(fill_template(spec["tracings"], fields))
        if tracings_path not in tables:
            if not (Path(root) / tracings_path).is_file():
                raise FileNotFoundError(f"tracing CSV not found: {Path(root) / tracings_path}")
            tables[tracings_path] = read_tracings(Path(root) / tracings_path, first)
        frames = tables[tracings_path].get(fields["stem"], {})
        item = RawItem(
            fill_template(spec.get("image_id", "{stem}"), fields),
            fill_template(spec.get("key", "{stem}"), fields),
            [video_path, tracings_path],
            {"video": video_path, "frames": frames},
        )
        if not frames:
            item.skip_reason = f"missing mask: no tracing for {fields['stem']} in {tracings_path}"
        elif min(frames) < 0:
            item.skip_reason = f"unknown layout: tracing frame numbers below first_frame {first} in {tracings_path}"
        items.append(item)
    return items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    wanted = item.payload["frames"]
    decoded = read_video_frames(Path(root) / item.payload["video"], wanted)
    key = str(spec.get("category_key", "lv"))
    for frame_index in sorted(wanted):
        image = decoded[frame_index]
        layer = fill_polygons([wanted[frame_index]], image.shape[:2])
        yield Frame(
            layers={key: layer} if layer.any() else {},
            image=image,
            frame_index=frame_index,
            image_id=f"{item.item_id}#{frame_index:05d}",
        )
