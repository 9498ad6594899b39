"""Writers of tiny files in each raw format the releases use (images, masks, volumes, arrays, videos, tables)."""

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image


def speckle(height=32, width=40, seed=0) -> np.ndarray:
    """Grey ultrasound-like pixels, distinct per seed (so no two fixture images are duplicates)."""
    rng = np.random.default_rng(seed)
    return (rng.gamma(2.0, 40.0, size=(height, width)).clip(1, 255)).astype(np.uint8)


def colour(height=32, width=40, seed=0) -> np.ndarray:
    return np.stack([speckle(height, width, seed + offset) for offset in (0, 100, 200)], axis=-1)


def box(height=32, width=40, top=4, left=4, size=10, value=255, dtype=np.uint8) -> np.ndarray:
    """A label map with one square of `value` (size*size >= the cards' min_area of 16 pixels)."""
    labels = np.zeros((height, width), dtype=dtype)
    labels[top : top + size, left : left + size] = value
    return labels


def parent(path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def image(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    """Saved in the format its suffix names (PNG, JPG, BMP, TIF, GIF); `mode` converts first ("1", "P", "RGB")."""
    picture = Image.fromarray(array)
    if mode:
        picture = picture.convert(mode)
    options = {"quality": 95} if Path(path).suffix.lower() in (".jpg", ".jpeg") else {}
    picture.save(parent(path), **options)
    return path


def volume(path: Path, array: np.ndarray, spacing=None, vector: bool = False) -> Path:
    """NIfTI / MHA via SimpleITK; `array` is [z, y, x] (or [z, y, x, c] with vector=True)."""
    import SimpleITK as sitk

    written = sitk.GetImageFromArray(array, isVector=vector)
    if spacing:
        written.SetSpacing(spacing)
    sitk.WriteImage(written, str(parent(path)))
    return path


def video(path: Path, frames: list, fps: int = 10) -> Path:
    """MP4 (mp4v) or AVI (MJPG) of grey frames with OpenCV."""
    import cv2

    height, width = frames[0].shape[:2]
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if Path(path).suffix.lower() == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(parent(path)), fourcc, fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame)
    writer.release()
    return path


def array(path: Path, value) -> Path:
    np.save(parent(path), value, allow_pickle=isinstance(value, dict))
    return path


def text(path: Path, content: str = "") -> Path:
    parent(path).write_text(content, encoding="utf-8")
    return path


def json_file(path: Path, document) -> Path:
    return text(path, json.dumps(document))


def table(path: Path, rows: list, header: list | None = None, delimiter: str = ",") -> Path:
    with open(parent(path), "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path
