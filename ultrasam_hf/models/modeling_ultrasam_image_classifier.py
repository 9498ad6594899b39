"""The image-level baseline of the prompted-classification experiments (`downstream/classification.py`): a linear
layer on the mean-pooled UltraSam encoder features, no prompt."""

from torch import nn


class UltraSamImageClassifier(nn.Module):
    """Image-level baseline: linear layer on the mean-pooled encoder features before the neck."""

    def __init__(self, vision_encoder: nn.Module, hidden_size: int, num_labels: int):
        super().__init__()
        self.vision_encoder = vision_encoder
        self.classifier = nn.Linear(hidden_size, num_labels)

    def pooled_features(self, pixel_values):
        captured = {}
        hook = self.vision_encoder.neck.register_forward_pre_hook(
            lambda module, args: captured.__setitem__("x", args[0])
        )
        try:
            self.vision_encoder(pixel_values)
        finally:
            hook.remove()
        return captured["x"].mean(dim=(1, 2))  # channels-last (B, H, W, C)

    def forward(self, pixel_values):
        return self.classifier(self.pooled_features(pixel_values))


__all__ = ["UltraSamImageClassifier"]
