"""Scores of a labeled image list: top-1 and top-5 accuracy, the confusion matrix, accuracy per class (numpy)."""

from __future__ import annotations

import numpy as np


def evaluate(ranked: np.ndarray, truth: np.ndarray, labels: list[str]) -> dict:
    """`ranked`: N x k class indices, best first (k = min(5, classes)); `truth`: N true class indices.

    Accuracies are fractions (0..1) computed as the training loop's validation computes them, so a list of
    a dataset's validation images scores exactly what training reported.
    """
    n, k = len(truth), len(labels)
    if n == 0:
        return {"count": 0, "top1_accuracy": None, "top5_accuracy": None}
    truth = truth.astype(np.int64)
    top1 = int((ranked[:, 0] == truth).sum())
    top5 = int((ranked == truth[:, None]).any(axis=1).sum())
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (truth, ranked[:, 0]), 1)
    per_class = {}
    for index, label in enumerate(labels):
        total = int(matrix[index].sum())
        if total:
            per_class[label] = int(matrix[index, index]) / total
    return {
        "count": n,
        "top1_accuracy": top1 / n,
        "top5_accuracy": top5 / n,
        "confusion_matrix": {"labels": list(labels), "matrix": matrix.tolist()},
        "per_class_accuracy": per_class,
    }
