"""Inference: `UltraSamPredictor` (embed once, prompt many times), overlays, the default model and the `ultrasam
segment` / `ultrasam demo` commands."""

from .default_model import default_model_dir
from .model_loading import load_processor
from .overlay import draw_overlay
from .predictor import UltraSamPredictor, choose_mask

__all__ = ["UltraSamPredictor", "choose_mask", "default_model_dir", "draw_overlay", "load_processor"]
