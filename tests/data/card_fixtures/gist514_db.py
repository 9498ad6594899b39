"""GIST514-DB (howardchina/query2): usd514_jpeg_roi/images/<id>.jpg and
usd514_jpeg_roi/annotations/{train,val}_anno_crop_split_<k>.json (COCO polygons, category ids 1 lmym, 2 gist)."""

from . import formats as f


def coco(entries):
    images, annotations = [], []
    for index, (name, category) in enumerate(entries, start=1):
        images.append({"id": index, "file_name": name, "height": 32, "width": 40})
        annotations.append(
            {"id": index, "image_id": index, "category_id": category, "segmentation": [[4, 4, 18, 4, 18, 18, 4, 18]]}
        )
    return {
        "images": images,
        "annotations": annotations,
        "categories": [{"id": 1, "name": "lmym"}, {"id": 2, "name": "gist"}],
    }


def make_release(root):
    base = root / "usd514_jpeg_roi"
    for number in (1, 2, 3):
        f.image(base / "images" / f"{number:03d}.jpg", f.speckle(seed=number))
    f.json_file(base / "annotations" / "train_anno_crop_split_0.json", coco([("001.jpg", 1), ("002.jpg", 2)]))
    f.json_file(
        base / "annotations" / "val_anno_crop_split_0.json", coco([("003.jpg", 2), ("004.jpg", 1)])
    )  # 004 missing
    f.json_file(base / "annotations" / "train_anno_crop_split_1.json", coco([("001.jpg", 1)]))  # other fold: excluded
    return {"converted": 3, "skipped": 2, "classes": {"leiomyoma": 1, "GIST": 2}}
