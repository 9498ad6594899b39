"""ACOUSLIC-AI training set: images/stacked_fetal_ultrasound/<uuid>.mha, masks/stacked_fetal_abdomen/<uuid>.mha."""

import numpy as np

from . import formats as f


def make_release(root):
    sweep = np.stack([f.speckle(seed=seed) for seed in range(4)])
    labels = np.zeros(sweep.shape, dtype=np.uint8)
    labels[1] = f.box(value=1)  # optimal plane
    labels[2] = f.box(top=14, left=20, value=2)  # sub-optimal plane
    f.volume(root / "images" / "stacked_fetal_ultrasound" / "0a1b2c3d.mha", sweep, spacing=(0.28, 0.28, 1.0))
    f.volume(root / "masks" / "stacked_fetal_abdomen" / "0a1b2c3d.mha", labels)
    f.volume(root / "images" / "stacked_fetal_ultrasound" / "9f8e7d6c.mha", sweep[::-1].copy())  # no mask: skipped
    f.table(
        root / "circumferences" / "fetal_abdominal_circumferences_per_sweep.csv",
        [["0a1b2c3d", "1", "301.5"]],
        ["uuid", "subject_id", "sweep_1_ac_mm"],
    )
    return {"converted": 1, "skipped": 1, "classes": {"fetal abdomen": 2}}
