"""A shallower mask decoder: the first `layers` two-way blocks of a trained decoder, everything else kept.

Every prompt runs the decoder's two-way blocks over all 64x64 image tokens: on a CPU they are about two thirds of
what a prompt costs once the image is embedded (`docs/decoder_benchmark.md`, last section). The cut model is a
starting point, not a finished one: it answers badly until the decoder is trained again, e.g. on cached embeddings
and held to the deeper model's answers (`pretrain.py --variant frozen-encoder --distill-outputs`, as in
that section's run).
"""

from __future__ import annotations

import copy

from ..models.modeling_ultrasam import UltraSamModel

_LAYERS_PREFIX = "mask_decoder.transformer.layers."


def with_decoder_layers(model: UltraSamModel, layers: int) -> UltraSamModel:
    """A new model whose mask decoder keeps the first `layers` of `model`'s two-way blocks (the first of them is the
    one without positional encodings in its self-attention); every other weight is copied, the mode (train / eval)
    too."""
    depth = model.config.mask_decoder_config.num_hidden_layers
    if not isinstance(layers, int) or not 1 <= layers <= depth:
        raise ValueError(f"layers must be an integer from 1 to the decoder's {depth}, got {layers!r}")
    config = copy.deepcopy(model.config)
    config.mask_decoder_config.num_hidden_layers = layers
    shallow = UltraSamModel(config)
    kept = {
        name: tensor
        for name, tensor in model.state_dict().items()
        if not name.startswith(_LAYERS_PREFIX) or int(name[len(_LAYERS_PREFIX) :].split(".")[0]) < layers
    }
    shallow.load_state_dict(kept, strict=True)
    return shallow.to(model.dtype).train(model.training)


__all__ = ["with_decoder_layers"]
