"""LabelMe JSON polygons (UBPD style): one JSON per image, image next to it or embedded as `imageData`.

Card spec:
    annotations: glob(s) of the JSON files
    image_id / key: templates over the JSON path (default "{stem}")
Category keys are the LabelMe `label` strings; shapes with unmapped labels are reported, not silently dropped.
"""

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from .base import Frame, RawItem, SkipItem, fill_template, glob_relative, path_fields
from .image_io import read_image, to_uint8
from .polygons import add_layer, fill_polygons


OPTIONS = frozenset({"annotations", "image_id", "key"})


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("annotations"):
        raise ValueError("labelme spec needs 'annotations'")
    items = []
    for json_path in glob_relative(root, spec["annotations"]):
        fields = path_fields(json_path)
        files = [json_path]
        try:
            image_name = json.loads((Path(root) / json_path).read_text(encoding="utf-8")).get("imagePath")
        except (OSError, ValueError) as error:
            items.append(RawItem(fields["stem"], fields["stem"], files, skip_reason=f"unreadable annotation: {error}"))
            continue
        image_path = None
        if image_name:
            candidate = (Path(json_path).parent / Path(image_name.replace("\\", "/"))).as_posix()
            if (Path(root) / candidate).is_file():
                image_path = candidate
                files.append(candidate)
        item_id = fill_template(spec.get("image_id", "{stem}"), fields)
        items.append(RawItem(item_id, fill_template(spec.get("key", "{stem}"), fields), files, {"json": json_path, "image": image_path}))
    return items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    document = json.loads((Path(root) / item.payload["json"]).read_text(encoding="utf-8"))
    if item.payload["image"]:
        image, image_bytes, spacing = read_image(Path(root) / item.payload["image"])
    elif document.get("imageData"):
        with Image.open(io.BytesIO(base64.b64decode(document["imageData"]))) as embedded:
            image, image_bytes, spacing = to_uint8(embedded), None, None
    else:
        raise SkipItem(f"missing image: {item.payload['json']} names no existing image and embeds none")
    shape = image.shape[:2]
    layers, unmapped = {}, {}
    for shape_entry in document.get("shapes", []):
        label, points = str(shape_entry.get("label", "")), shape_entry.get("points", [])
        if label not in categories:
            unmapped[label] = unmapped.get(label, 0) + 1
            continue
        kind = shape_entry.get("shape_type", "polygon")
        if kind == "rectangle":
            (x0, y0), (x1, y1) = points
            points = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
        elif kind == "circle":
            (cx, cy), (px, py) = points
            radius = float(np.hypot(px - cx, py - cy))
            angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
            points = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
        elif kind != "polygon":
            unmapped[f"{label} ({kind})"] = unmapped.get(f"{label} ({kind})", 0) + 1
            continue
        add_layer(layers, label, fill_polygons([points], shape))
    yield Frame(layers=layers, image=image, image_bytes=image_bytes, pixel_spacing_mm=spacing, unmapped=unmapped)
