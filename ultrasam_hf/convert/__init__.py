"""Checkpoint converters: SAM / MedSAM (`segment_anything` layout), LiteMedSAM and the official UltraSam release
(mmdet layout) to `UltraSamModel` folders, each verified numerically against the original code in `tests/convert`."""

from .checkpoint_io import load_state_dict, load_strictly, read_checkpoint, unwrap_state_dict
from .litemedsam import convert_litemedsam, convert_litemedsam_state_dict, litemedsam_to_hf_state_dict
from .mmdet_layout import mmdet_to_sam_state_dict, sam_to_mmdet_state_dict
from .sam import convert_sam, convert_sam_state_dict, infer_sam_config, sam_to_hf_state_dict
from .ultrasam import ULTRASAM_URL, convert_ultrasam, convert_ultrasam_state_dict

SOURCES = ("sam", "medsam", "litemedsam", "ultrasam")


def convert(source: str, checkpoint, out_dir, **kwargs):
    """Convert `checkpoint` of layout `source` (one of `SOURCES`) into `out_dir`; returns the loaded model."""
    if source in ("sam", "medsam"):
        return convert_sam(checkpoint, out_dir, source=source, **kwargs)
    if source == "litemedsam":
        return convert_litemedsam(checkpoint, out_dir, **kwargs)
    if source == "ultrasam":
        return convert_ultrasam(checkpoint, out_dir, **kwargs)
    raise ValueError(f"Unknown source {source!r}: choose one of {SOURCES}")


__all__ = [
    "SOURCES",
    "ULTRASAM_URL",
    "convert",
    "convert_litemedsam",
    "convert_litemedsam_state_dict",
    "convert_sam",
    "convert_sam_state_dict",
    "convert_ultrasam",
    "convert_ultrasam_state_dict",
    "infer_sam_config",
    "litemedsam_to_hf_state_dict",
    "load_state_dict",
    "load_strictly",
    "mmdet_to_sam_state_dict",
    "read_checkpoint",
    "sam_to_hf_state_dict",
    "sam_to_mmdet_state_dict",
    "unwrap_state_dict",
]
