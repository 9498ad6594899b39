"""MicroSeg (Zenodo 10475293): {train,test}/micro_ultrasound_scans/microUS_<part>_<n>.nii.gz with
expert_annotations/expert_annotation_<part>_<n>.nii.gz (and non_expert_annotations/)."""

import numpy as np

from . import formats as f


def write_record(root):
    base = root / "Micro_Ultrasound_Prostate_Segmentation_Dataset"
    volume = np.stack([f.speckle(seed=seed) for seed in range(3)])
    labels = np.zeros(volume.shape, dtype=np.uint8)
    labels[1] = f.box(value=1)
    for part in ("train", "test"):
        f.volume(base / part / "micro_ultrasound_scans" / f"microUS_{part}_01.nii.gz", volume)
        f.volume(base / part / "expert_annotations" / f"expert_annotation_{part}_01.nii.gz", labels)
    f.volume(base / "train" / "non_expert_annotations" / "nonexpert_annotation_train_01.nii.gz", labels)  # excluded
    f.volume(base / "train" / "micro_ultrasound_scans" / "microUS_train_02.nii.gz", volume)  # no annotation


def make_release(root):
    write_record(root)
    return {"converted": 2, "skipped": 2, "classes": {"prostate": 2}}
