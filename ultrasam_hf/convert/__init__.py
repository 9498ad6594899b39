"""Checkpoint converters: SAM / MedSAM (`segment_anything` layout), LiteMedSAM and the official UltraSam release
(mmdet layout) to `UltraSamModel` folders, each verified numerically against the original code in `tests/convert`."""

from ..models.errors import CheckpointError, UltraSamError, UsageError
from .checkpoint_io import load_state_dict, load_strictly, read_checkpoint, unwrap_state_dict
from .litemedsam import convert_litemedsam, convert_litemedsam_state_dict, litemedsam_to_hf_state_dict
from .mmdet_layout import mmdet_to_sam_state_dict, sam_to_mmdet_state_dict
from .sam import convert_sam, convert_sam_state_dict, infer_sam_config, sam_to_hf_state_dict
from .ultrasam import ULTRASAM_URL, convert_ultrasam, convert_ultrasam_state_dict

SOURCES = ("sam", "medsam", "litemedsam", "ultrasam")


def convert(source: str, checkpoint, out_dir, **kwargs):
    """Convert `checkpoint` of layout `source` (one of `SOURCES`) into `out_dir`; returns the loaded model.

    A checkpoint that cannot be read or does not have the `source` layout raises a [`CheckpointError`] naming it
    (nothing is written then); writing `out_dir` may raise `OSError`."""
    converters = {
        "sam": convert_sam,
        "medsam": convert_sam,
        "litemedsam": convert_litemedsam,
        "ultrasam": convert_ultrasam,
    }
    if source not in converters:
        raise UsageError(f"Unknown source {source!r}: choose one of {SOURCES}")
    if source in ("sam", "medsam"):
        kwargs["source"] = source
    try:
        return converters[source](checkpoint, out_dir, **kwargs)
    except CheckpointError as error:
        if str(checkpoint) in str(error):
            raise
        raise type(error)(f"{checkpoint}: {error}") from error  # the layout checks do not know the file name
    except (UltraSamError, OSError):
        raise
    except Exception as error:  # a readable file of another layout: shapes or keys the converter cannot map
        reason = " ".join(str(error).split())[:300]
        raise CheckpointError(
            f"{checkpoint} cannot be converted as --from {source} ({type(error).__name__}: {reason}): is it a "
            f"{source} checkpoint?"
        ) from error


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
