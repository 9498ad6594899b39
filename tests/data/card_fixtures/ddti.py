"""DDTI (DDTI.zip of the TN3K bundle): 2_preprocessed_data/stage1/p_image/<n>.PNG with p_mask/<n>.PNG."""

from . import formats as f


def make_release(root):
    stage = root / "DDTI" / "2_preprocessed_data" / "stage1"
    f.image(stage / "p_image" / "1.PNG", f.speckle(seed=1))
    f.image(stage / "p_mask" / "1.PNG", f.box())
    f.image(stage / "p_image" / "2.PNG", f.speckle(seed=2))
    f.image(stage / "p_mask" / "2.PNG", f.box(left=20, top=10))
    f.image(stage / "p_image" / "3.PNG", f.speckle(seed=3))  # no mask
    return {"converted": 2, "skipped": 1, "classes": {"nodule": 2}}
