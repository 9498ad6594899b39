"""Videos with one mask image per annotated frame (brachial plexus style): each video is an item, each frame that
has a mask file becomes a row.

Card spec:
    videos: glob(s) of MP4/AVI files
    mask: {category key: template} (one binary mask file per category and frame: a pixel above `threshold`, default
          0, is foreground) or one template of a label mask per frame; templates take the path fields of the video
          ({stem} {dir} ...), the named groups of `id_regex`, and {frame}: the frame number, with a format spec for
          zero padding, e.g. "{dir}/../ac_masks/{stem}/{stem}_{frame:03d}.jpg"
    first_frame: the number the release gives the video's first frame in mask names (default 0)
    id_regex, image_id, key: as for image_mask_pairs; threshold, background, colour_tolerance, fill_holes
The frame id is "<video id>#<frame>" (frames counted from 0 in decode order); the group (scan) is the video.
"""

import re
from pathlib import Path

from .base import (
    Frame,
    RawItem,
    SkipItem,
    fill_template,
    glob_relative,
    normalise,
    path_fields,
)
from .image_io import fill_holes, labels_to_layers, read_grey_mask, read_label_image
from .video_io import read_video_frames

OPTIONS = frozenset(
    {
        "videos",
        "mask",
        "first_frame",
        "id_regex",
        "image_id",
        "key",
        "threshold",
        "background",
        "colour_tolerance",
        "fill_holes",
    }
)
TOKEN = "\x00frame\x00"


class FramePlaceholder:
    """Stands for {frame} (whatever its format spec) while a template is turned into a glob and a regex."""

    def __format__(self, format_spec):
        return TOKEN


def frame_files(root: Path, template: str, fields: dict) -> dict:
    """-> {frame number as named by the release: relative path} of the files a {frame} template matches."""
    pattern = normalise(fill_template(template, {**fields, "frame": FramePlaceholder()}))
    if TOKEN not in pattern:
        raise ValueError(f"video mask template {template!r} has no {{frame}} field")
    regex = re.compile(re.escape(pattern).replace(re.escape(TOKEN), r"(\d+)"))
    found = {}
    for path in glob_relative(root, pattern.replace(TOKEN, "*")):
        match = regex.fullmatch(path)
        if match:
            found[int(match.group(1))] = path
    return found


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("videos") or not spec.get("mask"):
        raise ValueError("video_masks spec needs 'videos' and 'mask'")
    templates = spec["mask"] if isinstance(spec["mask"], dict) else {None: spec["mask"]}
    first = int(spec.get("first_frame", 0))
    items = []
    for video_path in glob_relative(root, spec["videos"]):
        try:
            fields = path_fields(video_path, spec.get("id_regex"))
        except SkipItem as error:
            items.append(RawItem(video_path, video_path, [video_path], skip_reason=str(error)))
            continue
        frames = {}
        for key, template in templates.items():
            for number, path in frame_files(root, template, fields).items():
                frames.setdefault(number - first, {})[key] = path
        files = [video_path] + sorted(path for masks in frames.values() for path in masks.values())
        item = RawItem(
            fill_template(spec.get("image_id", "{stem}"), fields),
            fill_template(spec.get("key", "{stem}"), fields),
            files,
            {"video": video_path, "frames": frames},
        )
        if not frames:
            item.skip_reason = f"missing mask: no file matches {spec['mask']} for {video_path}"
        elif min(frames) < 0:
            item.skip_reason = f"unknown layout: mask frame numbers below first_frame {first} for {video_path}"
        items.append(item)
    return items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    wanted = item.payload["frames"]
    decoded = read_video_frames(Path(root) / item.payload["video"], wanted)
    threshold = float(spec.get("threshold", 0))
    for index in sorted(wanted):
        image = decoded[index]
        layers, unmapped = {}, {}
        for key, path in wanted[index].items():
            if key is None:
                labels = read_label_image(Path(root) / path, any("," in name for name in categories))
            else:
                labels = read_grey_mask(Path(root) / path)
            if labels.shape[:2] != image.shape[:2]:
                sizes = f"{labels.shape[1]}x{labels.shape[0]}, frame {image.shape[1]}x{image.shape[0]}"
                raise SkipItem(f"mask size mismatch: {path} is {sizes}")
            if key is None:
                layers, unmapped = labels_to_layers(labels, categories, spec)
            elif key not in categories:
                unmapped[key] = unmapped.get(key, 0) + 1
            elif (labels > threshold).any():
                layers[key] = labels > threshold
        if spec.get("fill_holes") and any(key is not None for key in wanted[index]):
            layers = {key: fill_holes(layer) for key, layer in layers.items()}
        yield Frame(
            layers=layers, image=image, frame_index=index, image_id=f"{item.item_id}#{index:05d}", unmapped=unmapped
        )
