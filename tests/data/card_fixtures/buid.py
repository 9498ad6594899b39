"""BUID (qamebi.com): Benign/ and Malignant/ with <name>Image.bmp images and <name>Mask.tif masks (threshold 150)."""

import numpy as np

from . import formats as f


def make_release(root):
    for folder, number in (("Benign", 1), ("Malignant", 1), ("Malignant", 2)):
        f.image(root / folder / f"{number} {folder} Image.bmp", f.colour(seed=number + len(folder)))
    noisy = np.where(f.box() > 0, 200, 40).astype(np.uint8)  # grey background below 150: not foreground
    f.image(root / "Benign" / "1 Benign Mask.tif", noisy)
    f.image(root / "Malignant" / "1 Malignant Mask.tif", f.box(left=20))
    # "2 Malignant Image.bmp" has no mask: missing mask
    return {"converted": 2, "skipped": 1, "classes": {"nodule": 2}, "class_labels": {"Benign": 1, "Malignant": 1}}
