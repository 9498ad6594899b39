"""Tiny UltraSam models for the training tests (imported by this unique module name, not from a conftest)."""

import torch

from ultrasam_hf import UltraSamConfig, UltraSamModel


def seeded_model(preset: str = "tiny") -> UltraSamModel:
    """`preset` with seed 0 and encoder weights N(0, 0.02): outputs far enough from zero for comparisons to mean
    something, the same model in every test."""
    torch.manual_seed(0)
    model = UltraSamModel(UltraSamConfig.from_preset(preset))
    with torch.no_grad():
        for parameter in model.vision_encoder.parameters():
            if parameter.ndim > 1:
                parameter.normal_(0.0, 0.02)
    return model
