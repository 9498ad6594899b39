"""The official UltraSam release (mmdet layout): generated from a random SAM by the release's renaming rules,
converted back, compared with Meta's code (and with the release's decoder MLP identity emulated)."""

import pytest
import torch
from reference_models import meta_sam_predict
from small_sam import small_config

from ultrasam_hf.convert.mmdet_layout import LABEL_EMBEDDING_KEY, mmdet_to_sam_state_dict, sam_to_mmdet_state_dict
from ultrasam_hf.convert.ultrasam import convert_ultrasam_state_dict, ffn_identity_from_config_text

BOXES = torch.tensor([[10.0, 20.0, 90.0, 100.0]])


def test_forward_rules_follow_the_release(meta_sam_small):
    state = meta_sam_small.state_dict()
    mmdet = sam_to_mmdet_state_dict(state)
    assert "backbone.layers.0.ffn.layers.0.0.weight" in mmdet and "backbone.layers.1.ln2.bias" in mmdet
    assert "backbone.patch_embed.projection.weight" in mmdet and "backbone.channel_reduction.3.weight" in mmdet
    assert "decoder.post_norm.weight" in mmdet and "decoder.layers.0.mlp.layers.1.weight" in mmdet
    assert "bbox_head.iou_prediction_head.layers.2.weight" in mmdet
    bias = mmdet["decoder.layers.1.cross_attn_token_to_image.attn.in_proj_bias"]
    prefix = "mask_decoder.transformer.layers.1.cross_attn_token_to_image"
    torch.testing.assert_close(bias, torch.cat([state[f"{prefix}.{p}_proj.bias"] for p in "qkv"]))
    labels = mmdet[LABEL_EMBEDDING_KEY]
    assert labels.shape == (11, 256)
    torch.testing.assert_close(labels[0], state["prompt_encoder.no_mask_embed.weight"][0])
    torch.testing.assert_close(labels[5], state["prompt_encoder.not_a_point_embed.weight"][0])
    torch.testing.assert_close(labels[6:10], state["mask_decoder.mask_tokens.weight"])
    torch.testing.assert_close(labels[10], state["mask_decoder.iou_token.weight"][0])
    back = mmdet_to_sam_state_dict(mmdet)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)


def test_converted_release_matches_sam_with_refinement(meta_sam_small, pixel_values_small):
    mmdet = sam_to_mmdet_state_dict(meta_sam_small.state_dict())
    model, mode, _ = convert_ultrasam_state_dict(mmdet, ffn_identity="none", config=small_config(1))
    assert mode == "none"
    with torch.no_grad():
        out = model(pixel_values=pixel_values_small, input_boxes=BOXES[None])
    first, first_iou = meta_sam_predict(meta_sam_small, pixel_values_small, boxes=BOXES, multimask=False)
    torch.testing.assert_close(out.first_pass_pred_masks[0], first, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.first_pass_iou_scores[0], first_iou, atol=1e-4, rtol=1e-4)
    # refinement pass: the same box, the first-pass logits as mask prompt, multimask on
    final, final_iou = meta_sam_predict(
        meta_sam_small, pixel_values_small, boxes=BOXES, mask_input=first, multimask=True
    )
    torch.testing.assert_close(out.pred_masks[0], final, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out.iou_scores[0], final_iou, atol=1e-4, rtol=1e-4)


def test_mmcv_ffn_identity_is_folded(meta_sam_small, pixel_values_small):
    """The release's decoder MLP is an mmcv FFN: with add_identity=True it returns q + mlp(q), and the layer adds
    q again. Emulate that on Meta's model and check that ffn_identity="add" reproduces it."""
    mmdet = sam_to_mmdet_state_dict(meta_sam_small.state_dict())
    model, mode, _ = convert_ultrasam_state_dict(mmdet, ffn_identity="add", config=small_config(0))
    plain, _, _ = convert_ultrasam_state_dict(mmdet, ffn_identity="none", config=small_config(0))
    mlps = [layer.mlp for layer in meta_sam_small.mask_decoder.transformer.layers]
    originals = [mlp.forward for mlp in mlps]
    try:
        for mlp, forward in zip(mlps, originals):
            mlp.forward = lambda x, forward=forward: x + forward(x)  # mmcv FFN: identity + out
        release, release_iou = meta_sam_predict(meta_sam_small, pixel_values_small, boxes=BOXES)
    finally:
        for mlp, forward in zip(mlps, originals):
            mlp.forward = forward
    with torch.no_grad():
        out = model(pixel_values=pixel_values_small, input_boxes=BOXES[None])
        out_plain = plain(pixel_values=pixel_values_small, input_boxes=BOXES[None])
    # exact up to the LayerNorm eps (1e-5 on 2q + mlp vs on q + mlp / 2)
    torch.testing.assert_close(out.pred_masks[0], release, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(out.iou_scores[0], release_iou, atol=1e-3, rtol=1e-3)
    assert (out_plain.pred_masks[0] - release).abs().max() > 0.1  # without folding the release is not reproduced


def test_ffn_identity_is_read_from_the_training_config():
    assert ffn_identity_from_config_text("ffn_cfg=dict(embed_dims=256, add_identity=False)") == "none"
    assert ffn_identity_from_config_text("ffn_cfg=dict(embed_dims=256, feedforward_channels=2048)") == "add"
    assert ffn_identity_from_config_text(None) is None


def test_no_config_falls_back_to_mmcv_default_with_a_warning(meta_sam_small):
    mmdet = sam_to_mmdet_state_dict(meta_sam_small.state_dict())
    with pytest.warns(UserWarning, match="add_identity=True"):
        _, mode, _ = convert_ultrasam_state_dict(mmdet, meta={}, config=small_config(1))
    assert mode == "add"
    _, mode, reason = convert_ultrasam_state_dict(
        mmdet, meta={"cfg": "ffn_cfg=dict(add_identity=False)"}, config=small_config(1)
    )
    assert mode == "none" and "meta['cfg']" in reason


def test_bad_label_embedding_is_named(meta_sam_small):
    mmdet = sam_to_mmdet_state_dict(meta_sam_small.state_dict())
    mmdet[LABEL_EMBEDDING_KEY] = mmdet[LABEL_EMBEDDING_KEY][:10]
    with pytest.raises(ValueError, match="10 rows, expected 11"):
        convert_ultrasam_state_dict(mmdet, ffn_identity="none", config=small_config(1))
