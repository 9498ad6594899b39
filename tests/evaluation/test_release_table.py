"""`scripts/release_table.py`: the card's table and the target check, from an `ultrasam eval` results.json."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "release_table.py"


def load_script():
    spec = importlib.util.spec_from_file_location("_release_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def summary(dataset, model, prompt, value, count=4):
    key = "noc90_iou" if prompt == "clicks" else "dice"
    return {"dataset": dataset, "model": model, "prompt": prompt, "count": count, "metrics": {key: {"mean": value}}}


def results():
    rows = [
        # release: meets every target on "round" (ellipses by construction), misses box and one click on "lesion"
        summary("lesion", "release", "box", 0.93),
        summary("lesion", "release", "point", 0.84),
        summary("lesion", "release", "clicks", 2.5),
        summary("lesion", "zero-shot", "box", 0.92),
        summary("lesion", "baseline-ellipse", "box", 0.88),
        summary("round", "release", "box", 0.96),
        summary("round", "release", "point", 0.90),
        summary("round", "release", "clicks", 3.5),
        summary("round", "zero-shot", "box", 0.90),
        summary("round", "baseline-ellipse", "box", 0.97),
    ]
    records = [
        {"dataset": "lesion", "model": "release", "prompt": "clicks", "curves": {"dice": [0.8, 0.85, 0.9, 0.95]}},
        {"dataset": "lesion", "model": "release", "prompt": "clicks", "curves": {"dice": [0.7, 0.8]}},
    ]
    return {"summary": rows, "records": records}


def test_targets_take_the_better_bar_and_list_every_miss():
    text = load_script().targets(results(), "release", "zero-shot", {"round"})
    lines = text.splitlines()
    # lesion: the bar is the zero-shot model's 0.92 + 0.02 (above the ellipse's 0.88 + 0.02)
    assert "| lesion | 0.840 **no** | 0.930 vs 0.940 (zero-shot) **no** | 2.50 yes |" in lines
    assert "| round | 0.900 yes | 0.960 (ellipses by construction: not counted) | 3.50 **no** |" in lines
    assert lines[-1] == "misses: lesion 1 click, lesion box, round NoC@90"


def test_cli_writes_the_table_then_the_targets(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results()))
    out = tmp_path / "table.md"
    module = load_script()
    module.main(
        [
            str(path),
            "--models",
            "release",
            "zero-shot",
            "--targets",
            "zero-shot",
            "--ellipse-datasets",
            "round",
            "--out",
            str(out),
        ]
    )
    text = out.read_text()
    assert text.index("| dataset | n | release box") < text.index("| dataset | 1 click >= 0.85")
    # the third click of the clicks curves, capped at the curve's length: (0.9 + 0.8) / 2
    assert "| lesion | 4 | 0.930 | 0.840 | 0.850 | 2.50 |" in text


def test_a_dataset_without_baselines_is_a_miss_not_a_crash():
    data = results()
    data["summary"] = [row for row in data["summary"] if row["model"] == "release"]
    text = load_script().targets(data, "release", "zero-shot")
    assert "| lesion | 0.840 **no** | 0.930 (no baseline in this run) **no** | 2.50 yes |" in text.splitlines()


def test_student_check_counts_each_split_against_the_teacher_strictly():
    teacher = {
        "summary": [
            summary("lesion", "lite", "box", 0.930),
            summary("lesion", "lite", "point", 0.850),
            summary("round", "lite", "box", 0.960),
            summary("round", "lite", "point", 0.900),
        ],
        "records": [],
    }
    student = {
        "summary": [
            summary("lesion", "nano", "box", 0.9198),  # -1.02 points: a miss, though it rounds to -1.0
            summary("lesion", "nano", "point", 0.831),  # -1.9: within 2
            summary("round", "nano", "box", 0.955),  # -0.5
            # no one-click row for "round": counted as a miss and named
        ],
        "records": [],
    }
    lines = load_script().student_check(student, ["nano"], teacher, "lite").splitlines()
    assert "| lesion | 0.930 | 0.850 | 0.920 | -1.02 **no** | 0.831 | -1.90 |" in lines
    assert "| round | 0.960 | 0.900 | 0.955 | -0.50 | – | – |" in lines
    assert "nano: box within 1 point of lite on 1 of 2 datasets, one click within 2 points on 1 of 2" in lines
    assert lines[-1] == "not in both runs (counted as misses): round nano point"
