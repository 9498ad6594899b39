"""The one row format every US-43d dataset is converted to.

One row = one 2-D ultrasound image (a still, a volume slice or a video frame) with all its annotated instances:

- `image`: `datasets.Image`, pixels only (grey `L` or `RGB`): the source's PNG/JPEG pixel data with every metadata
  chunk / segment removed, or a lossless PNG of the decoded pixels (see `pixels_only.py`).
- `dataset` (card slug, e.g. `"bus-bra"`), `image_id` (unique within the dataset, e.g. `"bus_0001-l"`,
  `"case01#slice012"`), `group_id` (the patient or scan id that splits are made on; the image id itself when the
  release has none), `frame_index` (slice / frame number in its volume or video, `None` for stills).
- `split`: `"train"`, `"validation"` or `"test"`.
- `height`, `width`: image size in pixels.
- `pixel_spacing_mm`: `[row, column]` spacing in millimetres (always two values), `None` when the release does not
  give it. Stored as a variable-length list: a nullable fixed-size list written by pyarrow >= 26 cannot be read by
  the older pyarrow that `datasets` admits ("Expected all lists to be of size=2").
- `license`: Hugging Face licence id of the source dataset (its card's `license`); `licence_mix(build_dir)` sums a
  build by licence.
- `source_files`: raw files (relative to the raw folder) the row was made from.
- `objects`: one entry per instance, an instance being a connected component of one label value (UltraSam):
    - `mask`: COCO RLE `{"counts": str, "size": [height, width]}` (`pycocotools.mask.encode`, Fortran order);
      decode with `ultrasam_hf.data.decode_instance_mask(obj)` -> `bool[height, width]`.
    - `bbox`: `[x_min, y_min, x_max, y_max]` in pixels, inclusive-exclusive (XYXY, like SAM box prompts).
    - `area`: number of mask pixels.
    - `category`: the dataset's own category name (e.g. `"nerve"`).
    - `anatomy`: shared US-43d anatomy term (58-term vocabulary of the `us-43d` card, e.g. `"breast lesion"`).
    - `class_label`: optional downstream label of the image or instance (e.g. `"malignant"`), else `None`.
"""

from datasets import Features, Image, List, Value

SPLITS = ("train", "validation", "test")

OBJECT_FEATURES = {
    "mask": {"counts": Value("string"), "size": List(Value("int32"), length=2)},
    "bbox": List(Value("float32"), length=4),
    "area": Value("int64"),
    "category": Value("string"),
    "anatomy": Value("string"),
    "class_label": Value("string"),
}

FEATURES = Features(
    {
        "image": Image(),
        "dataset": Value("string"),
        "image_id": Value("string"),
        "group_id": Value("string"),
        "frame_index": Value("int32"),
        "split": Value("string"),
        "height": Value("int32"),
        "width": Value("int32"),
        "pixel_spacing_mm": List(Value("float32")),
        "license": Value("string"),
        "source_files": List(Value("string")),
        "objects": List(OBJECT_FEATURES),
    }
)
