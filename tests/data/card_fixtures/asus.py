"""ASUS (DataArrays.zip): <case>_ultrasound.npy float [N, H, W, 1] and <case>_segmentation.npy 0/1."""

import numpy as np

from . import formats as f


def make_release(root):
    images = np.stack([f.speckle(seed=seed) for seed in range(3)])[..., None].astype(np.float16) / 255
    masks = np.zeros(images.shape, dtype=np.uint8)
    masks[1, 4:14, 4:14, 0] = 1
    f.array(root / "DataArrays" / "q000_ultrasound.npy", images)
    f.array(root / "DataArrays" / "q000_segmentation.npy", masks)
    f.array(root / "DataArrays" / "q001_ultrasound.npy", images[::-1].copy())  # no segmentation: skipped
    return {"converted": 1, "skipped": 1, "classes": {"spine": 1}}
