"""Point-list JSON (AUL style): per image and structure, a JSON of [x, y] points outlining it.

Card spec:
    images: glob(s) of the images
    annotations: {category key: template of the JSON path}, e.g. {liver: "segmentation/liver/{stem}.json"}
    image_id / key: templates over the image path (default "{stem}"); id_regex: named groups for the templates
A JSON may hold one polygon ([[x, y], ...]), several ([[[x, y], ...], ...]) or {"points": ...}. A missing JSON means
the structure is absent on that image; an image with no JSON at all is skipped as "missing mask".
"""

import json
from pathlib import Path

from .base import Frame, RawItem, SkipItem, fill_template, glob_relative, normalise, path_fields
from .image_io import read_image
from .polygons import add_layer, fill_polygons

OPTIONS = frozenset({"images", "annotations", "id_regex", "image_id", "key"})


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("images") or not isinstance(spec.get("annotations"), dict):
        raise ValueError("point_list_json spec needs 'images' and an 'annotations' mapping key -> template")
    items = []
    for image_path in glob_relative(root, spec["images"]):
        try:
            fields = path_fields(image_path, spec.get("id_regex"))
        except SkipItem as error:
            items.append(RawItem(image_path, image_path, [image_path], skip_reason=str(error)))
            continue
        found = {}
        for key, template in spec["annotations"].items():
            path = normalise(fill_template(template, fields))
            if (Path(root) / path).is_file():
                found[str(key)] = path
        item = RawItem(
            fill_template(spec.get("image_id", "{stem}"), fields),
            fill_template(spec.get("key", "{stem}"), fields),
            [image_path, *found.values()],
            {"image": image_path, "annotations": found},
        )
        if not found:
            item.skip_reason = f"missing mask: no point-list JSON for {image_path}"
        items.append(item)
    return items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    image, image_bytes, spacing = read_image(Path(root) / item.payload["image"])
    layers, unmapped = {}, {}
    for key, path in item.payload["annotations"].items():
        if key not in categories:
            unmapped[key] = unmapped.get(key, 0) + 1
            continue
        try:
            document = json.loads((Path(root) / path).read_text(encoding="utf-8"))
        except ValueError as error:
            raise SkipItem(f"unreadable annotation: {path}: {error}") from None
        points = document.get("points", document) if isinstance(document, dict) else document
        polygons = points if points and isinstance(points[0][0], list) else [points]
        add_layer(layers, key, fill_polygons(polygons, image.shape[:2]))
    yield Frame(layers=layers, image=image, image_bytes=image_bytes, pixel_spacing_mm=spacing, unmapped=unmapped)
