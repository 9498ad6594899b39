"""Training UltraSam: prompt sampling, losses, the embedding cache, variants and the Accelerate training loop.

Entry point: `scripts/pretrain.py` (`accelerate launch scripts/pretrain.py --preset lite --data shards/ ...`), which
only parses arguments (`config.parse_args`) and calls `trainer.train`. See `docs/training_usage.md`.
"""

from .config import TrainingConfig, parse_args
from .losses import LossWeights, best_mask_loss, dice_loss, mask_iou, sigmoid_focal_loss
from .prompt_sampling import sample_correction_clicks, sample_prompts

__all__ = [
    "LossWeights",
    "TrainingConfig",
    "best_mask_loss",
    "dice_loss",
    "mask_iou",
    "parse_args",
    "sample_correction_clicks",
    "sample_prompts",
    "sigmoid_focal_loss",
]
