"""Overlay PNGs: the mask filled and outlined in colour over the image, with the prompt drawn on top."""

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

BAND_ROWS = 256


def draw_overlay(
    image: np.ndarray, mask: np.ndarray, box=None, points=None, labels=None, alpha: float = 0.35
) -> Image.Image:
    """`image` HxWx3 uint8, `mask` HxW bool; box XYXY and points (x, y) in the same pixel frame."""
    mask = np.asarray(mask, dtype=bool)
    if image.shape[:2] != mask.shape:
        raise ValueError(f"mask of shape {mask.shape} does not match the image of shape {image.shape[:2]}")
    canvas = np.array(image, dtype=np.uint8, copy=True)
    colour = np.array([0, 200, 255], dtype=np.float32)
    for start in range(0, canvas.shape[0], BAND_ROWS):  # in bands: the float copy stays small on large images
        band, band_mask = canvas[start : start + BAND_ROWS], mask[start : start + BAND_ROWS]
        band[band_mask] = ((1 - alpha) * band[band_mask].astype(np.float32) + alpha * colour).astype(np.uint8)
    outline = mask & ~ndimage.binary_erosion(mask, iterations=max(1, min(mask.shape) // 300))
    canvas[outline] = colour.astype(np.uint8)
    result = Image.fromarray(canvas)
    draw = ImageDraw.Draw(result)
    radius = max(3, min(mask.shape) // 100)
    if box is not None:
        draw.rectangle([float(v) for v in box], outline=(255, 220, 0), width=max(1, radius // 2))
    if points is not None:
        labels = np.ones(len(points)) if labels is None else labels
        for (x, y), label in zip(np.asarray(points).reshape(-1, 2), np.asarray(labels).reshape(-1)):
            fill = (0, 255, 0) if label == 1 else (255, 40, 40)
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=fill, outline=(0, 0, 0))
    return result
