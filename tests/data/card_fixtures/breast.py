"""BrEaST-Lesions-USG (TCIA): <case>.png with one mask per finding <case>_tumor.png / <case>_other<k>.png."""

from . import formats as f


def make_release(root):
    folder = root / "BrEaST-Lesions_USG-images_and_masks"
    f.image(folder / "case001.png", f.speckle(seed=1))
    f.image(folder / "case001_tumor.png", f.box())
    f.image(folder / "case001_other1.png", f.box(top=18, left=24, size=8))
    f.image(folder / "case002.png", f.colour(seed=2))
    f.image(folder / "case002_tumor.png", f.box(left=20))
    f.image(folder / "case003.png", f.speckle(seed=3))  # no mask (normal): missing mask
    f.text(root / "BrEaST-Lesions-USG-clinical-data-Dec-15-2023.xlsx", "spreadsheet")  # excluded
    return {"converted": 2, "skipped": 2, "classes": {"nodule": 2, "cyst": 1}}
