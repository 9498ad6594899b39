"""Fixtures for the bad-input suite: a tiny model folder, broken model folders, images, a DICOM carrying patient
tags, and helpers that run a command and check the one-line error contract."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamProcessor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for dicom_fixtures
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bad_input_helpers

from bad_input_helpers import PHI  # noqa: E402
from dicom_fixtures import make_dicom_dataset  # noqa: E402


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "tiny-lite"
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    model.save_pretrained(folder)
    UltraSamProcessor.from_model_config(model.config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def bad_models(tmp_path_factory, model_dir) -> dict:
    """Folders that must never load: name -> (folder, what the error says, what it says to do)."""
    root = tmp_path_factory.mktemp("bad_models")
    folders = {}

    def copy(name):
        target = root / name
        shutil.copytree(model_dir, target)
        return target

    from transformers import BertConfig, BertModel

    bert = root / "bert"
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37, vocab_size=99)
    ).save_pretrained(bert)
    folders["bert"] = (bert, "'bert' model", "ultrasam convert")

    no_weights = copy("no-weights")
    (no_weights / "model.safetensors").unlink()
    folders["no-weights"] = (no_weights, "no weights", "convert / save the model again")

    bad_json = copy("bad-json")
    (bad_json / "config.json").write_text('{"model_type": "ultrasam", ')
    folders["bad-json"] = (bad_json, "cannot be read as JSON", "convert or save the model again")

    no_type = copy("no-model-type")
    config = json.loads((no_type / "config.json").read_text())
    config.pop("model_type")
    (no_type / "config.json").write_text(json.dumps(config))
    folders["no-model-type"] = (no_type, "without model_type", "ultrasam convert")

    # an UltraSam config whose weights are another model's: a wider IoU head
    foreign = copy("foreign-weights")
    config = json.loads((foreign / "config.json").read_text())
    config["mask_decoder_config"]["iou_head_hidden_dim"] *= 2
    (foreign / "config.json").write_text(json.dumps(config))
    folders["foreign-weights"] = (foreign, "mis-shaped", "convert or save the model again")

    # the weights of a different preset under this config: missing and unexpected tensors
    other = copy("other-preset-weights")
    UltraSamModel(UltraSamConfig.from_preset("tiny")).save_pretrained(root / "tmp-tiny")
    shutil.copy(root / "tmp-tiny" / "model.safetensors", other / "model.safetensors")
    folders["other-preset-weights"] = (other, "do not fit its config", "convert or save the model again")

    truncated = copy("truncated-weights")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    folders["truncated-weights"] = (truncated, "cannot load the weights", "convert / save the model again")

    nan = copy("nan-weights")
    from safetensors.torch import load_file, save_file

    state = load_file(str(nan / "model.safetensors"))
    state["mask_decoder.iou_token.weight"] = torch.full_like(state["mask_decoder.iou_token.weight"], float("nan"))
    save_file(state, str(nan / "model.safetensors"), metadata={"format": "pt"})
    folders["nan-weights"] = (nan, "NaN or infinite", "convert or save the model again")

    bad_processor = copy("bad-processor")
    (bad_processor / "processor_config.json").write_text("not json at all")
    folders["bad-processor"] = (bad_processor, "processor config", "fix or delete it")

    text_file = root / "model.txt"
    text_file.write_text("a file, not a folder")
    folders["a-file"] = (text_file, "is a file, not a model folder", "ultrasam convert")

    empty = root / "empty"
    empty.mkdir()
    folders["empty-folder"] = (empty, "has no config.json", "ultrasam convert")
    folders["missing"] = (root / "no" / "such" / "dir", "does not exist", "ultrasam convert")
    return folders


@pytest.fixture(scope="session")
def scan_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("images") / "scan.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="session")
def phi_dicom(tmp_path_factory) -> Path:
    """A US DICOM whose header holds patient-identifying values (`PHI`), pixels a plain grey ramp."""
    path = tmp_path_factory.mktemp("dicom") / "exam.dcm"
    pixels = (np.add.outer(np.arange(60), np.arange(80)) % 256).astype(np.uint8)
    make_dicom_dataset(pixels, "MONOCHROME2", **PHI).save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(scope="session")
def bad_images(tmp_path_factory, scan_png) -> dict:
    """Image inputs that must fail: name -> (path, what the error says, what it says to do)."""
    root = tmp_path_factory.mktemp("bad_images")
    images = {}
    (root / "empty.png").write_bytes(b"")
    images["empty-file"] = (root / "empty.png", "corrupt, truncated or not an image", "give a PNG")
    (root / "text.png").write_text("this is text, not a PNG")
    images["text-as-png"] = (root / "text.png", "corrupt, truncated or not an image", "give a PNG")
    data = scan_png.read_bytes()
    (root / "truncated.png").write_bytes(data[: len(data) // 3])
    images["truncated-png"] = (root / "truncated.png", "corrupt, truncated or not an image", "give a PNG")
    (root / "folder.png").mkdir()
    # a folder or a missing path goes the batch way (folders and globs are inputs there)
    images["a-folder"] = (root / "folder.png", "No image, DICOM or volume file found in", "give a PNG")
    images["missing"] = (root / "absent.png", "No such file, folder or matching glob", "check the path")
    (root / "garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 3)
    images["garbage-dicom"] = (root / "garbage.dcm", "no pixel data", "a truncated file")
    dicom = make_dicom_dataset(np.zeros((60, 80), np.uint8), "MONOCHROME2", **PHI)
    dicom.save_as(root / "whole.dcm", enforce_file_format=True)
    (root / "cut.dcm").write_bytes((root / "whole.dcm").read_bytes()[:-1000])
    images["truncated-dicom"] = (root / "cut.dcm", "Cannot read the pixel data", "re-export it")
    no_pixels = make_dicom_dataset(np.zeros((4, 4), np.uint8), "MONOCHROME2", **PHI)
    del no_pixels.PixelData
    no_pixels.save_as(root / "no_pixels.dcm", enforce_file_format=True)
    images["dicom-without-pixels"] = (root / "no_pixels.dcm", "no pixel data", "nothing to segment")
    big = root / "big.png"
    Image.new("L", (9000, 8000)).save(big)  # 72 MP, a few kB on disk
    images["over-pixel-limit"] = (big, "above the decoding limit", "--max-pixels")
    thin = root / "thin.png"
    Image.fromarray(np.zeros((1, 400), np.uint8)).save(thin)
    images["too-thin"] = (thin, "short side would be 0 px", "pad or crop")
    return images
