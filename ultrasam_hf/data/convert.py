"""One raw item -> rows of FEATURES (runs in the worker processes of the builder)."""

import hashlib
from pathlib import Path

import cv2
import numpy as np

from .dedupe import phash, pixel_sha256
from .instances import layers_to_instances
from .readers import READERS, SkipItem


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_png(image: np.ndarray) -> bytes:
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buffer = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise SkipItem("PNG encoding failed")
    return buffer.tobytes()


def convert_item(spec, raw_dir: Path, item, split: str, group: str, class_label, spacing=None, shared_files=frozenset()) -> dict:
    """Never raises for bad input: a `SkipItem` becomes {"status": "skipped", "reason": ...}."""
    result = {
        "item_id": item.item_id,
        "status": "converted",
        "reason": None,
        "files": {path: file_sha256(Path(raw_dir) / path) for path in item.files if path not in shared_files and (Path(raw_dir) / path).is_file()},
        "rows": [],
        "empty_frames": 0,
        "dropped_components": [],
        "unmapped": {},
    }
    keep_empty = bool(spec.spec.get("keep_empty", False))
    try:
        for frame in READERS[spec.reader].load_frames(Path(raw_dir), item, spec.spec, spec.categories):
            instances = layers_to_instances(frame.layers, spec.categories, spec.anatomy, spec.min_area, class_label)
            image_id = frame.image_id or item.item_id
            for dropped in instances.dropped:
                result["dropped_components"].append({"image_id": image_id, **dropped})
            for key, count in frame.unmapped.items():
                result["unmapped"][key] = result["unmapped"].get(key, 0) + count
            if not instances.objects and not keep_empty:
                result["empty_frames"] += 1
                continue
            image = frame.image
            result["rows"].append(
                {
                    "image": {"bytes": frame.image_bytes or encode_png(image), "path": None},
                    "dataset": spec.slug,
                    "image_id": image_id,
                    "group_id": group,
                    "frame_index": frame.frame_index,
                    "split": split,
                    "height": int(image.shape[0]),
                    "width": int(image.shape[1]),
                    "pixel_spacing_mm": frame.pixel_spacing_mm or spacing,
                    "license": spec.license,
                    "source_files": list(item.files),
                    "objects": instances.objects,
                    "_sha256": pixel_sha256(image),
                    "_phash": phash(image),
                }
            )
    except SkipItem as error:
        result.update(status="skipped", reason=str(error), rows=[])
        return result
    if not result["rows"]:
        reason = "empty mask" if result["empty_frames"] <= 1 else f"empty mask: none of {result['empty_frames']} frames annotated"
        if result["dropped_components"]:
            reason += f" (only components under min_area {spec.min_area})"
        result.update(status="skipped", reason=reason)
    return result
