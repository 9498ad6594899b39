"""SegThy (TUM CAMP): US_volunteer_dataset/ground_truth_data/US/<id>_US.nii with US_thyroid_label/<id>.nii."""

import numpy as np

from . import formats as f


def make_release(root):
    base = root / "US_volunteer_dataset" / "ground_truth_data"
    volume = np.stack([f.speckle(seed=seed) for seed in range(3)])
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[0] = f.box(value=1) + f.box(top=20, left=26, size=6, value=2)
    labels[2] = f.box(top=6, left=20, size=8, value=3)
    f.volume(base / "US" / "1_US.nii", volume, spacing=(0.1, 0.1, 0.5))
    f.volume(base / "US_thyroid_label" / "1.nii", labels)
    f.volume(base / "US" / "2_US.nii", volume[::-1].copy())  # no label volume
    return {"converted": 1, "skipped": 1, "classes": {"thyroid": 1, "carotid": 1, "jugular": 1}}
