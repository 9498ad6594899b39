import json
import shutil

import numpy as np
import pytest

from ultrasam_hf import UltraSamPredictor
from ultrasam_hf.export.onnx_backend import OnnxBackend
from ultrasam_hf.export.onnx_export import (
    GRAPH_REVISION,
    MANIFEST,
    cache_folder,
    compare_predictors,
    export_onnx,
    find_export,
    model_fingerprint,
    parity_image,
    parity_prompts,
    stale_export_reason,
)
from ultrasam_hf.inference.backends import TorchBackend


def predictors(model, processor, folder):
    # the model's own forward: the reference for the split decoder too
    torch_predictor = UltraSamPredictor(model, processor, backend=TorchBackend(model, split_decoder=False))
    onnx_predictor = UltraSamPredictor(model, processor, backend=OnnxBackend(model, folder))
    return torch_predictor, onnx_predictor


def assert_parity(stats, logits_scale):
    assert stats["min_mask_iou"] >= 0.99, stats
    # random tiny models have small logits: compare differences to their scale
    assert stats["max_abs_logit_diff"] <= 1e-4 * max(logits_scale, 1.0), stats


def test_manifest_records_preprocessing_graphs_and_parity(exported):
    model, processor, folder = exported
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["model_fingerprint"] == model_fingerprint(model)
    assert manifest["preprocessing"]["mode"] == model.config.preprocessing
    assert manifest["preprocessing"]["input_size"] == model.config.vision_config.image_size
    assert manifest["preprocessing"]["mask_size"] == 4 * model.config.prompt_encoder_config.image_embedding_size
    assert manifest["graphs"] == {
        "fp32": {
            "encoder": "encoder.onnx",
            "decoder": "decoder.onnx",
            "decoder_image": "decoder_image.onnx",
            "decoder_prompt": "decoder_prompt.onnx",
        }
    }
    assert manifest["decoder_graph"] == "TokenSideDecoderGraph"
    assert all((folder / name).is_file() for name in manifest["graphs"]["fp32"].values())
    assert manifest["parity"]["fp32"]["min_mask_iou"] >= 0.99


def test_onnx_predictor_matches_pytorch(exported):
    model, processor, folder = exported
    torch_predictor, onnx_predictor = predictors(model, processor, folder)
    image = parity_image(200)
    torch_predictor.set_image(image)
    prompts = parity_prompts(200, 200) + [
        {"points": [[60, 80]], "multimask_output": True},
        {"boxes": [[20, 30, 120, 150], [90, 90, 180, 190], [5, 5, 50, 50]], "multimask_output": True},
    ]
    _, _, logits = torch_predictor.predict(boxes=[20, 30, 120, 150])
    prompts += [{"mask_input": logits[:, 0]}, {"boxes": [20, 30, 120, 150], "mask_input": logits[:, 0]}]
    stats = compare_predictors(torch_predictor, onnx_predictor, image, prompts)
    assert stats["max_abs_embedding_diff"] <= 1e-4 * max(float(torch_predictor.image_embeddings.abs().max()), 1.0)
    assert_parity(stats, float(np.abs(logits).max()))


def test_dynamic_prompt_counts(exported):
    """Any number of objects and of clicks per object goes through the same decoder graph."""
    model, processor, folder = exported
    torch_predictor, onnx_predictor = predictors(model, processor, folder)
    rng = np.random.default_rng(0)
    prompts = [
        {"points": rng.uniform(0, 150, (objects, clicks, 2)), "labels": rng.integers(0, 2, (objects, clicks))}
        for objects, clicks in ((1, 1), (2, 3), (4, 6))
    ]
    stats = compare_predictors(torch_predictor, onnx_predictor, parity_image(160), prompts)
    assert_parity(stats, 1.0)


def test_auto_backend_uses_an_export_of_these_weights_only(exported, private_cache, tiny_model):
    model, processor, folder = exported
    assert UltraSamPredictor(model, processor).backend.name == "pytorch"  # nothing in the cache, none in a folder
    assert UltraSamPredictor(model, processor, model_dir=folder.parent).backend.name == "pytorch"  # not named onnx/
    shutil.copytree(folder, cache_folder(model_fingerprint(model)))  # as `ultrasam export onnx` would write it
    auto = UltraSamPredictor(model, processor)
    assert auto.backend.name == "onnxruntime"
    other = tiny_model(model.config.preset, seed=1)
    assert find_export(other) is None
    assert UltraSamPredictor(other, processor).backend.name == "pytorch"


def test_explicit_onnx_backend_exports_once_with_a_message(private_cache, capsys, tiny_model):
    model = tiny_model("tiny-lite")
    predictor = UltraSamPredictor(model, backend="onnx")
    assert "exporting it once into the cache" in capsys.readouterr().out
    assert predictor.backend.folder.parent == private_cache / "onnx"
    UltraSamPredictor(model, backend="onnx")
    assert capsys.readouterr().out == ""


def test_image_key_depends_on_backend(exported):
    model, processor, folder = exported
    torch_predictor, onnx_predictor = predictors(model, processor, folder)
    assert torch_predictor.image_key() != onnx_predictor.image_key()
    onnx_predictor.set_image(parity_image(64))
    with pytest.raises(ValueError, match="differ"):
        torch_predictor.use_image_of(onnx_predictor)


def test_bad_backend_names_and_devices_are_refused(tiny_model):
    model = tiny_model("tiny-lite")
    with pytest.raises(ValueError, match="backend must be one of"):
        UltraSamPredictor(model, backend="tensorrt")
    with pytest.raises(ValueError, match="runs on the CPU"):
        UltraSamPredictor(model, backend="onnx", device="meta")


def test_int8_graphs_are_written_and_run(private_cache, tiny_model):
    model = tiny_model("tiny-lite")
    predictor = UltraSamPredictor(model, backend="pytorch")
    folder = export_onnx(model, predictor.processor, private_cache / "int8", int8=True)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert set(manifest["graphs"]) == {"fp32", "int8"}
    assert "int8" in manifest["parity"]
    int8 = UltraSamPredictor(model, backend=OnnxBackend(model, folder, precision="int8"))
    int8.set_image(parity_image(64))
    masks, scores, _ = int8.predict(boxes=[10, 10, 40, 40], multimask_output=False)
    assert masks.shape == (1, 1, 64, 64) and np.isfinite(scores).all()
    assert int8.backend.name == "onnxruntime-int8"


def test_missing_export_folder_is_a_clear_error(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="no ONNX export"):
        OnnxBackend(tiny_model("tiny-lite"), tmp_path)


def _as_revision_1(folder):
    # how exports made before `GRAPH_REVISION` 2 read: the same manifest without the key
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["graph_revision"]
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_a_nano_export_of_an_older_graph_revision_is_used_by_auto_and_rewritten_by_onnx(private_cache, capsys):
    """A revision-1 nano export computes the same masks, only slower: `auto` uses it and says how to rewrite it;
    an explicit `onnx` backend rewrites it once, after which nothing is said."""
    import torch
    from nano_models import small_nano_config

    from ultrasam_hf import UltraSamModel

    torch.manual_seed(0)
    model = UltraSamModel(small_nano_config()).eval()
    processor = UltraSamPredictor(model, backend="pytorch").processor
    folder = export_onnx(model, processor)
    assert json.loads((folder / MANIFEST).read_text())["graph_revision"] == GRAPH_REVISION == 2
    assert stale_export_reason(model, json.loads((folder / MANIFEST).read_text())) is None
    _as_revision_1(folder)
    assert "zero-padded window" in stale_export_reason(model, json.loads((folder / MANIFEST).read_text()))
    assert find_export(model) == (folder, json.loads((folder / MANIFEST).read_text()))  # found all the same
    capsys.readouterr()
    auto = UltraSamPredictor(model, processor)
    assert auto.backend.name == "onnxruntime" and auto.backend.folder == folder
    assert "is slower than a new one" in capsys.readouterr().out
    explicit = UltraSamPredictor(model, processor, backend="onnx")
    assert "is stale" in capsys.readouterr().out
    assert json.loads((explicit.backend.folder / MANIFEST).read_text())["graph_revision"] == 2
    UltraSamPredictor(model, processor)
    assert capsys.readouterr().out == ""


def test_other_encoders_exports_of_graph_revision_1_are_current(exported):
    model, _, folder = exported
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.pop("graph_revision")
    assert stale_export_reason(model, manifest) is None
