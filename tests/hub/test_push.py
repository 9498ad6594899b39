"""The push commands of docs/hub.md, run against folders standing in for the Hub: `hf upload` (huggingface_hub's own
CLI, its HfApi uploads redirected into a folder), `scripts/ship_checkpoint.py`, `ultrasam data push`,
`push_model_repo` (an adapter's with `base_model_id`) and `model.push_to_hub`. What lands there loads, by Hub
repository id where a Hub cache can stand in, without ultrasam_hf."""

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hub_helpers import as_hub_cache, assert_adapter_outputs, perturbed_lora, run_without_package
from huggingface_hub import HfApi
from huggingface_hub.cli.hf import app as hf_app
from safetensors import safe_open
from test_model_card import eval_json, front_matter
from test_model_repo import REMOTE_ADAPTER, load_ship, pydicom_data_available
from transformers.utils import hub as transformers_hub

from ultrasam_hf import UltraSamConfig, UltraSamModel, UltraSamProcessor
from ultrasam_hf.evaluation import METRIC_PATH
from ultrasam_hf.hub import check_model_repo, eval_results_from_eval_json, push_model_repo
from ultrasam_hf.hub.model_repo import MODEL_AUTO_MAP, PROCESSOR_AUTO_MAP
from ultrasam_hf.hub.repo_ids import DATASETS_REPO, DEMO_SPACE, HUB_NAMESPACE, MEDSAM_REPO, METRIC_REPOS, MODEL_REPOS
from ultrasam_hf.inference.default_model import PACKAGED_MODEL
from ultrasam_hf.training.variants import export_model

REPO = Path(__file__).resolve().parents[2]
CLASSIFICATION_METRIC = REPO / "ultrasam_hf" / "downstream" / "ultrasam_classification_metric"


@pytest.fixture
def hf_cli(monkeypatch, folder_hub):
    """`hf ...` in-process, with HfApi's create_repo / upload_folder / upload_file writing into `folder_hub`."""
    for name in ("create_repo", "upload_folder", "upload_file"):
        monkeypatch.setattr(
            HfApi, name, lambda self, *args, _name=name, **kwargs: getattr(folder_hub, _name)(*args, **kwargs)
        )

    def run(*args):
        result = CliRunner().invoke(hf_app, [str(arg) for arg in args])
        assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"

    return run


@pytest.fixture
def asset_copy(tmp_path):
    """The shipped model folder as git holds it (no remote code, no examples)."""
    target = tmp_path / PACKAGED_MODEL.name
    shutil.copytree(PACKAGED_MODEL, target, ignore=shutil.ignore_patterns("*.py", "examples", "__pycache__"))
    return target


REMOTE_BY_REPO_ID = """
sys.modules["pydicom"] = None  # a Hub user without pydicom: the processor's code must not require it
import numpy as np
from PIL import Image
from transformers import AutoModel, AutoProcessor, pipeline

repo = sys.argv[1]
model = AutoModel.from_pretrained(repo, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(repo, trust_remote_code=True)
image = np.load(sys.argv[2])
inputs = processor(images=image, input_boxes=[[[10.0, 8.0, 60.0, 50.0]]], return_tensors="pt")
with torch.no_grad():
    torch.save(model(**inputs, multimask_output=False).pred_masks, sys.argv[3])
generator = pipeline("mask-generation", model=repo, trust_remote_code=True)
assert type(generator).__name__ == "UltraSamMaskGenerationPipeline"
generator(Image.fromarray(image))
"""


@pytest.mark.skipif(not pydicom_data_available(), reason="the widget examples come from pydicom-data")
@pytest.mark.slow  # ~100 s on 2 cores: the real lite model, loaded and run by remote code in a subprocess
def test_shipped_model_push_with_hf_upload_then_load_by_repo_id(asset_copy, hf_cli, folder_hub, tmp_path, monkeypatch):
    repo_id = MODEL_REPOS["ultrasam-lite-us"]
    load_ship().refresh(asset_copy)  # docs/hub.md: python scripts/ship_checkpoint.py --refresh <folder>
    hf_cli("upload", repo_id, asset_copy, ".", "--exclude", "__pycache__/*")
    pushed = folder_hub.root / repo_id
    assert check_model_repo(pushed) == []
    cache = tmp_path / "cache"
    as_hub_cache(pushed, cache, repo_id)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    image = np.random.default_rng(3).integers(0, 255, (60, 80, 3), dtype=np.uint8)
    np.save(tmp_path / "image.npy", image)
    run_without_package(REMOTE_BY_REPO_ID, repo_id, tmp_path / "image.npy", tmp_path / "masks.pt", cwd=tmp_path)
    assert torch.load(tmp_path / "masks.pt").shape[-1] == 256


REMOTE_OUTPUTS = """
from transformers import AutoModel

model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
assert "transformers_modules" in type(model).__module__, type(model).__module__
with torch.no_grad():
    outputs = model(**torch.load(sys.argv[2]), multimask_output=False)
dtypes = sorted({str(p.dtype) for p in model.parameters()})
torch.save({"pred_masks": outputs.pred_masks, "iou_scores": outputs.iou_scores, "dtypes": dtypes}, sys.argv[3])
"""


def tiny_inputs(tmp_path) -> dict:
    torch.manual_seed(2)
    inputs = {"pixel_values": torch.rand(1, 3, 64, 64), "input_boxes": torch.tensor([[[4.0, 4.0, 40.0, 40.0]]])}
    torch.save(inputs, tmp_path / "inputs.pt")
    return inputs


def test_ship_checkpoint_with_card_and_results_then_hf_upload_then_load_by_repo_id(
    hf_cli, folder_hub, tmp_path, monkeypatch, capsys
):
    """docs/hub.md's new shipped model: `python scripts/ship_checkpoint.py SOURCE TARGET --card CARD --results
    RESULTS --model-name NAME`, then `hf upload`; the pushed repository loads by id without ultrasam_hf and gives
    the source model's outputs up to the fp16 rounding of its weights."""
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite")).eval()
    with torch.no_grad():  # as if trained: outputs well away from zero, so that fp16 rounding is measurable
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.05)
    source = tmp_path / "runs" / "v3"
    model.save_pretrained(source)
    UltraSamProcessor.from_model_config(model.config).save_pretrained(source)
    card = tmp_path / "model_card.md"
    card.write_text(f"---\nlicense: apache-2.0\nbase_model: {MEDSAM_REPO}\ndatasets:\n- bus-bra\n---\n# Tiny v3\n")
    (tmp_path / "eval-v3").mkdir()
    results = tmp_path / "eval-v3" / "results.json"
    results.write_text(json.dumps(eval_json("v3")))
    target = tmp_path / "ultrasam-tiny-v3"
    argv = [source, target, "--card", card, "--results", results, "--model-name", "v3"]
    assert load_ship().main([str(arg) for arg in argv]) == 0
    assert capsys.readouterr().out.startswith(str(target / "model.safetensors"))

    repo_id = f"{HUB_NAMESPACE}/{target.name}"  # the card's default repository id (widget links)
    hf_cli("upload", repo_id, target, ".", "--exclude", "__pycache__/*")
    pushed = folder_hub.root / repo_id
    assert check_model_repo(pushed) == []
    with safe_open(str(pushed / "model.safetensors"), framework="pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118 (a safetensors handle)
    assert "F16" in dtypes and not dtypes & {"F32", "BF16", "F64"}
    config = json.loads((pushed / "config.json").read_text())
    assert config["auto_map"] == {**MODEL_AUTO_MAP["UltraSamModel"], **PROCESSOR_AUTO_MAP}
    processor_config = json.loads((pushed / "processor_config.json").read_text())
    assert processor_config["auto_map"] == {"AutoProcessor": PROCESSOR_AUTO_MAP["AutoProcessor"]}
    assert processor_config["image_processor"]["auto_map"] == PROCESSOR_AUTO_MAP
    metadata = front_matter(pushed / "README.md")
    assert (metadata["license"], metadata["base_model"], metadata["datasets"]) == (
        "apache-2.0",
        MEDSAM_REPO,
        [DATASETS_REPO],
    )
    (index,) = metadata["model-index"]
    rows = {
        (result["dataset"]["config"], metric["type"]): metric["value"]
        for result in index["results"]
        for metric in result["metrics"]
    }
    expected_rows = {
        (r.dataset_config, r.metric_type): r.metric_value for r in eval_results_from_eval_json(results, "v3")
    }
    assert index["name"] == "v3" and rows == expected_rows and len(rows) == 4
    for entry in metadata.get("widget", []):  # present when pydicom-data is installed
        assert entry["src"].startswith(f"https://huggingface.co/{repo_id}/resolve/main/examples/")

    as_hub_cache(pushed, tmp_path / "cache", repo_id)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    inputs = tiny_inputs(tmp_path)
    run_without_package(REMOTE_OUTPUTS, repo_id, tmp_path / "inputs.pt", tmp_path / "out.pt", cwd=tmp_path)
    remote = torch.load(tmp_path / "out.pt")
    assert remote["dtypes"] == ["torch.float32"]  # the config's dtype: fp16 storage, fp32 compute
    torch.set_num_threads(1)  # as in the subprocess
    rounded = copy.deepcopy(model)  # the source with its weights rounded as the shipped file stores them
    with torch.no_grad():
        for tensor in rounded.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half())
        exact = model(**inputs, multimask_output=False)
        fp16 = rounded(**inputs, multimask_output=False)
    for name in ("pred_masks", "iou_scores"):
        scale = getattr(exact, name).abs().max()
        # what landed is the source's weights rounded to fp16 (same kernels: equal up to float32 noise) ...
        torch.testing.assert_close(remote[name], getattr(fp16, name), rtol=1e-4, atol=1e-4 * scale)
        # ... which is the source model up to that rounding
        assert (remote[name] - getattr(exact, name)).abs().max() < 1e-2 * scale, name


def test_adapter_push_with_base_model_id_then_load_by_repo_id(hf_cli, folder_hub, tmp_path, monkeypatch):
    """docs/hub.md's PEFT paragraph: a kept adapter whose base is a local folder; the base is pushed first (a
    training output: `hf upload` as written), the adapter push is refused until `base_model_id` names the base's Hub
    id, then `AutoPeftModel.from_pretrained(<adapter id>)` builds the pushed base and applies the pushed adapter,
    without ultrasam_hf, with the local adapted model's outputs."""
    base_id, adapter_id = "org/tiny-base", "org/tiny-adapter"
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite")).eval()
    processor = UltraSamProcessor.from_model_config(model.config)
    export_model(model, tmp_path / "base", processor)
    hf_cli("upload", base_id, tmp_path / "base", ".", "--exclude", "__pycache__/*")
    assert check_model_repo(folder_hub.root / base_id) == []

    peft_model = perturbed_lora(tmp_path / "base")
    adapter = tmp_path / "adapter"
    export_model(peft_model, adapter, processor, keep_adapter=True, base_dir=tmp_path / "base")
    with pytest.raises(ValueError, match="not a Hub repository id"):
        push_model_repo(adapter, adapter_id, api=folder_hub)
    assert not (folder_hub.root / adapter_id).exists()
    push_model_repo(adapter, adapter_id, base_model_id=base_id, api=folder_hub)
    local_config = json.loads((adapter / "adapter_config.json").read_text())
    assert local_config["base_model_name_or_path"] == str(tmp_path / "base")  # the folder itself is left alone
    pushed = folder_hub.root / adapter_id
    assert check_model_repo(pushed) == []
    assert json.loads((pushed / "adapter_config.json").read_text())["base_model_name_or_path"] == base_id
    metadata = front_matter(pushed / "README.md")
    assert (metadata["base_model"], metadata["base_model_relation"], metadata["library_name"]) == (
        base_id,
        "adapter",
        "peft",
    )

    cache = tmp_path / "cache"
    as_hub_cache(folder_hub.root / base_id, cache, base_id)
    as_hub_cache(pushed, cache, adapter_id)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    inputs = tiny_inputs(tmp_path)
    run_without_package(REMOTE_ADAPTER, adapter_id, cache, tmp_path / "inputs.pt", tmp_path / "out.pt", cwd=tmp_path)
    assert_adapter_outputs(tmp_path / "out.pt", peft_model, model, inputs)


def test_push_model_repo_prepares_a_copy_and_leaves_the_folder_alone(asset_copy, folder_hub):
    before = sorted(path.name for path in asset_copy.iterdir())
    push_model_repo(asset_copy, "org/lite", api=folder_hub)
    assert sorted(path.name for path in asset_copy.iterdir()) == before
    pushed = folder_hub.root / "org" / "lite"
    assert (pushed / "modeling_ultrasam.py").is_file() and check_model_repo(pushed) == []


def test_push_model_repo_refuses_a_folder_with_a_broken_card(asset_copy, folder_hub):
    card = asset_copy / "README.md"
    card.write_text(card.read_text().replace("base_model: wanglab/medsam-vit-base", "base_model: LiteMedSAM (Drive)"))
    with pytest.raises(ValueError, match="base_model 'LiteMedSAM"):
        push_model_repo(asset_copy, "org/lite", api=folder_hub)
    assert not (folder_hub.root / "org" / "lite").exists()


def test_model_push_to_hub_keeps_the_loaded_card_and_fp16(tmp_path, folder_hub, monkeypatch):
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset("tiny-lite"))
    half = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.save_pretrained(tmp_path / "shipped", state_dict=half)
    (tmp_path / "shipped" / "README.md").write_text("---\nlicense: apache-2.0\n---\n# the shipped card\n")
    monkeypatch.setattr(transformers_hub, "hf_api", lambda: folder_hub)
    UltraSamModel.from_pretrained(tmp_path / "shipped").push_to_hub("org/tiny")
    pushed = folder_hub.root / "org" / "tiny"
    assert (pushed / "README.md").read_text() == (tmp_path / "shipped" / "README.md").read_text()
    with safe_open(str(pushed / "model.safetensors"), framework="pt") as handle:
        assert "F16" in {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118 (a safetensors handle)
    assert (pushed / "pipeline_ultrasam.py").is_file()


METRIC_RUN = """
import json
import evaluate

module = evaluate.load(sys.argv[1], keep_in_memory=True)
print(json.dumps(module.compute(**json.loads(sys.argv[2]))))
"""


@pytest.mark.parametrize(
    "name, folder, inputs",
    [
        (
            "ultrasam_segmentation_metric",
            METRIC_PATH,
            {"predictions": [[[0, 1], [1, 1]]], "references": [[[0, 1], [1, 0]]], "tolerance": 1.0},
        ),
        (
            "ultrasam_classification_metric",
            CLASSIFICATION_METRIC,
            {"predictions": [0, 1, 1], "references": [0, 1, 0], "scores": [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]]},
        ),
    ],
)
def test_metric_space_push_then_load_without_the_package(name, folder, inputs, hf_cli, folder_hub, tmp_path):
    """`hf upload --repo-type space` of the module folder; the pushed copy runs with evaluate + numpy/scipy only."""
    import evaluate

    hf_cli("upload", METRIC_REPOS[name], folder, ".", "--repo-type", "space", "--exclude", "__pycache__/*")
    pushed = folder_hub.root / METRIC_REPOS[name]
    assert {"README.md", "app.py", "requirements.txt", f"{name}.py"} <= {p.name for p in pushed.iterdir()}
    assert "sdk: gradio" in (pushed / "README.md").read_text()
    assert not any(path.is_symlink() for path in pushed.iterdir())  # the link to metrics.py travels as a file
    result = run_without_package(METRIC_RUN, pushed, json.dumps(inputs), cwd=tmp_path)
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    expected = evaluate.load(str(folder), keep_in_memory=True).compute(**inputs)
    assert remote == pytest.approx(expected, nan_ok=True)


SPACE_RUN = """
from ultrasam_hf.inference.default_model import PACKAGED_MODEL
print(PACKAGED_MODEL)
"""


def test_demo_space_push_with_hf_upload(hf_cli, folder_hub, tmp_path):
    """`ultrasam app --write-space DIR`, then `hf upload --repo-type space`: the pushed Space runs its own copy of the
    package and its default model."""
    import subprocess
    import sys

    pytest.importorskip("gradio")
    from ultrasam_hf.cli import main

    assert main(["app", "--write-space", str(tmp_path / "space")]) == 0
    hf_cli("upload", DEMO_SPACE, tmp_path / "space", ".", "--repo-type", "space", "--exclude", "__pycache__/*")
    pushed = folder_hub.root / DEMO_SPACE
    assert "sdk: gradio" in (pushed / "README.md").read_text()
    assert "from ultrasam_hf.inference.app import launch" in (pushed / "app.py").read_text()
    assert any(line.startswith("gradio") for line in (pushed / "requirements.txt").read_text().splitlines())
    assert not list(pushed.rglob("__pycache__"))
    run = subprocess.run([sys.executable, "-c", SPACE_RUN], cwd=pushed, capture_output=True, text=True, check=True)
    model = Path(run.stdout.strip())
    assert model.is_relative_to(pushed) and (model / "model.safetensors").is_file()


def test_dataset_push_command(tmp_path, folder_hub, monkeypatch, capsys):
    """`ultrasam data push BUILD REPO` (`--dry-run` first): the redistributable datasets, their cards and the root
    card; `ultrasam data card BUILD` writes the same root card into the build folder."""
    import sys

    sys.path.insert(0, str(REPO / "tests" / "data"))
    from data_fixtures import build, make_spec, save, two_blobs, ultrasound_like

    from ultrasam_hf.cli import main

    raw = tmp_path / "raw"
    for index in range(4):
        save(raw / "images" / f"im{index}.png", ultrasound_like(seed=index))
        save(raw / "masks" / f"im{index}.png", two_blobs())
    spec = make_spec(
        "image_mask_pairs", {"images": "images/*.png", "mask": "masks/{name}"}, {1: "nerve"}, slug="usgra"
    )
    build(spec, raw, tmp_path / "build")
    for name in ("create_repo", "upload_folder", "upload_file"):
        monkeypatch.setattr(
            HfApi, name, lambda self, *args, _name=name, **kwargs: getattr(folder_hub, _name)(*args, **kwargs)
        )
    assert main(["data", "push", str(tmp_path / "build"), "org/us43d", "--dry-run"]) == 0
    assert "would push to org/us43d: usgra" in capsys.readouterr().out
    assert not (folder_hub.root / "org").exists()
    assert main(["data", "push", str(tmp_path / "build"), "org/us43d"]) == 0
    pushed = folder_hub.root / "org" / "us43d"
    assert (pushed / "README.md").is_file() and (pushed / "usgra" / "README.md").is_file()
    assert list((pushed / "usgra" / "train").glob("*.parquet"))
    assert main(["data", "card", str(tmp_path / "build")]) == 0
    assert "config_name: usgra" in (tmp_path / "build" / "README.md").read_text()
