"""BUS-UC (Mendeley 3ksd7w7jkx): BUS_UC/{Benign,Malignant}/{images,masks}/<name>.png, plus an All/ copy."""

from . import formats as f


def make_release(root):
    base = root / "BUS_UC"
    f.image(base / "Benign" / "images" / "01.png", f.colour(seed=1))
    f.image(base / "Benign" / "masks" / "01.png", f.box(16, 20))  # half size: resized to the image (nearest)
    f.image(base / "Malignant" / "images" / "01.png", f.colour(seed=2))  # same name in the other class
    f.image(base / "Malignant" / "masks" / "01.png", f.box(left=20))
    f.image(base / "Malignant" / "images" / "02.png", f.colour(seed=3))  # no mask
    f.image(base / "All" / "images" / "01.png", f.colour(seed=1))  # excluded copy
    f.image(base / "All" / "masks" / "01.png", f.box())
    return {"converted": 2, "skipped": 3, "classes": {"lesion": 2}, "class_labels": {"Benign": 1, "Malignant": 1}}
