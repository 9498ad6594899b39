"""MMOTU OTU_3d: images/<n>.JPG with colour masks annotations/<n>.PNG."""

import numpy as np

from . import formats as f


def make_release(root):
    base = root / "OTU_3d"
    mask = np.zeros((32, 40, 3), dtype=np.uint8)
    mask[8:20, 10:24] = (128, 0, 0)
    f.image(base / "images" / "1.JPG", f.colour(seed=1))
    f.image(base / "annotations" / "1.PNG", mask)
    f.image(base / "annotations" / "1_binary.PNG", f.box())  # excluded copy
    f.image(base / "images" / "2.JPG", f.colour(seed=2))  # no mask
    return {"converted": 1, "skipped": 2, "classes": {"lesion": 1}}
