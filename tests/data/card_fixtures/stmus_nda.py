"""STMUS_NDA (Mendeley 3jykz7wz8d): Polito-Radboud-DeepLearningUS/{BB,GM,TA}/{Healthy,Pathological}/{Images,Masks}/."""

from . import formats as f


def make_release(root):
    base = root / "Polito-Radboud-DeepLearningUS"
    f.image(base / "BB" / "Healthy" / "Images" / "001.png", f.speckle(seed=1))
    f.image(base / "BB" / "Healthy" / "Masks" / "001.png", f.box(size=14, value=1))
    f.image(base / "TA" / "Pathological" / "Images" / "001.png", f.speckle(seed=2))  # same name elsewhere
    f.image(base / "TA" / "Pathological" / "Masks" / "001.png", f.box(left=20))
    f.image(base / "GM" / "Healthy" / "Images" / "007.png", f.speckle(seed=3))
    f.image(base / "GM" / "Healthy" / "Masks" / "007.png", f.box(value=0))  # empty
    return {"converted": 2, "skipped": 1, "classes": {"muscle": 2}}
