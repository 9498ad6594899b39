"""mu-RegPro: {train,val}/us_images/<case>.nii.gz with us_labels/<case>.nii.gz (4-D: 6 binary channels),
plus mr_images/ and mr_labels/."""

import numpy as np

from . import formats as f


def make_release(root):
    volume = np.stack([f.speckle(height=32, width=24, seed=seed) for seed in range(20)])  # [z=20, y=32, x=24]
    channels = np.zeros((6,) + volume.shape, dtype=np.uint8)
    channels[0, 2:16, 4:20, 10] = 1  # gland on sagittal slice x=10
    channels[3, 8:12, 8:12, 10] = 1  # a landmark inside it (channels overlap)
    for part in ("train", "val"):
        f.volume(root / part / "us_images" / "case000001.nii.gz", volume)
        f.volume(root / part / "us_labels" / "case000001.nii.gz", channels)
        f.volume(root / part / "mr_images" / "case000001.nii.gz", volume)  # excluded
        f.volume(root / part / "mr_labels" / "case000001.nii.gz", channels)  # excluded
    return {"converted": 2, "skipped": 4, "classes": {"prostate gland": 2, "landmark 3": 2}}
