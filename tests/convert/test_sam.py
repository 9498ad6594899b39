"""SAM / MedSAM (`segment_anything` layout): converted model vs Meta's code with random weights."""

import pytest
import torch
from reference_models import build_meta_sam, meta_sam_predict
from small_sam import SMALL, small_config

from ultrasam_hf.convert.sam import convert_sam_state_dict, infer_sam_config, sam_to_hf_state_dict

BOXES = torch.tensor([[10.0, 20.0, 90.0, 100.0], [5.0, 5.0, 60.0, 40.0]])
POINTS = torch.tensor([[[30.0, 40.0], [70.0, 80.0]]])
LABELS = torch.tensor([[1, 0]])


def _compare(sam, model, pixel_values, scale=1.0, atol=1e-4):
    boxes, points = BOXES * scale, POINTS * scale
    masks, iou = meta_sam_predict(sam, pixel_values, boxes=boxes)
    with torch.no_grad():
        out = model(pixel_values=pixel_values, input_boxes=boxes[None])
    torch.testing.assert_close(out.pred_masks[0], masks, atol=atol, rtol=1e-4)
    torch.testing.assert_close(out.iou_scores[0], iou, atol=atol, rtol=1e-4)
    masks, iou = meta_sam_predict(sam, pixel_values, points=points, labels=LABELS)
    with torch.no_grad():
        out = model(pixel_values=pixel_values, input_points=points[None], input_labels=LABELS[None])
    torch.testing.assert_close(out.pred_masks[0], masks, atol=atol, rtol=1e-4)
    torch.testing.assert_close(out.iou_scores[0], iou, atol=atol, rtol=1e-4)
    return masks.abs().mean()


def test_small_sam_matches_meta_code(meta_sam_small, pixel_values_small):
    model = convert_sam_state_dict(meta_sam_small.state_dict(), config=small_config())
    assert model.config.num_mask_refinements == 0
    signal = _compare(meta_sam_small, model, pixel_values_small)
    assert signal > 0.1  # the comparison is not between near-zero outputs


def test_single_mask_output_matches(meta_sam_small, pixel_values_small):
    model = convert_sam_state_dict(meta_sam_small.state_dict(), config=small_config())
    masks, iou = meta_sam_predict(meta_sam_small, pixel_values_small, boxes=BOXES, multimask=False)
    with torch.no_grad():
        out = model(pixel_values=pixel_values_small, input_boxes=BOXES[None], multimask_output=False)
    torch.testing.assert_close(out.pred_masks[0], masks, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.iou_scores[0], iou, atol=1e-4, rtol=1e-4)


def test_positional_embedding_is_written_to_both_tied_keys(meta_sam_small):
    converted = sam_to_hf_state_dict(meta_sam_small.state_dict())
    first = converted["shared_image_embedding.positional_embedding"]
    assert first is converted["prompt_encoder.shared_embedding.positional_embedding"]
    assert "mask_decoder.iou_prediction_head.proj_in.weight" in converted
    assert "mask_decoder.iou_prediction_head.layers.0.weight" in converted
    assert "mask_decoder.iou_prediction_head.proj_out.weight" in converted


@pytest.mark.parametrize(
    "width, depth, name, global_attn",
    [(768, 12, "b", [2, 5, 8, 11]), (1024, 24, "l", [5, 11, 17, 23]), (1280, 32, "h", [7, 15, 23, 31])],
)
def test_vit_size_is_inferred_from_shapes(width, depth, name, global_attn):
    state = {"image_encoder.patch_embed.proj.weight": torch.empty(width, 3, 16, 16)}
    state.update({f"image_encoder.blocks.{i}.norm1.weight": torch.empty(width) for i in range(depth)})
    config = infer_sam_config(state)
    vision = config.vision_config
    assert (vision.hidden_size, vision.num_hidden_layers, list(vision.global_attn_indexes)) == (
        width,
        depth,
        global_attn,
    )
    assert config.num_mask_refinements == 0 and vision.image_size == 1024
    assert config.mask_decoder_config.layer_norm_eps == 1e-5 and vision.layer_norm_eps == 1e-6


def test_unknown_layout_and_size_are_refused():
    with pytest.raises(ValueError, match="Not a segment_anything-layout"):
        infer_sam_config({"backbone.x": torch.zeros(1)})
    state = {
        "image_encoder.patch_embed.proj.weight": torch.empty(96, 3, 16, 16),
        "image_encoder.blocks.0.x": torch.empty(1),
    }
    with pytest.raises(ValueError, match="Unknown SAM encoder: width 96, depth 1"):
        infer_sam_config(state)


@pytest.mark.slow
def test_vit_b_sam_matches_meta_code():
    """Full ViT-B geometry at 1024 px (sam_vit_b layout), random weights."""
    sam = build_meta_sam(
        width=768, depth=12, heads=12, global_attn=(2, 5, 8, 11), image_size=1024, patch=16, window=14
    )
    state = sam.state_dict()
    config = infer_sam_config(state)
    assert config.vision_config.hidden_size == 768
    model = convert_sam_state_dict(state, config=config)
    pixel_values = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(2))
    _compare(sam, model, pixel_values, scale=1024 / SMALL["image_size"], atol=5e-4)
