"""CAMUS: database_nifti/patient<N>/patient<N>_{2CH,4CH}_half_sequence[_gt].nii.gz (+ ED/ES frames, Info cfg)."""

import numpy as np

from . import formats as f


def sequence(seed):
    frames = np.stack([f.speckle(seed=seed + index) for index in range(3)])
    frames[:, :, :4] = 0  # outside the sector
    labels = np.zeros(frames.shape, dtype=np.uint8)
    labels[0] = f.box(value=1) + f.box(top=18, left=20, size=6, value=3)
    labels[1, :, 0:6] = 2  # only outside the image (pixels 0..3) and 2 columns inside: kept, 20 px
    labels[1, 20:30, :4] = 0
    return frames, labels


def make_release(root):
    folder = root / "database_nifti" / "patient0001"
    for view, seed in (("2CH", 1), ("4CH", 10)):
        frames, labels = sequence(seed)
        f.volume(folder / f"patient0001_{view}_half_sequence.nii.gz", frames, spacing=(0.3, 0.3, 1.0))
        f.volume(folder / f"patient0001_{view}_half_sequence_gt.nii.gz", labels)
    f.volume(folder / "patient0001_2CH_ED.nii.gz", sequence(1)[0][:1])  # excluded
    f.volume(folder / "patient0001_2CH_ED_gt.nii.gz", sequence(1)[1][:1])  # excluded
    f.text(folder / "Info_2CH.cfg", "ED: 1\nES: 3\n")  # excluded
    f.volume(root / "database_nifti" / "patient0002" / "patient0002_2CH_half_sequence.nii.gz", sequence(20)[0])
    f.text(root / "database_split" / "subgroup_testing.txt", "patient0002\n")  # excluded
    return {"converted": 2, "skipped": 5, "classes": {"endocardium": 2, "atrium": 2, "epicardium": 2}}
