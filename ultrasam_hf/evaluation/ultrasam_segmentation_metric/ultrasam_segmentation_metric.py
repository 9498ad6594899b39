"""`evaluate` metric: mean Dice, IoU, normalised surface Dice and HD95 over (H, W) binary masks.

Load it from its local folder (no Hub access): `ultrasam_hf.evaluation.load_metric()`, or
`evaluate.load("<path>/ultrasam_segmentation_metric")`. Per-instance maths and conventions (empty masks,
spacing, HD95 definition) live in `ultrasam_hf.evaluation.metrics`; this module only averages them.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np

# metrics.py here links to ultrasam_hf/evaluation/metrics.py (numpy + scipy only): evaluate copies it with this
# script, so the module runs without ultrasam_hf (no trailing comment here: evaluate reads one as a download URL)
from .metrics import segmentation_metrics

_DESCRIPTION = """
Per-instance binary segmentation metrics, averaged over instances: Dice, IoU, normalised surface Dice
(NSD) at a tolerance, and the 95th-percentile Hausdorff distance (HD95). Masks may differ in size from
one instance to the next; each prediction must have the shape of its reference. Both masks empty gives
Dice = IoU = NSD = 1 and HD95 = 0; exactly one empty gives 0, 0, 0 and HD95 = the image diagonal.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of (H, W) binary masks (0/1 values; nested lists or numpy arrays).
    references: list of (H, W) binary masks, same shapes as the predictions.
    tolerance (float, default 2.0): NSD tolerance, in pixels, or in spacing units when spacing is given.
    spacing (tuple of 2 floats, optional): pixel size (sy, sx), e.g. in mm, shared by all instances.
Returns:
    mean_dice, mean_iou, mean_nsd, mean_hd95 (floats) and count (number of instances).
Examples:
    >>> metric = evaluate.load("ultrasam/ultrasam_segmentation_metric")  # or this folder
    >>> metric.compute(predictions=[[[0, 1], [1, 1]]], references=[[[0, 1], [1, 1]]])["mean_dice"]
    1.0
"""

_CITATION = """
@article{meyer2026ultrasam,
  title={UltraSam: a foundation model for ultrasound using large open-access segmentation datasets},
  author={Meyer, Adrien and Murali, Aditya and Zarin, Farahdiba and Mutter, Didier and Padoy, Nicolas},
  journal={International Journal of Computer Assisted Radiology and Surgery},
  year={2026},
  doi={10.1007/s11548-025-03517-8}
}
"""


class UltrasamSegmentationMetric(evaluate.Metric):
    """Mean of `ultrasam_hf.evaluation.metrics.segmentation_metrics` over variable-size mask pairs."""

    def _info(self) -> evaluate.MetricInfo:
        mask = datasets.Sequence(datasets.Sequence(datasets.Value("uint8")))
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": mask, "references": mask}),
        )

    def _compute(self, predictions, references, tolerance: float = 2.0, spacing=None) -> dict[str, float]:
        if len(predictions) != len(references):
            raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
        if len(predictions) == 0:
            raise ValueError("no predictions to evaluate")
        per_instance = [
            segmentation_metrics(np.asarray(pred), np.asarray(ref), tolerance=tolerance, spacing=spacing)
            for pred, ref in zip(predictions, references)
        ]
        result = {f"mean_{name}": float(np.mean([m[name] for m in per_instance])) for name in per_instance[0]}
        result["count"] = len(per_instance)
        return result
