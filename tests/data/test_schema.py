"""Shards are readable by every pyarrow the requirements admit (datasets>=5.2 admits pyarrow>=24)."""

import json
import os
import subprocess

import pyarrow as pa
import pytest
from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like

from ultrasam_hf.data import FEATURES

# A python with an older pyarrow (e.g. `python3 -m venv /tmp/pa24 && /tmp/pa24/bin/pip install pyarrow==24.0.0`);
# several may be given, separated by os.pathsep.
OLD_PYARROW_PYTHONS = [path for path in os.environ.get("ULTRASAM_OLD_PYARROW_PYTHON", "").split(os.pathsep) if path]

READ_BACK = """
import json, sys, pyarrow, pyarrow.parquet as pq
rows = pq.read_table(sys.argv[1]).to_pylist()
print(json.dumps({"pyarrow": pyarrow.__version__, "spacing": [row["pixel_spacing_mm"] for row in rows],
                  "bboxes": [[obj["bbox"] for obj in row["objects"]] for row in rows]}))
"""


def nullable_fixed_size_lists(schema: pa.Schema) -> list:
    """Fixed-size list columns that can hold a null: the type older pyarrow cannot read back from Parquet."""
    return [field.name for field in schema if pa.types.is_fixed_size_list(field.type) and field.nullable]


def test_pixel_spacing_is_a_variable_length_list():
    schema = FEATURES.arrow_schema
    assert pa.types.is_list(schema.field("pixel_spacing_mm").type)
    assert nullable_fixed_size_lists(schema) == []


@pytest.fixture
def shard_with_and_without_spacing(tmp_path):
    raw = tmp_path / "raw"
    for index in range(3):
        save(raw / "images" / f"im{index}.png", ultrasound_like(seed=index))
        save(raw / "masks" / f"im{index}.png", two_blobs())
    (raw / "spacing.csv").write_text("name,mm\nim0,0.5\nim2,0.25\n")  # im1 has none: a null between two lists
    spec = make_spec(
        "image_mask_pairs",
        {
            "images": "images/*.png",
            "mask": "masks/{name}",
            "pixel_spacing": {"file": "spacing.csv", "id_column": "name", "column": "mm"},
        },
        {1: "nerve", 2: "vessel"},
    )
    _, rows = build(spec, raw, tmp_path / "out")
    assert [row["pixel_spacing_mm"] for row in rows] == [[0.5, 0.5], None, [0.25, 0.25]]
    return next((tmp_path / "out" / "fixture").glob("*/*.parquet"))


@pytest.mark.skipif(
    not OLD_PYARROW_PYTHONS, reason="set ULTRASAM_OLD_PYARROW_PYTHON to a python with an older pyarrow"
)
@pytest.mark.parametrize("python", OLD_PYARROW_PYTHONS)
def test_shards_read_back_with_an_older_pyarrow(shard_with_and_without_spacing, python):
    result = subprocess.run(
        [python, "-c", READ_BACK, str(shard_with_and_without_spacing)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert read["spacing"] == [[0.5, 0.5], None, [0.25, 0.25]], read["pyarrow"]
    assert read["bboxes"][0] == [[5.0, 5.0, 17.0, 15.0], [40.0, 30.0, 46.0, 36.0]], read["pyarrow"]
