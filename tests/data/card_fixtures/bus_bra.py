"""BUS-BRA: Images/bus_CCCC-{l,r,s}.png (grey), Masks/mask_CCCC-*.png (1-bit), bus_data.csv, patient-level folds."""

from .tiny_files import box, save, speckle, write_text

# (ID, case, pathology, 5-fold kFold): fold 1 is the card's test split
IMAGES = [
    ("bus_0001-l", 1, "malignant", 1),
    ("bus_0001-r", 1, "malignant", 1),
    ("bus_0002-s", 2, "benign", 2),
    ("bus_0003-l", 3, "benign", 3),
]


def make_release(root):
    data = ["ID,Case,Histology,Pathology,BIRADS,Device,Width,Height,Side,BBOX"]
    folds5 = ["ID,Pathology,kFold,valid_1,valid_2,valid_3,valid_4,valid_5"]
    folds10 = ["ID,Pathology,kFold,valid_1,valid_2,valid_3,valid_4,valid_5,valid_6,valid_7,valid_8,valid_9,valid_10"]
    for seed, (image_id, case, pathology, fold) in enumerate(IMAGES):
        save(root / "Images" / f"{image_id}.png", speckle(36, 44, seed))
        save(root / "Masks" / f"mask_{image_id[4:]}.png", box(36, 44, top=5 + seed, left=6), mode="1")
        data.append(f'{image_id},{case},fibroadenoma,{pathology},4,GE Logiq 7,44,36,left,"[6,5,10,10]"')
        folds5.append(f"{image_id},{pathology},{fold},1,1,NaN,1,1")
        folds10.append(f"{image_id},{pathology},{fold},1,0,1,1,1,1,1,1,NaN,1")
    write_text(root / "bus_data.csv", "\n".join(data) + "\n")
    write_text(root / "5-fold-cv.csv", "\n".join(folds5) + "\n")
    write_text(root / "10-fold-cv.csv", "\n".join(folds10) + "\n")
    write_text(root / "LICENSE.txt", "generated fixture licence text\n")
    return {"converted": 4, "skipped": 0, "classes": {"lesion": 4}, "class_labels": {"malignant": 2, "benign": 2}}
