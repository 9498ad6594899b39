"""EchoCP (Kaggle): EchoCP_dataset/<patient>_<r|v>_image.nii.gz with <patient>_<r|v>_label.nii.gz."""

import numpy as np

from . import formats as f


def make_release(root):
    base = root / "EchoCP_dataset"
    frames = np.stack([f.speckle(seed=seed) for seed in range(3)])
    labels = np.zeros(frames.shape, dtype=np.uint8)
    labels[0] = f.box(value=1)
    labels[2] = f.box(top=16, left=20, value=3)  # any non-zero value is the chamber
    for case in ("1_r", "1_v"):
        f.volume(base / f"{case}_image.nii.gz", frames)
        f.volume(base / f"{case}_label.nii.gz", labels)
    f.volume(base / "2_r_image.nii.gz", frames)  # no label
    return {"converted": 2, "skipped": 1, "classes": {"chamber": 4}}
