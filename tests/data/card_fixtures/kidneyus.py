"""kidneyUS: images from kidneyUS_images_14_june_2022.zip (extracted into the repository checkout) and masks
labels/reviewed_masks_<annotator>/{capsule,regions}/<image name>.png, plus reviewed_labels_<annotator>.csv."""

from . import formats as f


def make_release(root):
    images = root / "kidneyUS_images_14_june_2022" / "kidneyUS_images_14_june_2022"
    f.image(images / "3000-L-1.png", f.colour(seed=1))
    f.image(images / "3001-R-2.png", f.colour(seed=2))  # no capsule mask
    f.image(root / "labels" / "reviewed_masks_1" / "capsule" / "3000-L-1.png", f.box(size=16, value=1))
    f.image(root / "labels" / "reviewed_masks_1" / "regions" / "3000-L-1.png", f.box(size=8, value=3))  # excluded
    f.image(root / "labels" / "reviewed_masks_2" / "capsule" / "3000-L-1.png", f.box(size=16, value=1))  # excluded
    f.table(root / "labels" / "reviewed_labels_1.csv", [["3000-L-1.png", 100, "{}", 1, 0, "{}", "{}"]])  # excluded
    return {"converted": 1, "skipped": 4, "classes": {"capsule": 1}}
