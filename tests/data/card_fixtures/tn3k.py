"""TN3K (openmedlab): Thyroid Dataset/tn3k/{trainval,test}-{image,mask}/<nnnn>.jpg, fold JSONs and label CSVs."""

from . import formats as f


def make_release(root):
    base = root / "Thyroid Dataset" / "tn3k"
    for part, seed in (("trainval", 1), ("test", 2)):
        f.image(base / f"{part}-image" / "0000.jpg", f.speckle(seed=seed))
        f.image(base / f"{part}-mask" / "0000.jpg", f.box(left=seed * 8))
    f.image(base / "trainval-image" / "0001.jpg", f.speckle(seed=3))  # no mask
    f.json_file(base / "tn3k-trainval-fold0.json", {"train": [0], "val": []})  # excluded
    f.table(base / "label4trainval.csv", [["0000.jpg", 1]], ["name", "label"])  # excluded
    return {"converted": 2, "skipped": 3, "classes": {"nodule": 2}}
