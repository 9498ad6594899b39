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
    resize_mask: "nearest" to resize masks of another size to the image (else such pairs are skipped)
    keep_empty: keep images whose mask is empty (default false: skipped as "empty mask")
"""

from pathlib import Path

import numpy as np
from PIL import Image

from .base import Frame, RawItem, SkipItem, as_list, fill_template, glob_relative, matches_any, path_fields
from .image_io import fill_holes, labels_to_layers, read_image, read_label_image


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
            found = [path for template in as_list(spec["mask"]) for path in glob_relative(root, fill_template(template, fields))]
            masks = found
        reason = None if found else f"missing mask: no file matches {spec['mask']} for {image_path}"
        items.append(RawItem(item_id, key, [image_path, *found], {"image": image_path, "masks": masks}, reason))
    return items


def load_frames(root: Path, item: RawItem, spec: dict, categories: dict):
    image, image_bytes, spacing = read_image(Path(root) / item.payload["image"])
    if isinstance(item.payload["masks"], dict):
        yield per_category_frame(root, item, spec, categories, image, image_bytes, spacing)
        return
    colour_coded = any("," in key for key in categories)
    labels = None
    for mask_path in item.payload["masks"]:
        mask = resize_to(read_label_image(Path(root) / mask_path, colour_coded), image.shape[:2], spec, mask_path)
        if labels is None:
            labels = mask
        else:  # several mask files per image (one per lesion): a pixel takes the larger label value
            labels = np.maximum(labels, mask)
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
            mask = resize_to(read_label_image(Path(root) / mask_path, False), image.shape[:2], spec, mask_path) > threshold
            layers[key] = layers[key] | mask if key in layers else mask
    if spec.get("fill_holes"):
        layers = {key: fill_holes(layer) for key, layer in layers.items()}
    layers = {key: layer for key, layer in layers.items() if layer.any()}
    return Frame(layers=layers, image=image, image_bytes=image_bytes, pixel_spacing_mm=spacing, unmapped=unmapped)


def resize_to(mask: np.ndarray, shape: tuple, spec: dict, mask_path: str) -> np.ndarray:
    if mask.shape[:2] == tuple(shape):
        return mask
    if spec.get("resize_mask") != "nearest":
        raise SkipItem(f"mask size mismatch: {mask_path} is {mask.shape[1]}x{mask.shape[0]}, image {shape[1]}x{shape[0]}")
    mode = "RGB" if mask.ndim == 3 else "I"
    resized = Image.fromarray(mask.astype(np.uint8 if mask.ndim == 3 else np.int32), mode=mode)
    return np.asarray(resized.resize((shape[1], shape[0]), Image.NEAREST)).astype(mask.dtype)
