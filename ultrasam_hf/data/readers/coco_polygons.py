"""COCO annotation files (GIST514-DB style): polygon or RLE segmentations, one item per image entry.

Card spec:
    annotations: glob(s) of COCO JSON files
    images_dir: folder of the images relative to the raw root (default: the JSON's folder); "{json_stem}" allowed
    category_key: "name" (default) or "id": whether the card's category keys are the COCO category names or ids
Category keys are COCO category names (or ids as strings, `category_key: id`). The item id is "<json stem>/<file stem>" so the official train/test
files stay apart; an `official_folder` split rule can match the JSON name in the item's files.
"""

import json
from pathlib import Path

from .base import Frame, RawItem, SkipItem, glob_relative, lazy_module, path_fields
from .image_io import read_image
from .polygons import add_layer, fill_polygons

mask_utils = lazy_module("pycocotools.mask")  # the data extra: imported on first use


OPTIONS = frozenset({"annotations", "images_dir", "category_key"})


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("annotations"):
        raise ValueError("coco_polygons spec needs 'annotations'")
    items = []
    for json_path in glob_relative(root, spec["annotations"]):
        document = json.loads((Path(root) / json_path).read_text(encoding="utf-8"))
        names = {entry["id"]: entry["name"] for entry in document.get("categories", [])}
        if spec.get("category_key", "name") == "id":
            names = {}
        by_image = {}
        for annotation in document.get("annotations", []):
            by_image.setdefault(annotation["image_id"], []).append(
                {
                    "category": names.get(annotation["category_id"], str(annotation["category_id"])),
                    "segmentation": annotation.get("segmentation"),
                }
            )
        json_stem = path_fields(json_path)["stem"]
        images_dir = spec.get("images_dir", Path(json_path).parent.as_posix()).format(json_stem=json_stem)
        for entry in document.get("images", []):
            image_path = (Path(images_dir) / entry["file_name"]).as_posix()
            stem = path_fields(image_path)["stem"]
            item = RawItem(
                f"{json_stem}/{stem}",
                stem,
                [image_path, json_path],
                {
                    "image": image_path,
                    "annotations": by_image.get(entry["id"], []),
                    "size": [entry.get("height"), entry.get("width")],
                },
            )
            if not (Path(root) / image_path).is_file():
                item.skip_reason = f"missing image: {image_path} listed in {json_path}"
            items.append(item)
    return items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    image, image_bytes, spacing = read_image(Path(root) / item.payload["image"])
    height, width = image.shape[:2]
    layers, unmapped = {}, {}
    for annotation in item.payload["annotations"]:
        key, segmentation = annotation["category"], annotation["segmentation"]
        if key not in categories:
            unmapped[key] = unmapped.get(key, 0) + 1
            continue
        if isinstance(segmentation, list):
            mask = fill_polygons(segmentation, (height, width))
        elif isinstance(segmentation, dict):
            rle = (
                mask_utils.frPyObjects(segmentation, height, width)
                if isinstance(segmentation["counts"], list)
                else segmentation
            )
            mask = mask_utils.decode(rle).astype(bool)
            if mask.shape != (height, width):
                raise SkipItem(f"mask size mismatch: RLE {mask.shape} vs image {(height, width)}")
        else:
            raise SkipItem(f"bad annotation: segmentation of type {type(segmentation).__name__}")
        add_layer(layers, key, mask)
    yield Frame(layers=layers, image=image, image_bytes=image_bytes, pixel_spacing_mm=spacing, unmapped=unmapped)
