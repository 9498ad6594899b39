"""LabelMe JSON polygons (UBPD style): one JSON per image, image next to it or embedded as `imageData`.

Card spec:
    annotations: glob(s) of the JSON files
    image_id / key: templates over the JSON path (default "{stem}")
    image: template of the image path (relative to the raw root) over the JSON path fields, e.g. "images/{stem}.jpg";
           when given it is the image, whatever `imagePath` says (UBPD: `imagePath` is stale in a fifth of the files
           and the embedded `imageData` has the outlines drawn into it); a missing file is a recorded skip
    encoding: encoding(s) of the JSON files, tried in order (default "utf-8"; UBPD: [utf-8, gbk])
Category keys are the LabelMe `label` strings; shapes with unmapped labels are reported, not silently dropped.
"""

import base64
import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .base import Frame, RawItem, SkipItem, as_list, fill_template, glob_relative, path_fields
from .image_io import read_image, to_uint8
from .polygons import add_layer, fill_polygons

OPTIONS = frozenset({"annotations", "image", "encoding", "image_id", "key"})


def read_document(path: Path, encodings) -> dict:
    """The JSON of one annotation, decoded with the first of `encodings` that fits (ValueError when none does)."""
    raw = Path(path).read_bytes()
    for encoding in encodings:
        try:
            return json.loads(raw.decode(encoding))
        except UnicodeDecodeError:
            continue
    raise ValueError(f"not decodable as {', '.join(encodings)}")


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("annotations"):
        raise ValueError("labelme spec needs 'annotations'")
    encodings = as_list(spec.get("encoding", "utf-8"))
    items = []
    for json_path in glob_relative(root, spec["annotations"]):
        fields = path_fields(json_path)
        files = [json_path]
        try:
            image_name = read_document(Path(root) / json_path, encodings).get("imagePath")
        except (OSError, ValueError) as error:
            items.append(RawItem(fields["stem"], fields["stem"], files, skip_reason=f"unreadable annotation: {error}"))
            continue
        image_path, reason = None, None
        if spec.get("image"):
            image_path = Path(os.path.normpath(fill_template(spec["image"], fields))).as_posix()
            if (Path(root) / image_path).is_file():
                files.append(image_path)
            else:
                reason = f"missing image: {image_path} (spec image {spec['image']!r}) for {json_path}"
        elif image_name:
            candidate = (Path(json_path).parent / Path(image_name.replace("\\", "/"))).as_posix()
            if (Path(root) / candidate).is_file():
                image_path = candidate
                files.append(candidate)
        item_id = fill_template(spec.get("image_id", "{stem}"), fields)
        payload = {"json": json_path, "image": image_path}
        items.append(RawItem(item_id, fill_template(spec.get("key", "{stem}"), fields), files, payload, reason))
    return items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    document = read_document(Path(root) / item.payload["json"], as_list(spec.get("encoding", "utf-8")))
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
