"""Model metrics in numpy alone, for every task the platform judges: the evaluation job and the model-quality job.

The drift and model-quality jobs run in a Lambda that ships numpy and nothing else, so these do not use
scikit-learn; ``tests/training/test_metrics.py`` holds each one to scikit-learn's value on the same data.

Each metric has a direction (:data:`HIGHER_IS_BETTER`). ``y`` is the true label (0/1 for binary, class
index for multiclass, a number for regression); ``score`` is P(label = 1) for binary, the predicted class
for multiclass, the predicted value for regression.
"""

from __future__ import annotations

import numpy as np

from training.metric_names import HIGHER_IS_BETTER, TASK_METRICS, THRESHOLD

__all__ = ["HIGHER_IS_BETTER", "TASK_METRICS", "THRESHOLD", "binary_metrics", "multiclass_metrics", "regression_metrics", "roc_auc", "task_metrics"]
LOG_LOSS_EPS = float(np.finfo(np.float64).eps)
"""Probabilities are clipped to [eps, 1 - eps] before the logarithm, as scikit-learn does."""


def roc_auc(y: np.ndarray, probability: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with tied scores sharing their mean rank); None with one class."""
    y = np.asarray(y, dtype=np.int64)
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(probability, kind="mergesort")
    ranked = np.asarray(probability, dtype=np.float64)[order]
    # Average ranks over ties: each run of equal scores gets the mean of the ranks it spans.
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    ends = np.r_[starts[1:], ranked.size]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(ranked.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    u = ranks[y == 1].sum() - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))


def binary_metrics(y: np.ndarray, probability: np.ndarray) -> dict[str, float | None]:
    """Every binary metric; ``roc_auc`` is None when ``y`` holds one class only (it is undefined then)."""
    y = np.asarray(y, dtype=np.int64)
    p = np.asarray(probability, dtype=np.float64)
    predicted = (p >= THRESHOLD).astype(np.int64)
    tp = int(((predicted == 1) & (y == 1)).sum())
    fp = int(((predicted == 1) & (y == 0)).sum())
    fn = int(((predicted == 0) & (y == 1)).sum())
    clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return {
        "roc_auc": roc_auc(y, p),
        "accuracy": float((predicted == y).mean()),
        "f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0,
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
        "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
        "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
    }


def multiclass_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    y = np.asarray(y)
    predicted = np.asarray(predicted)
    scores = []
    for c in np.union1d(y, predicted):
        tp = int(((predicted == c) & (y == c)).sum())
        fp = int(((predicted == c) & (y != c)).sum())
        fn = int(((predicted != c) & (y == c)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return {"accuracy": float((predicted == y).mean()), "f1_macro": float(np.mean(scores))}


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    y = np.asarray(y, dtype=np.float64)
    error = np.asarray(predicted, dtype=np.float64) - y
    total = float(((y - y.mean()) ** 2).sum())
    residual = float((error**2).sum())
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        # scikit-learn's convention for a constant target: 1.0 when the fit is perfect, else 0.0.
        "r2": (1.0 - residual / total) if total else (1.0 if residual == 0 else 0.0),
    }


def task_metrics(task: str, y: np.ndarray, score: np.ndarray) -> dict[str, float | None]:
    """The metrics of ``task`` (a key of :data:`TASK_METRICS`); empty input gives an empty dict."""
    if task not in TASK_METRICS:
        raise ValueError(f"unknown task {task!r}; accepted: {', '.join(TASK_METRICS)}")
    if len(y) == 0:
        return {}
    return {"binary": binary_metrics, "multiclass": multiclass_metrics, "regression": regression_metrics}[task](y, score)
