"""A small SAM geometry shared by the converter tests and their conftest."""

from ultrasam_hf import UltraSamConfig

SMALL = dict(width=64, depth=2, heads=2, global_attn=(1,), image_size=128, patch=16, window=4)


def small_config(num_mask_refinements=0) -> UltraSamConfig:
    """UltraSam config with the geometry of `build_meta_sam(**SMALL)`."""
    return UltraSamConfig(
        vision_config=dict(
            hidden_size=SMALL["width"],
            num_hidden_layers=SMALL["depth"],
            num_attention_heads=SMALL["heads"],
            global_attn_indexes=list(SMALL["global_attn"]),
            image_size=SMALL["image_size"],
            patch_size=SMALL["patch"],
            window_size=SMALL["window"],
        ),
        prompt_encoder_config=dict(image_size=SMALL["image_size"], patch_size=SMALL["patch"]),
        num_mask_refinements=num_mask_refinements,
    )
