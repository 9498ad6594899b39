"""FASS (Mendeley 4gcpm9dsc3): PNG images and ARRAY_FORMAT/<patient>_<image>.npy pickled dicts
{"image": array, "structures": {"artery", "liver", "stomach", "vein": masks}}."""

import numpy as np

from . import formats as f


def make_release(root):
    base = root / "Fetal Abdominal Structures Segmentation Dataset Using Ultrasonic Images"
    image = f.colour(seed=1)
    structures = {
        "artery": f.box(size=6, value=1),
        "liver": f.box(top=12, left=4, size=14, value=1),
        "stomach": f.box(top=2, left=26, size=8, value=1),
        "vein": np.zeros((32, 40), np.uint8),
    }
    f.array(base / "ARRAY_FORMAT" / "P01_IMG1.npy", {"image": image, "structures": structures})
    f.image(base / "IMAGES" / "P01_IMG1.png", image)  # PNG copy: excluded
    f.array(base / "ARRAY_FORMAT" / "P01_IMG2.npy", np.zeros((32, 40), np.uint8))  # a plain array: unknown layout
    return {"converted": 1, "skipped": 2, "classes": {"artery": 1, "liver": 1, "stomach": 1}}
