"""Decoding chosen frames of a video file (AVI/MP4) with OpenCV (shared by the video readers)."""

from pathlib import Path

import numpy as np

from .base import SkipItem, lazy_module

cv2 = lazy_module("cv2")  # the data extra: imported on first use


def read_video_frames(path: Path, wanted) -> dict:
    """-> {frame index (0-based, decode order): uint8 [H, W] (grey video) or [H, W, 3] RGB} for `wanted` indices."""
    wanted = set(wanted)
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise SkipItem(f"unreadable video: {Path(path).name}")
    decoded, index = {}, 0
    try:
        while wanted and index <= max(wanted):
            ok, bgr = capture.read()
            if not ok:
                break
            if index in wanted:
                decoded[index] = to_grey_or_rgb(bgr)
            index += 1
    finally:
        capture.release()
    missing = sorted(wanted - set(decoded))
    if missing:
        shown = missing[:5] + (["..."] if len(missing) > 5 else [])
        raise SkipItem(f"truncated video: {Path(path).name} has no frame(s) {shown} (read {index})")
    return decoded


def to_grey_or_rgb(bgr: np.ndarray) -> np.ndarray:
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
        return rgb[..., 0].copy()
    return rgb
