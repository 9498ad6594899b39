"""S1 (PMC8205136): Data/TrainingDataSet/{BreastTumourImages,Expanded-3-channel-Labels,General-1-channel-Labels}/
and Data/TestingDataSet/{Test-Expanded-BreastTumourImages,Test-Expanded-3-channel-Labels,Test-General-1-...}/."""

import numpy as np

from . import formats as f


def grey_rgb(labels):
    return np.repeat(labels[..., None], 3, axis=2)


def make_release(root):
    train, test = root / "Data" / "TrainingDataSet", root / "Data" / "TestingDataSet"
    f.image(train / "BreastTumourImages" / "0.jpg", f.colour(seed=1))
    f.image(train / "Expanded-3-channel-Labels" / "0.png", grey_rgb(f.box(value=127)))
    f.image(train / "General-1-channel-Labels" / "0.png", f.box(value=2))  # excluded
    f.image(train / "BreastTumourImages" / "1.jpg", f.colour(seed=2))
    f.image(train / "Expanded-3-channel-Labels" / "1.png", grey_rgb(f.box(left=20, value=255)))
    f.image(test / "Test-Expanded-BreastTumourImages" / "0.jpg", f.colour(seed=3))  # same name as a train image
    f.image(test / "Test-Expanded-3-channel-Labels" / "0.png", grey_rgb(f.box(top=14, value=255)))
    f.image(test / "Test-General-1-BreastTumourImages" / "0.jpg", f.colour(seed=3))  # excluded
    f.image(test / "Test-General-1-channel-Labels" / "0.png", f.box(top=14, value=1))  # excluded
    return {"converted": 3, "skipped": 3, "classes": {"benign tumour": 1, "malignant tumour": 2}}
