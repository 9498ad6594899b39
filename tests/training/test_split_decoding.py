"""Training's split decoder against SAM's decoder: the same outputs and the same gradients, alone and in a whole
training step."""

import pytest
import torch
from tiny_models import seeded_model
from torch import nn

from ultrasam_hf.models.transforms import low_res_size
from ultrasam_hf.training.data import ExampleBuilder, collate, load_split
from ultrasam_hf.training.module import UltraSamTrainingModule
from ultrasam_hf.training.split_decoding import SplitDecoding, supports_split_decoding
from ultrasam_hf.training.trainer import make_image_processor

IMAGE_INDEX = [0, 1, 1, 0, 1]


def _prompts(model, case, rows):
    size = model.config.prompt_encoder_config.image_size
    generator = torch.Generator().manual_seed(3)
    corners = torch.rand(rows, 2, 2, generator=generator).sort(dim=1).values * size
    clicks = torch.rand(rows, 1, 2, 2, generator=generator) * size
    labels = torch.tensor([[[1, 0]]]).expand(rows, 1, 2)
    mask_size = 4 * model.config.prompt_encoder_config.image_embedding_size
    masks = torch.randn(rows, 1, mask_size, mask_size, generator=generator)
    return {
        "box": {"input_boxes": corners.reshape(rows, 1, 4)},
        "clicks": {"input_points": clicks, "input_labels": labels},
        "box, clicks and a mask prompt": {
            "input_boxes": corners.reshape(rows, 1, 4),
            "input_points": clicks,
            "input_labels": labels,
            "input_masks": masks,
        },
    }[case]


@pytest.mark.parametrize("multimask", [True, False])
@pytest.mark.parametrize("case", ["box", "clicks", "box, clicks and a mask prompt"])
@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
def test_split_decoding_has_the_models_outputs_and_gradients(preset, case, multimask):
    model = seeded_model(preset).train()
    channels = model.config.mask_decoder_config.hidden_size
    side = model.config.prompt_encoder_config.image_embedding_size
    index = torch.tensor(IMAGE_INDEX)
    prompts = _prompts(model, case, len(index))
    weights = None
    results = []
    for split in (False, True):
        model.zero_grad()
        embeddings = torch.randn(2, channels, side, side, generator=torch.Generator().manual_seed(1))
        embeddings.requires_grad_(True)
        if split:
            out = SplitDecoding(model)(embeddings, index, multimask_output=multimask, **prompts)
        else:
            out = model(image_embeddings=embeddings[index], multimask_output=multimask, **prompts)
        if weights is None:
            weights = torch.randn(out.pred_masks.shape, generator=torch.Generator().manual_seed(2))
        loss = (out.pred_masks * weights).sum() + 10 * out.iou_scores.sum()
        if out.first_pass_pred_masks is not None:
            loss = loss + out.first_pass_pred_masks.mean() + out.first_pass_iou_scores.sum()
        loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        results.append((out, grads, embeddings.grad.clone()))
    (reference, reference_grads, reference_embedding_grad), (out, grads, embedding_grad) = results
    assert (out.first_pass_pred_masks is None) == (reference.first_pass_pred_masks is None)
    assert out.pred_masks.shape == reference.pred_masks.shape
    scale = float(reference.pred_masks.detach().abs().max())
    torch.testing.assert_close(out.pred_masks, reference.pred_masks, atol=2e-5 * scale, rtol=0)
    torch.testing.assert_close(out.iou_scores, reference.iou_scores, atol=2e-5, rtol=0)
    # every parameter SAM's decoder trains gets the same gradient (the no-mask embedding, the upscaling convolutions)
    _same_gradients_but_the_cancelled_biases(grads, reference_grads)
    assert "input_masks" in prompts or "prompt_encoder.no_mask_embed.weight" in grads
    assert "mask_decoder.upscale_conv1.weight" in grads
    tolerance = 1e-4 * float(reference_embedding_grad.abs().max())
    torch.testing.assert_close(embedding_grad, reference_embedding_grad, atol=tolerance, rtol=0)


def _same_gradients_but_the_cancelled_biases(grads, reference_grads):
    """The same gradients, except that the key biases the softmax cancels get none instead of rounding noise, and
    the hypernetworks of masks a pass does not output none instead of zeros."""
    cancelled = reference_grads.keys() - grads.keys()
    assert grads.keys() <= reference_grads.keys()
    biases = {name for name in cancelled if name.endswith("token_to_image.k_proj.bias")}
    assert biases and all("output_hypernetworks_mlps" in name for name in cancelled - biases)
    largest = max(float(grad.abs().max()) for grad in reference_grads.values())
    assert all(float(reference_grads[name].abs().max()) < 1e-6 * largest for name in cancelled)
    for name, grad in grads.items():
        tolerance = 1e-4 * max(float(reference_grads[name].abs().max()), 1e-3)
        torch.testing.assert_close(grad, reference_grads[name], atol=tolerance, rtol=0, msg=name)


def _batch(model, shards):
    rows = load_split(shards, "train")
    builder = ExampleBuilder(
        make_image_processor(model.config), model.config.prompt_encoder_config.image_size, low_res_size(model.config)
    )
    return collate([{**builder(rows[i], 0, i), "position": i} for i in range(3)])


@pytest.mark.parametrize("preset", ["tiny", "tiny-lite"])
def test_a_training_step_is_the_same_with_either_decoder(tiny_shards, preset):
    batch = _batch(seeded_model(preset), tiny_shards)
    teacher = seeded_model(preset).eval().requires_grad_(False)
    with torch.no_grad():
        teacher_embeddings = teacher.vision_encoder(batch["pixel_values"]).last_hidden_state * 1.1
    results = []
    for split in (False, True):
        model = seeded_model(preset)
        module = UltraSamTrainingModule(
            model,
            clicks=1,
            single_mask_clicks=True,
            point_probability=0.5,
            seed=5,
            teacher_model=teacher,
            output_distill_weight=2.0,
            split_decoder=split,
        )
        output = module({**batch, "teacher_embeddings": teacher_embeddings})
        output["loss"].backward()
        results.append((output, {name: p.grad for name, p in model.named_parameters() if p.grad is not None}))
    (reference, reference_grads), (output, grads) = results
    assert output["prompts"] == reference["prompts"] > 0
    torch.testing.assert_close(output["loss"], reference["loss"], atol=1e-5, rtol=1e-5)
    for name in ("dice", "focal", "iou_mse", "distill_outputs"):
        torch.testing.assert_close(output["logs"][name], reference["logs"][name], atol=1e-5, rtol=1e-4)
    _same_gradients_but_the_cancelled_biases(grads, reference_grads)


class _ScaledLinear(nn.Linear):
    def forward(self, x):
        return 2 * super().forward(x)


def test_adapted_decoder_layers_keep_sams_decoder():
    model = seeded_model("tiny-lite")
    assert supports_split_decoding(model)
    attention = model.mask_decoder.transformer.layers[0].cross_attn_token_to_image
    plain = attention.k_proj
    attention.k_proj = _ScaledLinear(plain.in_features, plain.out_features)
    assert not supports_split_decoding(model)
    module = UltraSamTrainingModule(model)
    assert module._split_decoding(model) is None
    attention.k_proj = plain
    assert isinstance(UltraSamTrainingModule(model)._split_decoding(model), SplitDecoding)
    assert UltraSamTrainingModule(model, split_decoder=False)._split_decoding(model) is None
