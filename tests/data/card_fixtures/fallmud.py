"""FALLMUD: FALLMUD/{NeilCronin,RyanCunningham}/{images,aponeurosis_masks,fascicle_masks}/ (any extension)."""

import numpy as np

from . import formats as f


def make_release(root):
    neil = root / "NeilCronin"
    f.image(neil / "images" / "img_00004.tif", f.colour(seed=1))
    f.image(neil / "aponeurosis_masks" / "img_00004.jpg", f.box(top=2, size=6) + f.box(top=24, size=6))
    f.image(neil / "fascicle_masks" / "img_00004.tif", f.box(top=12, left=20, size=8))
    ryan = root / "RyanCunningham"
    f.image(ryan / "images" / "im_35_re.png", f.speckle(seed=2))
    rotated = np.rot90(f.box(top=2, left=8, size=10), k=1).copy()  # stored 90 degrees off: 40x32
    f.image(ryan / "aponeurosis_masks" / "im_35_re.png", rotated)
    f.image(ryan / "images" / "im_36_re.png", f.speckle(seed=3))  # no mask
    return {"converted": 2, "skipped": 1, "classes": {"aponeurosis": 3, "fascicle": 1}}
