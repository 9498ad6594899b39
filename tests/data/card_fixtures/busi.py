"""BUSI: Dataset_BUSI_with_GT/{benign,malignant,normal}/<class> (N).png with <class> (N)_mask[_k].png."""

import numpy as np

from . import formats as f


def make_release(root):
    base = root / "Dataset_BUSI_with_GT"
    f.image(base / "benign" / "benign (1).png", f.colour(seed=1))
    f.image(base / "benign" / "benign (1)_mask.png", f.box())
    f.image(base / "benign" / "benign (1)_mask_1.png", f.box(top=18, left=26, size=8))  # second lesion
    f.image(base / "benign" / "benign (10).png", f.colour(seed=10))
    f.image(base / "benign" / "benign (10)_mask.png", f.box(left=20))
    f.image(base / "malignant" / "malignant (1).png", f.colour(seed=2))
    f.image(base / "malignant" / "malignant (1)_mask.png", np.where(f.box() > 0, 255, 0).astype(np.uint8), mode="1")
    f.image(base / "normal" / "normal (1).png", f.colour(seed=3))  # excluded with its empty mask
    f.image(base / "normal" / "normal (1)_mask.png", f.box(value=0))
    return {"converted": 3, "skipped": 2, "classes": {"nodule": 4}, "class_labels": {"benign": 3, "malignant": 1}}
