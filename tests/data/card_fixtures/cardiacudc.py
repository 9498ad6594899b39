"""CardiacUDC (Kaggle): cardiacUDC_dataset/Site_<X>/<patient>_image.nii.gz with <patient>_label.nii.gz."""

import numpy as np

from . import formats as f


def make_release(root):
    base = root / "cardiacUDC_dataset"
    frames = np.stack([f.speckle(seed=seed) for seed in range(3)])
    labels = np.zeros(frames.shape, dtype=np.uint8)
    labels[0, 4:16, 4:16] = 1
    labels[0, 6:14, 6:14] = 0  # contour only: filled
    labels[1, 2:6, 2:6] = 4  # 16 px = 1.25 % of the frame: under 2.5 %, an empty frame
    f.volume(base / "Site_G" / "patient1_image.nii.gz", frames)
    f.volume(base / "Site_G" / "patient1_label.nii.gz", labels)
    f.volume(base / "Site_R" / "patient1_image.nii.gz", frames[::-1].copy())  # same patient name, other site
    f.volume(base / "Site_R" / "patient1_label.nii.gz", np.stack([f.box(value=5)] * 3))
    f.volume(base / "Site_R" / "patient73_image.nii.gz", frames)  # no label volume
    return {"converted": 2, "skipped": 1, "classes": {"left ventricle": 1, "epicardium": 3}}
