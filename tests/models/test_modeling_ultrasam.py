import json
import os
import subprocess
import sys

import pytest
import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskGeneration, SamConfig, SamModel

from ultrasam_hf import UltraSamConfig, UltraSamForPromptedClassification, UltraSamModel
from ultrasam_hf.models.modeling_ultrasam import boxes_from_mask_logits


def make_model(preset="tiny", **overrides):
    torch.manual_seed(0)
    return UltraSamModel(UltraSamConfig.from_preset(preset, **overrides)).eval()


def pixels(model, batch=1):
    size = model.config.vision_config.image_size
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1))


PROMPTS = {
    "box": {"input_boxes": torch.tensor([[[6.0, 10.0, 40.0, 50.0]]])},
    "points": {
        "input_points": torch.tensor([[[[20.0, 30.0], [5.0, 5.0]], [[40.0, 12.0], [50.0, 50.0]]]]),
        "input_labels": torch.tensor([[[1, 0], [1, 1]]]),
    },
}


@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
@pytest.mark.parametrize("prompt", sorted(PROMPTS))
@pytest.mark.parametrize("multimask", [True, False])
def test_matches_sam_model_without_refinement(preset, prompt, multimask):
    """Refinement off, same weights: identical to transformers' SamModel (the ViT case is a strict SamModel)."""
    model = make_model(preset, num_mask_refinements=0)
    sam_config = SamConfig(**{k: v for k, v in model.config.to_dict().items() if k.endswith("_config")})
    if preset == "tiny":
        sam = SamModel(sam_config).eval()
        sam.load_state_dict(model.state_dict())
        with torch.no_grad():
            expected = sam(pixel_values=pixels(model), multimask_output=multimask, **PROMPTS[prompt])
    else:  # TinyViT: compare against SamModel's decoder on the same embeddings
        sam = SamModel(sam_config).eval()
        missing = sam.load_state_dict(
            {k: v for k, v in model.state_dict().items() if not k.startswith("vision_encoder")}, strict=False
        )
        assert all(k.startswith("vision_encoder") for k in missing.missing_keys)
        with torch.no_grad():
            embeddings = model.get_image_embeddings(pixels(model))
            expected = sam(image_embeddings=embeddings, multimask_output=multimask, **PROMPTS[prompt])
    with torch.no_grad():
        actual = model(pixel_values=pixels(model), multimask_output=multimask, **PROMPTS[prompt])
    assert (actual.pred_masks - expected.pred_masks).abs().max() <= 1e-5
    assert (actual.iou_scores - expected.iou_scores).abs().max() <= 1e-5


@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
def test_image_embeddings_reuse(preset):
    model = make_model(preset)
    with torch.no_grad():
        direct = model(pixel_values=pixels(model), **PROMPTS["box"])
        embeddings = model.get_image_embeddings(pixels(model))
        reused = model(image_embeddings=embeddings, **PROMPTS["box"])
    torch.testing.assert_close(direct.pred_masks, reused.pred_masks)
    torch.testing.assert_close(direct.iou_scores, reused.iou_scores)


def test_refinement_pass_outputs():
    model = make_model("tiny")
    assert model.config.num_mask_refinements == 1
    with torch.no_grad():
        single = model(pixel_values=pixels(model), multimask_output=False, **PROMPTS["points"])
        multi = model(pixel_values=pixels(model), multimask_output=True, **PROMPTS["points"])
    assert single.first_pass_pred_masks.shape == (1, 2, 1, 32, 32)
    assert single.pred_masks.shape == (1, 2, 1, 32, 32)
    assert multi.pred_masks.shape == (1, 2, 3, 32, 32)
    # multimask=False keeps the multimask output with the highest predicted IoU
    best = multi.iou_scores.argmax(-1)
    torch.testing.assert_close(single.iou_scores.squeeze(-1), multi.iou_scores.gather(-1, best[..., None]).squeeze(-1))


def test_refinement_replaces_points_by_first_mask_box_at_inference(monkeypatch):
    model = make_model("tiny")
    calls = []
    original = model._decode

    def spy(embeddings, positional, points, labels, boxes, masks, multimask, *rest):
        calls.append((points, boxes, masks))
        return original(embeddings, positional, points, labels, boxes, masks, multimask, *rest)

    monkeypatch.setattr(model, "_decode", spy)
    # force a non-empty first mask so that a box exists
    monkeypatch.setattr(
        model.mask_decoder.iou_prediction_head.proj_out, "bias", model.mask_decoder.iou_prediction_head.proj_out.bias
    )
    with torch.no_grad():
        model(pixel_values=pixels(model), **PROMPTS["points"])
    (points1, boxes1, masks1), (points2, boxes2, masks2) = calls
    assert points1 is not None and boxes1 is None and masks1 is None
    assert masks2.shape == (1, 2, 32, 32)  # first-pass logits as per-prompt mask prompt
    first_non_empty = bool((masks2 > 0).flatten(2).any(-1).all())
    if first_non_empty:
        assert points2 is None and boxes2.shape == (1, 2, 4)
    else:
        assert points2 is points1
    # in training mode the original prompts are kept (the paper's recipe)
    calls.clear()
    model.train()
    model(pixel_values=pixels(model), **PROMPTS["points"])
    assert calls[1][0] is calls[0][0]


def test_boxes_from_mask_logits():
    logits = -torch.ones(1, 2, 8, 8)
    logits[0, 0, 2:5, 1:7] = 1
    boxes, non_empty = boxes_from_mask_logits(logits, input_size=32)
    assert non_empty.tolist() == [[True, False]]
    assert boxes[0, 0].tolist() == [4.0, 8.0, 27.0, 19.0]


def test_per_prompt_mask_input():
    model = make_model("tiny", num_mask_refinements=0)
    masks = torch.randn(1, 2, 32, 32)
    with torch.no_grad():
        joint = model(pixel_values=pixels(model), input_masks=masks, **PROMPTS["points"])
        for index in range(2):
            alone = model(
                pixel_values=pixels(model),
                input_points=PROMPTS["points"]["input_points"][:, index : index + 1],
                input_labels=PROMPTS["points"]["input_labels"][:, index : index + 1],
                input_masks=masks[:, index : index + 1],
            )
            torch.testing.assert_close(joint.pred_masks[:, index], alone.pred_masks[:, 0], atol=1e-5, rtol=1e-5)


def test_training_backward_through_refinement():
    model = make_model("tiny").train()
    out = model(pixel_values=pixels(model, batch=2), input_boxes=torch.tensor([[[4.0, 4.0, 30.0, 30.0]]] * 2))
    (out.pred_masks.mean() + out.first_pass_pred_masks.mean()).backward()
    assert model.prompt_encoder.mask_embed.conv1.weight.grad is not None  # refinement used the mask prompt


@pytest.mark.parametrize("refinements", [0, 1])
def test_outputs_as_tuple_and_image_embeddings(refinements):
    """`return_dict=False` gives the same values in field order; the image embeddings are always returned."""
    model = make_model("tiny", num_mask_refinements=refinements)
    with torch.no_grad():
        as_dict = model(pixel_values=pixels(model), **PROMPTS["points"])
        as_tuple = model(pixel_values=pixels(model), return_dict=False, **PROMPTS["points"])
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_dict)
    for value, expected in zip(as_tuple, as_dict.values()):
        torch.testing.assert_close(value, expected)
    assert as_dict.image_embeddings.shape == (1, 32, 8, 8)
    assert ("first_pass_pred_masks" in as_dict) == bool(refinements)


def test_decoder_attentions_of_every_pass():
    model = make_model("tiny")  # one refinement pass
    with torch.no_grad():
        out = model(pixel_values=pixels(model), output_attentions=True, **PROMPTS["box"])
    assert len(out.mask_decoder_attentions) == 2 * model.config.mask_decoder_config.num_hidden_layers


@pytest.mark.parametrize("refinements", [0, 1])
def test_bad_prompts_are_named(refinements):
    model = make_model("tiny", num_mask_refinements=refinements)
    with pytest.raises(ValueError, match="input_points must be a 4D tensor"):
        model(pixel_values=pixels(model), input_points=torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="as many boxes as point prompts"):
        model(pixel_values=pixels(model), input_boxes=torch.zeros(1, 3, 4), **PROMPTS["points"])
    with pytest.raises(ValueError, match="exactly one of pixel_values and image_embeddings"):
        model(**PROMPTS["box"])
    with pytest.raises(ValueError, match="input_boxes has batch size 1, the images 2"):
        model(pixel_values=pixels(model, batch=2), **PROMPTS["box"])


@pytest.mark.parametrize("loss_type", ["cross_entropy", "focal"])
def test_prompted_classification(loss_type):
    torch.manual_seed(0)
    config = UltraSamConfig.from_preset("tiny", num_labels=3, classification_loss=loss_type)
    model = UltraSamForPromptedClassification(config)
    labels = torch.tensor([[0, 2]])
    out = model(pixel_values=pixels(model), labels=labels, **PROMPTS["points"])
    assert list(out.keys())[:2] == ["loss", "logits"]  # transformers' order for task outputs
    assert out.logits.shape == (1, 2, 3)
    assert out.pred_masks.shape[:2] == (1, 2)
    out.loss.backward()
    assert model.classifier[0].weight.grad is not None
    assert model.vision_encoder.layers[0].mlp.lin1.weight.grad is not None  # pooled encoder features feed the head


def test_prompted_classification_on_cached_embeddings():
    config = UltraSamConfig.from_preset("tiny-lite", num_labels=2)
    model = UltraSamForPromptedClassification(config).eval()
    features = {}
    model.vision_encoder.neck.register_forward_pre_hook(lambda module, args: features.__setitem__("x", args[0]))
    with torch.no_grad():
        direct = model(pixel_values=pixels(model), labels=torch.tensor([[1]]), **PROMPTS["box"])
        embeddings = model.get_image_embeddings(pixels(model))
        with pytest.raises(ValueError, match="encoder_features"):
            model(image_embeddings=embeddings, **PROMPTS["box"])
        cached = model(
            image_embeddings=embeddings,
            encoder_features=features["x"].mean(dim=(1, 2)),
            labels=torch.tensor([[1]]),
            return_dict=False,
            **PROMPTS["box"],
        )
    assert isinstance(cached, tuple)
    torch.testing.assert_close(cached[0], direct.loss)  # loss first, as transformers' task outputs
    torch.testing.assert_close(cached[1], direct.logits)


def test_presets_and_bad_preset():
    lite = UltraSamConfig.from_preset("lite")
    assert lite.vision_config.encoder_type == "tiny_vit" and lite.preprocessing == "litemedsam"
    assert lite.prompt_encoder_config.image_embedding_size == 64
    vit_b = UltraSamConfig.from_preset("vit-b")
    assert vit_b.vision_config.hidden_size == 768 and vit_b.num_mask_refinements == 1
    with pytest.raises(ValueError, match="Unknown UltraSam preset 'vit-h'"):
        UltraSamConfig.from_preset("vit-h")
    with pytest.raises(ValueError, match="encoder_type"):
        UltraSamConfig(vision_config={"encoder_type": "resnet"})


def test_save_load_auto_classes(tmp_path):
    model = make_model("tiny-lite")
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert isinstance(AutoConfig.from_pretrained(tmp_path), UltraSamConfig)
    for auto in (AutoModel, AutoModelForMaskGeneration):
        loaded = auto.from_pretrained(tmp_path).eval()
        assert isinstance(loaded, UltraSamModel)
        with torch.no_grad():
            torch.testing.assert_close(
                loaded(pixel_values=pixels(model), **PROMPTS["box"]).pred_masks,
                model(pixel_values=pixels(model), **PROMPTS["box"]).pred_masks,
            )


LOAD_AND_RUN = """
import sys
if sys.argv[4] == "remote":
    sys.modules["ultrasam_hf"] = None  # the package must not be importable here
import torch
torch.set_num_threads(1)  # both runs use the same kernels, so outputs can be compared bit for bit
import transformers
if sys.argv[4] != "remote":
    import ultrasam_hf  # noqa: F401  (registers the Auto classes)
auto_class = getattr(transformers, sys.argv[5])
model = auto_class.from_pretrained(sys.argv[1], trust_remote_code=sys.argv[4] == "remote").eval()
is_remote = "transformers_modules" in type(model).__module__
assert is_remote == (sys.argv[4] == "remote"), type(model).__module__
inputs = torch.load(sys.argv[2])
with torch.no_grad():
    out = model(**inputs)
torch.save({"pred_masks": out.pred_masks, "iou_scores": out.iou_scores}, sys.argv[3])
"""


@pytest.mark.parametrize("preset, auto_class", [("tiny", "AutoModel"), ("tiny-lite", "AutoModelForMaskGeneration")])
def test_remote_code_loads_without_package(tmp_path, preset, auto_class):
    """A saved folder loads with trust_remote_code, through AutoModel and AutoModelForMaskGeneration, in a process
    that cannot import ultrasam_hf, and gives the same outputs as the package's own class in an identical fresh
    process."""
    model = make_model(preset)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    auto_map = json.loads((folder / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_ultrasam.UltraSamConfig",
        "AutoModel": "modeling_ultrasam.UltraSamModel",
        "AutoModelForMaskGeneration": "modeling_ultrasam.UltraSamModel",
    }
    inputs = {"pixel_values": pixels(model), **PROMPTS["points"]}
    torch.save(inputs, tmp_path / "inputs.pt")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    outputs = {}
    for mode in ("remote", "package"):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                LOAD_AND_RUN,
                str(folder),
                str(tmp_path / "inputs.pt"),
                str(tmp_path / f"{mode}.pt"),
                mode,
                auto_class,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[mode] = torch.load(tmp_path / f"{mode}.pt")
    assert torch.equal(outputs["remote"]["pred_masks"], outputs["package"]["pred_masks"])
    assert torch.equal(outputs["remote"]["iou_scores"], outputs["package"]["iou_scores"])
    with torch.no_grad():
        local = model(**inputs)
    torch.testing.assert_close(outputs["remote"]["pred_masks"], local.pred_masks, rtol=0, atol=1e-6)
