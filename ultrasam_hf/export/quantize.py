"""int8 graphs: ONNX Runtime's dynamic quantisation (int8 weights, activations quantised per call from their
range), which needs no calibration data."""

import logging
from pathlib import Path


class _DropPreprocessingAdvice(logging.Filter):
    """onnxruntime logs advice to run its shape-inference pre-pass on every call; these graphs need none."""

    def filter(self, record):
        return "pre-processing before quantization" not in record.getMessage()


GRAPH_PAIRS = (("encoder.onnx", "encoder_int8.onnx"), ("decoder.onnx", "decoder_int8.onnx"))


def quantize_graphs(folder, op_types=("MatMul", "Gemm")) -> None:
    """Write `encoder_int8.onnx` and `decoder_int8.onnx` beside the float32 graphs of an export `folder`.
    Only `op_types` are quantised: the matrix products, where the weights and the time are; the convolutions of the
    TinyViT stem and the decoder's upscaling stay float32 (ConvInteger has no fast CPU kernel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    advice = _DropPreprocessingAdvice()
    logging.getLogger().addFilter(advice)
    try:
        for source, target in GRAPH_PAIRS:
            quantize_dynamic(
                folder / source,
                folder / target,
                op_types_to_quantize=list(op_types),
                weight_type=QuantType.QInt8,
                per_channel=True,
            )
    finally:
        logging.getLogger().removeFilter(advice)


__all__ = ["quantize_graphs"]
