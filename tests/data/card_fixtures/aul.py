"""AUL (Zenodo 7272660): <class>/image/<n>.jpg and <class>/segmentation/{liver,mass,outline}/<n>.json point lists."""

from . import formats as f


def outline(top, left, size):
    return [[left, top], [left + size, top], [left + size, top + size], [left, top + size]]


def make_release(root):
    f.image(root / "Benign" / "image" / "1.jpg", f.colour(seed=1))
    f.json_file(root / "Benign" / "segmentation" / "liver" / "1.json", outline(2, 2, 20))
    f.json_file(root / "Benign" / "segmentation" / "mass" / "1.json", outline(24, 26, 6))
    f.json_file(root / "Benign" / "segmentation" / "outline" / "1.json", outline(1, 1, 30))  # no category: unmapped
    f.image(root / "Malignant" / "image" / "1.jpg", f.colour(seed=2))  # same number, other class
    f.json_file(root / "Malignant" / "segmentation" / "liver" / "1.json", outline(4, 4, 16))
    f.image(root / "Normal" / "image" / "7.jpg", f.colour(seed=3))  # no annotation at all: missing mask
    return {"converted": 2, "skipped": 1, "classes": {"liver": 2, "mass": 1}}
