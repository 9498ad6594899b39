"""Image + mask pairs (PNG/JPG/BMP/TIF/GIF/DICOM images; 1-bit, grey, palette, RGB or colour-coded masks).

Card spec:
    images: glob(s) of images, relative to the raw root (e.g. "Images/*.png")
    mask: template(s) of the mask path(s) of an image, may hold glob wildcards (several masks are merged per label);
          fields {stem} {name} {suffix} {dir} {parent} and the named groups of `id_regex`.
          Or a mapping {category key: template}: one binary mask file per category (any value above `threshold`,
          default 0, is that category), e.g. {nerve: "masks/nerve/{stem}.png", needle: "masks/needle/{stem}.png"}
    id_regex: optional regex on the image path whose named groups feed the templates
    image_id: template of the image id (default "{stem}"); key: template for metadata lookups (default "{stem}")
    exclude: glob(s) of images deliberately left out (recorded as skipped, e.g. simulated images)
    threshold, background, colour_tolerance, fill_holes: how mask values become labels (see image_io)
    resize_mask: "nearest" to resize masks of another size to the image; "rotate90" to turn a mask whose size is the
          image's transposed 90 degrees clockwise (FALLMUD, as its official converter); else such pairs are skipped
    category_from: a table (tables.py options: file (one or a list), sep, header, id_column, column, strip_suffix)
          giving each image's category key by its `key`: every foreground pixel (above `threshold`, default 0) of the
          mask (any mode: colour masks are read as grey) is that category (MMOTU-2D: tumour class per image in
          train_cls.txt / val_cls.txt)
    keep_empty: keep images whose mask is empty (default false: skipped as "empty mask")
An image file that is another image's mask (`images: "*.tif"` also matching "1_1_mask.tif") is not an image.
"""

from pathlib import Path

import numpy as np
from PIL import Image

from ..tables import read_table
from .base import Frame, RawItem, SkipItem, as_list, fill_template, glob_relative, matches_any, path_fields
from .image_io import fill_holes, labels_to_layers, read_grey_mask, read_image, read_label_image

OPTIONS = frozenset(
    {"images", "mask", "id_regex", "image_id", "key", "threshold", "background", "colour_tolerance", "fill_holes"}
    | {"resize_mask", "category_from"}
)


def list_items(root: Path, spec: dict, categories: dict) -> list:
    if not spec.get("images") or not spec.get("mask"):
        raise ValueError("image_mask_pairs spec needs 'images' and 'mask'")
    items = []
    for image_path in glob_relative(root, spec["images"]):
        try:
            fields = path_fields(image_path, spec.get("id_regex"))
        except SkipItem as error:
            items.append(RawItem(image_path, image_path, [image_path], skip_reason=str(error)))
            continue
        item_id = fill_template(spec.get("image_id", "{stem}"), fields)
        key = fill_template(spec.get("key", "{stem}"), fields)
        if matches_any(image_path, spec.get("exclude")):
            items.append(RawItem(item_id, key, [image_path], skip_reason="excluded by the card's spec"))
            continue
        if isinstance(spec["mask"], dict):  # one binary mask per category
            masks = {str(k): glob_relative(root, fill_template(t, fields)) for k, t in spec["mask"].items()}
            masks = {k: paths for k, paths in masks.items() if paths}
            found = [path for paths in masks.values() for path in paths]
        else:
            found = [
                path
                for template in as_list(spec["mask"])
                for path in glob_relative(root, fill_template(template, fields))
            ]
            masks = found
        reason = None if found else f"missing mask: no file matches {spec['mask']} for {image_path}"
        items.append(RawItem(item_id, key, [image_path, *found], {"image": image_path, "masks": masks}, reason))
    mask_files = {path for item in items for path in item.files[1:]}
    items = [item for item in items if item.files[0] not in mask_files]
    if spec.get("category_from"):
        add_table_categories(root, items, spec["category_from"])
    return items


def add_table_categories(root: Path, items: list, options: dict) -> None:
    table = read_table(root, options, "column")
    for item in items:
        if item.key in table:
            item.payload["category"] = table[item.key]
        elif not item.skip_reason:
            item.skip_reason = f"not in release table: {options['file']} has no category for {item.key!r}"


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    image, image_bytes, spacing = read_image(Path(root) / item.payload["image"])
    if isinstance(item.payload["masks"], dict):
        yield per_category_frame(root, item, spec, categories, image, image_bytes, spacing)
        return
    colour_coded = any("," in key for key in categories)
    by_table = "category" in item.payload  # only foreground matters: any mask mode, colour masks included
    labels = None
    for mask_path in item.payload["masks"]:
        path = Path(root) / mask_path
        mask = read_grey_mask(path) if by_table else read_label_image(path, colour_coded)
        mask = resize_to(mask, image.shape[:2], spec, mask_path)
        if labels is None:
            labels = mask
        else:  # several mask files per image (one per lesion): a pixel takes the larger label value
            labels = np.maximum(labels, mask)
    if by_table:
        layers, unmapped = table_category_layers(labels, item.payload["category"], categories, spec)
    else:
        layers, unmapped = labels_to_layers(labels, categories, spec)
    yield Frame(layers=layers, image=image, image_bytes=image_bytes, pixel_spacing_mm=spacing, unmapped=unmapped)


def per_category_frame(root, item, spec, categories, image, image_bytes, spacing) -> Frame:
    layers, unmapped = {}, {}
    threshold = float(spec.get("threshold", 0))
    for key, paths in item.payload["masks"].items():
        if key not in categories:
            unmapped[key] = len(paths)
            continue
        for mask_path in paths:
            mask = resize_to(read_grey_mask(Path(root) / mask_path), image.shape[:2], spec, mask_path) > threshold
            layers[key] = layers[key] | mask if key in layers else mask
    if spec.get("fill_holes"):
        layers = {key: fill_holes(layer) for key, layer in layers.items()}
    layers = {key: layer for key, layer in layers.items() if layer.any()}
    return Frame(layers=layers, image=image, image_bytes=image_bytes, pixel_spacing_mm=spacing, unmapped=unmapped)


def table_category_layers(labels: np.ndarray, key: str, categories: dict, spec: dict) -> tuple:
    foreground = labels > float(spec.get("threshold", 0))
    if spec.get("fill_holes"):
        foreground = fill_holes(foreground)
    if not foreground.any():
        return {}, {}
    if key not in categories:
        return {}, {key: int(foreground.sum())}
    return {key: foreground}, {}


def resize_to(mask: np.ndarray, shape: tuple, spec: dict, mask_path: str) -> np.ndarray:
    if mask.shape[:2] == tuple(shape):
        return mask
    if spec.get("resize_mask") == "rotate90" and mask.shape[:2] == tuple(shape)[::-1]:
        return np.ascontiguousarray(np.rot90(mask, k=-1))  # clockwise, as mmcv.imrotate(mask, 90, auto_bound=True)
    if spec.get("resize_mask") != "nearest":
        raise SkipItem(
            f"mask size mismatch: {mask_path} is {mask.shape[1]}x{mask.shape[0]}, image {shape[1]}x{shape[0]}"
        )
    mode = "RGB" if mask.ndim == 3 else "I"
    resized = Image.fromarray(mask.astype(np.uint8 if mask.ndim == 3 else np.int32), mode=mode)
    return np.asarray(resized.resize((shape[1], shape[0]), Image.NEAREST)).astype(mask.dtype)
