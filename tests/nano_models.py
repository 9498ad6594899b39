"""A small `nano` configuration for tests (imported by this unique module name from any test folder)."""

from ultrasam_hf import UltraSamConfig


def small_nano_config(**overrides):
    # the nano geometry at 64 px (16x16 embedding), narrow, so that the test is fast
    return UltraSamConfig.from_preset(
        "nano",
        vision_config={
            "encoder_type": "nano",
            "image_size": 64,
            "patch_size": 4,
            "hidden_size": 32,
            "output_channels": 32,
            "num_pos_feats": 16,
            "nano_embed_dims": [8, 16, 32],
            "nano_depths": [1, 1, 1],
            "nano_num_heads": 2,
        },
        prompt_encoder_config={"hidden_size": 32, "image_size": 64, "patch_size": 4, "mask_input_channels": 8},
        mask_decoder_config={"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2, "iou_head_hidden_dim": 32},
        **overrides,
    )
