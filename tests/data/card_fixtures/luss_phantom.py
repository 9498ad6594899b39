"""LUSS phantom (Leeds 1263): data/{train,test}/{images,masks}/<id>.png, masks holding class ids 1-5."""

import numpy as np

from . import formats as f


def make_release(root):
    labels = np.zeros((32, 40), dtype=np.uint8)
    labels[2:6, 0:40] = 2  # pleural line
    labels[10:14, 2:12] = 1  # rib
    labels[20:30, 16:22] = 4  # B-line
    for part, seed in (("train", 1), ("test", 2)):
        f.image(root / "data" / part / "images" / "0001.png", f.speckle(seed=seed))
        f.image(root / "data" / part / "masks" / "0001.png", labels)
    f.image(root / "data" / "train" / "images" / "0002.png", f.speckle(seed=3))  # no mask
    return {"converted": 2, "skipped": 1, "classes": {"pleural line": 2, "rib": 2, "B-line": 2}}
