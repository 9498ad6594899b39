"""Fast-U-Net: Dataset/{AC,HC}/<kind>_image<k>.rar and <kind>_mask.rar, extracted to folders of the same name;
AC masks share the image name, HC masks the first two `_` parts (000_HC.png -> 000_HC_Annotation.png)."""

from . import formats as f


def make_release(root):
    ac, hc = root / "Dataset" / "AC", root / "Dataset" / "HC"
    f.image(ac / "AC_image1" / "12.png", f.speckle(seed=1))
    f.image(ac / "AC_mask" / "12.png", f.box() + f.box(top=26, left=30, size=5))  # speck: largest component kept
    f.image(ac / "AC_image2" / "13.png", f.speckle(seed=2))  # no mask
    f.image(hc / "HC_image1" / "000_HC.png", f.speckle(seed=3))
    f.image(hc / "HC_mask" / "000_HC_Annotation.png", f.box(top=8, left=10, size=14))
    f.text(ac / "AC_image1.rar", "rar")  # archive left in place: excluded
    return {"converted": 2, "skipped": 2, "classes": {"abdomen": 1, "head": 1}}
