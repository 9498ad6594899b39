"""One raw item -> rows of FEATURES (runs in the worker processes of the builder)."""

import hashlib
import logging
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from .dedupe import phash, pixel_sha256
from .instances import encode_instance_map, layers_to_instances
from .pixels_only import pixels_only
from .readers import READERS, SkipItem
from .schema import FEATURES

# Their DEBUG records quote file metadata (TIFF ImageDescription / Artist, DICOM elements): never let them through.
DECODER_LOGGERS = ("PIL", "pydicom")


@contextmanager
def decoder_debug_logs_off():
    raised = {}  # logger -> its own level; setLevel clears every logger's cache, so only when needed
    for name in DECODER_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            raised[logger] = logger.level
            logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in raised.items():
            logger.setLevel(level)


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


def stored_image_bytes(frame) -> bytes:
    """Pixels only (see pixels_only.py): the source's PNG/JPEG data without its metadata, else a lossless PNG."""
    kept = pixels_only(frame.image_bytes, frame.image) if frame.image_bytes else None
    return kept or encode_png(frame.image)


def checked_spacing(spacing, where: str):
    """[row, column] spacing in mm as two positive floats, or None; anything else is bad input."""
    if spacing is None:
        return None
    values = [float(value) for value in spacing]
    if len(values) != 2 or not all(np.isfinite(value) and value > 0 for value in values):
        raise SkipItem(f"bad pixel spacing: {where} gives {list(spacing)} (expected two positive numbers in mm)")
    return values


def failure_reason(error: Exception) -> str:
    """A SkipItem's own reason; any other exception (decoder bug, decompression bomb, codec missing) by type."""
    if isinstance(error, SkipItem):
        return str(error)
    message = " ".join(str(error).split()) or "no message"
    return f"conversion error: {type(error).__name__}: {message[:500]}"


def convert_item(
    spec, raw_dir: Path, item, split: str, group: str, class_label, spacing=None, shared_files=frozenset()
) -> dict:
    """Never raises for bad input: any exception of the item becomes {"status": "skipped", "reason": ...}."""
    result = {
        "item_id": item.item_id,
        "status": "converted",
        "reason": None,
        "files": {},
        "rows": [],
        "empty_frames": 0,
        "dropped_components": [],
        "unmapped": {},
    }
    with decoder_debug_logs_off():
        return convert_frames(spec, raw_dir, item, split, group, class_label, spacing, shared_files, result)


def convert_frames(spec, raw_dir: Path, item, split, group, class_label, spacing, shared_files, result: dict) -> dict:
    keep_empty = bool(spec.spec.get("keep_empty", False))
    try:
        for path in item.files:
            if path not in shared_files and (Path(raw_dir) / path).is_file():
                result["files"][path] = file_sha256(Path(raw_dir) / path)
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
            ids = instances.ids if instances.ids is not None else np.zeros(image.shape[:2], dtype=np.int32)
            row = FEATURES.encode_example(  # here, in the worker: the writer process only assembles the table
                {
                    "image": {"bytes": stored_image_bytes(frame), "path": None},
                    "dataset": spec.slug,
                    "image_id": image_id,
                    "group_id": group,
                    "frame_index": frame.frame_index,
                    "split": split,
                    "height": int(image.shape[0]),
                    "width": int(image.shape[1]),
                    "pixel_spacing_mm": checked_spacing(frame.pixel_spacing_mm or spacing, image_id),
                    "license": spec.license,
                    "source_files": list(item.files),
                    "objects": instances.objects,
                    "instance_map": {"bytes": encode_instance_map(ids), "path": None},
                }
            )
            result["rows"].append({**row, "_sha256": pixel_sha256(image), "_phash": phash(image)})
    except Exception as error:  # noqa: BLE001 - one bad raw file must never abort a build
        result.update(status="skipped", reason=failure_reason(error), rows=[])
        return result
    if not result["rows"]:
        reason = (
            "empty mask"
            if result["empty_frames"] <= 1
            else f"empty mask: none of {result['empty_frames']} frames annotated"
        )
        if result["dropped_components"]:
            reason += f" (only components under min_area {spec.min_area})"
        result.update(status="skipped", reason=reason)
    return result
