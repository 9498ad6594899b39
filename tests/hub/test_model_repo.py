"""Every kind of folder the package writes is a self-contained Hub repository: it loads with `trust_remote_code=True`
alone in a process where `ultrasam_hf` cannot be imported, through AutoModel + AutoProcessor (a box prompt) and
`pipeline("mask-generation")` (with the folder's own settings), and gives the package's outputs."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hub_helpers import as_hub_cache, assert_adapter_outputs, perturbed_lora, run_without_package
from PIL import Image

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamProcessor
from ultrasam_hf.convert.checkpoint_io import SourceInfo, save_converted
from ultrasam_hf.hub import check_model_repo
from ultrasam_hf.hub.model_repo import remote_code_files
from ultrasam_hf.hub.repo_ids import MEDSAM_REPO
from ultrasam_hf.inference.default_model import PACKAGED_MODEL, packaged_model_dir, packaged_model_names
from ultrasam_hf.models.pipeline_ultrasam import mask_generation_pipeline
from ultrasam_hf.training.variants import apply_variant, export_model

REPO = Path(__file__).resolve().parents[2]
# thresholds at 0: random weights still give masks, so the comparison covers the pipeline's whole path
MASK_GENERATION = {"points_per_crop": 4, "points_per_batch": 8, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
BOX = [[[10.0, 8.0, 60.0, 50.0]]]


def load_ship():
    spec = importlib.util.spec_from_file_location("ship_checkpoint", REPO / "scripts" / "ship_checkpoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(3).integers(0, 255, (60, 80, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite", mask_generation=MASK_GENERATION)).eval()
    return model, UltraSamProcessor.from_model_config(model.config)


@pytest.fixture(scope="module")
def folders(tiny, tmp_path_factory):
    """One folder of each kind: plain save_pretrained, ship_checkpoint (fp16), training export, conversion."""
    model, processor = tiny
    root = tmp_path_factory.mktemp("kinds")
    model.save_pretrained(root / "saved")
    processor.save_pretrained(root / "saved")
    load_ship().ship(root / "saved", root / "shipped")
    record = {"variant": "full", "datasets": "bus-bra,hc18", "max_steps": 10}
    export_model(model, root / "exported", processor, training_record=record)
    info = SourceInfo(
        source="litemedsam",
        title="Tiny test weights",
        checkpoint="tiny.pth",
        licence="Apache-2.0",
        citation="@misc{tiny}",
        homepage="https://example.org",
        intended_use="Tests.",
        base_model=MEDSAM_REPO,
    )
    save_converted(model, processor, root / "converted", info, "test")
    return {kind: root / kind for kind in ("saved", "shipped", "exported", "converted")}


REMOTE_LOAD = """
import json
import numpy as np
from PIL import Image
from transformers import AutoModel, AutoProcessor, pipeline

jobs, image, results = json.loads(sys.argv[1]), np.load(sys.argv[2]), {}
for name, folder in jobs.items():
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    assert "transformers_modules" in type(model).__module__, type(model).__module__
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    inputs = processor(images=image, input_boxes=json.loads(sys.argv[4]), return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs, multimask_output=False)
    generator = pipeline("mask-generation", model=folder, trust_remote_code=True)
    assert type(generator).__name__ == "UltraSamMaskGenerationPipeline", type(generator)
    generated = generator(Image.fromarray(image))
    results[name] = {
        "pred_masks": outputs.pred_masks, "iou_scores": outputs.iou_scores, "scores": generated["scores"],
        "masks": np.stack(generated["masks"]) if generated["masks"] else None,
        "points_per_crop": generator._preprocess_params.get("points_per_crop"),
    }
torch.save(results, sys.argv[3])
"""


def package_outputs(folder, image):
    model = UltraSamModel.from_pretrained(folder).eval()
    processor = UltraSamProcessor.from_pretrained(folder)
    inputs = processor(images=image, input_boxes=BOX, return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs, multimask_output=False)
    generated = mask_generation_pipeline(str(folder))(Image.fromarray(image))
    return outputs, generated


def run_remote(jobs, image, tmp_path):
    np.save(tmp_path / "image.npy", image)
    args = (
        json.dumps({k: str(v) for k, v in jobs.items()}),
        tmp_path / "image.npy",
        tmp_path / "out.pt",
        json.dumps(BOX),
    )
    run_without_package(REMOTE_LOAD, *args, cwd=tmp_path)
    return torch.load(tmp_path / "out.pt", weights_only=False)


def test_every_folder_kind_loads_by_remote_code_alone(folders, image, tmp_path):
    for kind, folder in folders.items():
        assert check_model_repo(folder) == [] or kind == "saved", (kind, check_model_repo(folder))
        config = json.loads((folder / "config.json").read_text())
        assert {"AutoConfig", "AutoModel", "AutoModelForMaskGeneration"} <= set(config["auto_map"]), kind
        assert (
            config["custom_pipelines"]["mask-generation"]["impl"] == "pipeline_ultrasam.UltraSamMaskGenerationPipeline"
        )
    for kind in ("shipped", "exported", "converted"):  # the package's writers: every model file, byte for byte
        for source in remote_code_files():
            assert (folders[kind] / source.name).read_bytes() == source.read_bytes(), (kind, source.name)
    torch.set_num_threads(1)  # as in the subprocess: same kernels, comparable outputs
    remote = run_remote(folders, image, tmp_path)
    for kind, folder in folders.items():
        outputs, generated = package_outputs(folder, image)
        torch.testing.assert_close(remote[kind]["pred_masks"], outputs.pred_masks, rtol=0, atol=1e-5)
        torch.testing.assert_close(remote[kind]["iou_scores"], outputs.iou_scores, rtol=0, atol=1e-5)
        assert remote[kind]["points_per_crop"] == MASK_GENERATION["points_per_crop"], kind  # the folder's setting
        assert len(generated["masks"]) == len(remote[kind]["scores"]) > 0, kind
        torch.testing.assert_close(remote[kind]["scores"], generated["scores"], rtol=0, atol=1e-4)
        np.testing.assert_array_equal(remote[kind]["masks"], np.stack(generated["masks"]))


REMOTE_ADAPTER = """
from peft import AutoPeftModel

model = AutoPeftModel.from_pretrained(sys.argv[1], trust_remote_code=True, cache_dir=sys.argv[2]).eval()
inputs = torch.load(sys.argv[3])
with torch.no_grad():
    torch.save(model(**inputs, multimask_output=False).pred_masks, sys.argv[4])
"""


def test_kept_adapter_loads_with_auto_peft_model_alone(tiny, tmp_path):
    """A `--keep-adapter` training output whose base is a Hub repository: AutoPeftModel builds the base from the
    base repository's own code and applies the adapter, without ultrasam_hf."""
    model, processor = tiny
    base_repo, cache = "ultrasam-test/tiny-base", tmp_path / "cache"
    model.save_pretrained(tmp_path / "base")
    processor.save_pretrained(tmp_path / "base")
    as_hub_cache(tmp_path / "base", cache, base_repo)
    peft_model = perturbed_lora(tmp_path / "base")
    export_model(peft_model, tmp_path / "adapter", processor, keep_adapter=True, base_dir=base_repo)
    assert check_model_repo(tmp_path / "adapter") == []
    adapter_config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == base_repo
    assert adapter_config["auto_mapping"] == {"base_model_class": "AutoModel", "parent_library": "transformers"}
    card = (tmp_path / "adapter" / "README.md").read_text()
    assert (
        f"base_model: {base_repo}" in card and "base_model_relation: adapter" in card and "library_name: peft" in card
    )
    inputs = {"pixel_values": torch.rand(1, 3, 64, 64), "input_boxes": torch.tensor([[[4.0, 4.0, 40.0, 40.0]]])}
    torch.save(inputs, tmp_path / "inputs.pt")
    args = (tmp_path / "adapter", cache, tmp_path / "inputs.pt", tmp_path / "out.pt")
    run_without_package(REMOTE_ADAPTER, *args, cwd=tmp_path)
    assert_adapter_outputs(tmp_path / "out.pt", peft_model, model, inputs)


def test_adapter_on_a_local_base_is_refused_for_a_push_until_its_base_has_a_hub_id(tiny, tmp_path):
    from ultrasam_hf.hub import prepare_model_repo

    model, processor = tiny
    model.save_pretrained(tmp_path / "base")
    peft_model = apply_variant(UltraSamModel.from_pretrained(tmp_path / "base"), "lora")
    export_model(peft_model, tmp_path / "adapter", processor, keep_adapter=True, base_dir=tmp_path / "base")
    problems = check_model_repo(tmp_path / "adapter")
    assert len(problems) == 1 and "not a Hub repository id" in problems[0]
    prepare_model_repo(tmp_path / "adapter", base_model_id="ultrasam-test/tiny-base")
    assert check_model_repo(tmp_path / "adapter") == []
    assert "base_model: ultrasam-test/tiny-base" in (tmp_path / "adapter" / "README.md").read_text()


def pydicom_data_available() -> bool:
    try:
        from pydicom.data import get_testdata_file

        return get_testdata_file("US1_UNCR.dcm") is not None
    except ImportError:
        return False


def refreshed_asset(tmp_path, shipped=PACKAGED_MODEL):
    """A copy of a committed asset as `ship_checkpoint.py --refresh` leaves it (its code and examples are
    git-ignored, written here)."""
    asset = tmp_path / shipped.name
    shutil.copytree(shipped, asset, ignore=shutil.ignore_patterns("*.py", "examples", "__pycache__"))
    load_ship().refresh(asset)
    return asset


@pytest.mark.parametrize("name", packaged_model_names())
def test_shipped_asset_is_current(name, tmp_path):
    """Each committed asset's card / config / processor config are what `ship_checkpoint.py --refresh` writes, and
    the refreshed folder passes every check."""
    shipped = packaged_model_dir(name)
    asset = refreshed_asset(tmp_path, shipped)
    for name in ("README.md", "config.json", "processor_config.json", "LICENSE.md"):
        assert (asset / name).read_text() == (shipped / name).read_text(), f"{name} is stale: run --refresh"
    assert check_model_repo(asset) == []


@pytest.mark.slow  # ~100 s on 2 cores: automatic masks of the real lite model on one thread
def test_shipped_asset_loads_by_remote_code(image, tmp_path):
    """The refreshed asset loads and generates masks without the package, as the package does."""
    asset = refreshed_asset(tmp_path)
    torch.set_num_threads(1)
    remote = run_remote({"asset": asset}, image, tmp_path)["asset"]
    model = UltraSamModel.from_pretrained(PACKAGED_MODEL).eval()
    processor = UltraSamProcessor.from_pretrained(PACKAGED_MODEL)
    inputs = processor(images=image, input_boxes=BOX, return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(
            remote["pred_masks"], model(**inputs, multimask_output=False).pred_masks, rtol=0, atol=1e-5
        )
    assert remote["points_per_crop"] == model.config.mask_generation["points_per_crop"]
