"""AbdomenUS (Kaggle ussimandsegm): abdominal_US/abdominal_US/{AUS,RUS}/{images,annotations}/{train,test}/."""

import numpy as np

from . import formats as f


def make_release(root):
    base = root / "abdominal_US" / "abdominal_US"
    f.image(base / "RUS" / "images" / "train" / "r01.jpg", f.speckle(seed=1))
    mask = np.zeros((32, 40, 3), dtype=np.uint8)
    mask[2:12, 2:12] = (100, 0, 100)  # liver
    mask[16:26, 20:30] = (255, 255, 0)  # kidney
    mask[28:32, 0:40] = (10, 10, 10)  # background grey of the release
    f.image(base / "RUS" / "annotations" / "train" / "r01.png", mask)
    f.image(base / "RUS" / "images" / "test" / "r02.jpg", f.speckle(seed=2))  # not annotated: missing mask
    f.image(base / "AUS" / "images" / "train" / "a01.png", f.speckle(seed=3))  # simulated: excluded
    f.image(base / "AUS" / "annotations" / "train" / "a01.png", mask)  # excluded
    return {"converted": 1, "skipped": 3, "classes": {"liver": 1, "kidney": 1}}
