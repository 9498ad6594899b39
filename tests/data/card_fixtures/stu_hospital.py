"""STU-Hospital: Hospital/Test_Image_N.png (grey, 128x128 in the release) and Hospital/mask_N.png (grey with soft
edges, mostly larger than the image: resized to it, then thresholded)."""

import numpy as np
from scipy import ndimage

from .tiny_files import save, speckle


def soft_disc(size: int) -> np.ndarray:
    """A blurred disc: grey levels ramp from 0 to 255 over a few pixels, as the release's masks."""
    yy, xx = np.mgrid[:size, :size]
    disc = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2).astype(np.float32) * 255
    return ndimage.gaussian_filter(disc, size / 40).clip(0, 255).astype(np.uint8)


def make_release(root):
    for number, mask_size in [(1, 128), (2, 32), (10, 96)]:  # larger than, equal to, larger than the 32 px image
        save(root / "Hospital" / f"Test_Image_{number}.png", speckle(32, 32, number))
        save(root / "Hospital" / f"mask_{number}.png", soft_disc(mask_size))
    return {"converted": 3, "skipped": 0, "classes": {"tumour": 3}}
