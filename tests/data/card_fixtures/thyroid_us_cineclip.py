"""Stanford AIMI Thyroid Ultrasound Cine-clip: dataset.hdf5 (image, mask, annot_id, frame_num) and metadata.csv."""

import h5py
import numpy as np

from . import formats as f


def make_release(root):
    images = np.stack([f.speckle(seed=seed) for seed in range(5)])
    masks = np.zeros(images.shape, dtype=np.uint8)
    masks[0] = f.box(value=1)
    masks[1, 4:16, 4:16] = 1
    masks[1, 7:13, 7:13] = 0  # hole: filled
    masks[3] = f.box(left=20, value=1)
    with h5py.File(f.parent(root / "dataset.hdf5"), "w") as handle:
        handle["image"] = images
        handle["mask"] = masks
        handle["annot_id"] = np.array([b"1_", b"1_", b"1_", b"2_", b"3_"])
        handle["frame_num"] = np.array([0, 1, 2, 0, 0])
    f.table(root / "metadata.csv", [["1_", 50, "F"], ["2_", 61, "M"], ["3_", 44, "F"]], ["annot_id", "age", "sex"])
    # clip 3_ has no labelled frame: skipped as empty
    return {"converted": 2, "skipped": 1, "classes": {"thyroid": 3}}
