"""Kaggle Ultrasound Nerve Segmentation: train/<subject>_<image>.tif + _mask.tif, test/*.tif, train_masks.csv,
sample_submission.csv."""

from . import formats as f


def make_release(root):
    for subject, image in ((1, 1), (1, 2), (2, 1)):
        f.image(root / "train" / f"{subject}_{image}.tif", f.speckle(seed=subject * 10 + image))
    f.image(root / "train" / "1_1_mask.tif", f.box())
    f.image(root / "train" / "1_2_mask.tif", f.box(value=0))  # empty: skipped
    f.image(root / "train" / "2_1_mask.tif", f.box(left=20))
    f.image(root / "test" / "1.tif", f.speckle(seed=99))  # no mask: excluded
    f.table(root / "train_masks.csv", [[1, 1, "85 10"]], ["subject", "img", "pixels"])
    f.table(root / "sample_submission.csv", [[1, ""]], ["img", "pixels"])
    return {"converted": 2, "skipped": 2, "classes": {"brachial plexus": 2}}
