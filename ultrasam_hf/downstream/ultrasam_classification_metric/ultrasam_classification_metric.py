"""`evaluate` metric: accuracy, balanced accuracy, F1 and ROC AUC for (binary or multi-class) classification.

Loaded from its local folder, without the Hub and without scikit-learn: `ultrasam_hf.downstream.load_classification_metric()`
or `evaluate.load("<path>/ultrasam_classification_metric")`. Same definitions as scikit-learn's `accuracy_score`,
`balanced_accuracy_score`, `f1_score` (binary: positive class 1; multi-class: macro) and `roc_auc_score`
(binary: Mann-Whitney U with average ranks for ties; multi-class: macro one-vs-rest).
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np
from scipy.stats import rankdata

_DESCRIPTION = """
Accuracy, balanced accuracy (mean per-class recall), F1 (binary on class 1, or macro over classes) and ROC AUC
(from per-class scores, e.g. softmax probabilities; binary: score of class 1) in one pass.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of predicted class indices.
    references: list of true class indices.
    scores (list of lists of floats, optional): per-class scores, shape (N, num_classes); needed for `roc_auc`.
    num_classes (int, optional): defaults to max(label) + 1 (at least 2).
Returns:
    accuracy, balanced_accuracy, f1, roc_auc (NaN when scores are missing or a class is absent), count.
Examples:
    >>> metric = evaluate.load("ultrasam/ultrasam_classification_metric")  # or this folder
    >>> metric.compute(predictions=[0, 1, 1], references=[0, 1, 0], scores=[[.9, .1], [.2, .8], [.4, .6]])["roc_auc"]
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


def binary_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    positives, negatives = labels.sum(), (1 - labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def binary_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    true_positive = float(((predicted == 1) & (labels == 1)).sum())
    denominator = float((predicted == 1).sum() + (labels == 1).sum())
    return 2 * true_positive / denominator if denominator else 0.0


class UltrasamClassificationMetric(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, scores=None, num_classes=None) -> dict:
        predicted, labels = np.asarray(predictions), np.asarray(references)
        if len(predicted) == 0:
            raise ValueError("no predictions to evaluate")
        num_classes = num_classes or max(int(labels.max()), int(predicted.max()), 1) + 1
        present = [c for c in range(num_classes) if (labels == c).any()]
        recalls = [float((predicted[labels == c] == c).mean()) for c in present]
        if num_classes == 2:
            f1 = binary_f1(labels, predicted)
        else:
            f1 = float(
                np.mean(
                    [binary_f1((labels == c).astype(int), (predicted == c).astype(int)) for c in range(num_classes)]
                )
            )
        auc = float("nan")
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64)
            if num_classes == 2:
                auc = binary_auc(labels, scores[:, 1] if scores.ndim == 2 else scores)
            else:
                aucs = [binary_auc((labels == c).astype(int), scores[:, c]) for c in present]
                auc = float(np.nanmean(aucs)) if aucs else float("nan")
        return {
            "accuracy": float((predicted == labels).mean()),
            "balanced_accuracy": float(np.mean(recalls)),
            "f1": f1,
            "roc_auc": auc,
            "count": int(len(labels)),
        }
