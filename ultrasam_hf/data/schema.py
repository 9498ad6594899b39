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
    - `anatomy`: shared US-43d anatomy term, a `datasets.ClassLabel` over `ANATOMY_VOCABULARY` (the 58 terms of the
      `us-43d` card's `ultrasam.anatomy_vocabulary`, in the card's order): stored as the term's id, the same id in
      every dataset's shards. `ANATOMY.int2str(id)` -> `"breast lesion"`; `decode_row` / `decoded_rows` give the name.
      A card term outside the vocabulary stops that dataset's build with an error (never a silent drop). New terms
      are appended at the end of both lists, so existing ids keep their meaning.
    - `class_label`: optional downstream label of the image or instance (e.g. `"malignant"`), else `None`.
- `instance_map`: `datasets.Image`, the row's instances as one lossless palette (`P` mode) PNG for the Hub dataset
  viewer: pixel value k is `objects[k - 1]` (1 = the first object), 0 = background. Where objects overlap (rare:
  instances of different categories), the later object is on top (the pixel holds the highest index); the RLE masks
  stay the source of truth. The palette is fixed (`INSTANCE_PALETTE`: black background, then distinct bright colours
  by a golden-ratio hue walk), so instances show in colour while the pixel values stay the instance ids
  (`numpy.asarray(image)` gives them; `ultrasam_hf.data.instance_ids(row)`). A row with more than 255 objects gets a
  16-bit grey PNG instead (`I;16`, same values, not coloured). Null in shards built before schema version 3.

Shards built before schema version 3 (string `anatomy`, no `instance_map`) still load with `FEATURES`: the anatomy
strings are cast to their ids and `instance_map` reads as `None`; rebuild (`ultrasam data build`, which redoes every
shard of an older schema) to get the maps.
"""

import colorsys

from datasets import ClassLabel, Features, Image, List, Value

SPLITS = ("train", "validation", "test")

# The `us-43d` card's `ultrasam.anatomy_vocabulary`, in its order (tests/data/test_viewer_columns.py checks they
# agree). The position is the stored id: append new terms, never reorder or remove.
ANATOMY_VOCABULARY = (
    "breast lesion",
    "breast cyst",
    "thyroid nodule",
    "thyroid gland",
    "carotid artery",
    "jugular vein",
    "fetal head",
    "fetal abdomen",
    "pubic symphysis",
    "liver",
    "liver lesion",
    "kidney",
    "kidney cortex",
    "kidney medulla",
    "central echo complex",
    "pancreas",
    "adrenal gland",
    "gallbladder",
    "spleen",
    "stomach",
    "bone",
    "gastrointestinal stromal tumor",
    "leiomyoma",
    "left ventricle",
    "left atrium",
    "right ventricle",
    "right atrium",
    "myocardium",
    "epicardium",
    "heart chamber",
    "rib",
    "pleural line",
    "a-line",
    "b-line",
    "b-line confluence",
    "prostate",
    "prostate landmark",
    "ovarian tumor",
    "ovary",
    "chocolate cyst",
    "serous cystadenoma",
    "mucinous cystadenoma",
    "teratoma",
    "theca cell tumor",
    "simple cyst",
    "high grade serous cystadenocarcinoma",
    "muscle",
    "muscle fascicle",
    "aponeurosis",
    "fat",
    "spine",
    "nerve",
    "brachial plexus",
    "artery",
    "vein",
    "vessel",
    "needle",
    "tumor",
)
ANATOMY = ClassLabel(names=list(ANATOMY_VOCABULARY))


def anatomy_name(value):
    """A stored `anatomy` (ClassLabel id, or the term itself in a row read without `FEATURES`) -> the term, or None."""
    if value is None or isinstance(value, str):
        return value
    return ANATOMY.int2str(int(value))


def _palette() -> bytes:
    """256 RGB entries: 0 black, then bright colours whose hues step by the golden ratio (neighbours differ most)."""
    colours = [(0, 0, 0)]
    for index in range(1, 256):
        hue = (index * 0.6180339887498949) % 1.0
        value = 1.0 if index % 2 else 0.8
        colours.append(tuple(round(255 * channel) for channel in colorsys.hsv_to_rgb(hue, 0.75, value)))
    return bytes(channel for colour in colours for channel in colour)


INSTANCE_PALETTE = _palette()

OBJECT_FEATURES = {
    "mask": {"counts": Value("string"), "size": List(Value("int32"), length=2)},
    "bbox": List(Value("float32"), length=4),
    "area": Value("int64"),
    "category": Value("string"),
    "anatomy": ANATOMY,
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
        "instance_map": Image(),
    }
)
