"""Downstream tasks on the UltraSam encoder: prompted classification and instance segmentation (Mask2Former on
`ultrasam_hf.models.modeling_ultrasam_backbone.UltraSamBackbone`, registered with `AutoBackbone` by `ultrasam_hf`)."""
