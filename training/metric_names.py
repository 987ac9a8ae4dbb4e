"""Names and directions of the metrics the platform judges, per task: no numpy, so config and components read them.

The values are computed by :mod:`training.metrics` (numpy only: the quality job) and :mod:`training.model` (the
built-in recipe's train and evaluate steps, with scikit-learn).

Tasks (:data:`TASKS`): ``binary`` (label 0/1), ``multiclass`` (label: an integer class code), ``regression``
(label: a number). Multiclass metric names say how they average over classes: ``f1_macro`` is the unweighted mean
of the per-class F1 scores; ``roc_auc_ovr`` is the unweighted mean of the one-vs-rest ROC AUCs (scikit-learn's
``roc_auc_score(multi_class="ovr", average="macro")``); ``log_loss`` is the multinomial cross-entropy.
"""

from __future__ import annotations

from typing import Literal

Task = Literal["binary", "multiclass", "regression"]
Direction = Literal["higher", "lower"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")

BINARY = ("roc_auc", "accuracy", "f1", "log_loss", "precision", "recall")
MULTICLASS = ("accuracy", "f1_macro")
REGRESSION = ("rmse", "mae", "r2")
TASK_METRICS = {"binary": BINARY, "multiclass": MULTICLASS, "regression": REGRESSION}
"""What the model-quality job computes from captured predictions joined with labels (multiclass: from the
predicted class alone, so no probability metrics)."""

EVALUATION_METRICS: dict[str, tuple[str, ...]] = {
    "binary": BINARY,
    "multiclass": ("accuracy", "f1_macro", "log_loss", "roc_auc_ovr"),
    "regression": REGRESSION,
}
"""What the built-in recipe's train and evaluate steps report, per task."""

GATE_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "accuracy", "f1", "log_loss"),
    "multiclass": ("accuracy", "f1_macro", "log_loss", "roc_auc_ovr"),
    "regression": REGRESSION,
}
"""The metrics the built-in recipe's evaluation rule may name as ``primary_metric``, per task."""

HIGHER_IS_BETTER = {
    "roc_auc": True, "accuracy": True, "f1": True, "precision": True, "recall": True, "f1_macro": True,
    "roc_auc_ovr": True, "r2": True, "log_loss": False, "rmse": False, "mae": False,
}
UNIT_INTERVAL = frozenset({"roc_auc", "accuracy", "f1", "precision", "recall", "f1_macro", "roc_auc_ovr"})
"""Metrics whose values lie in 0..1 (r2 is at most 1 but unbounded below)."""
NON_NEGATIVE = frozenset({"log_loss", "rmse", "mae"})
"""Lower-is-better metrics that cannot go below 0: a minimum (ceiling) of 0 is one no model reaches."""
THRESHOLD = 0.5
"""A binary prediction is label 1 when its probability reaches this."""


def direction_of(metric: str) -> Direction | None:
    """``"higher"`` or ``"lower"`` for a metric the platform knows; None for any other name."""
    known = HIGHER_IS_BETTER.get(metric)
    return None if known is None else ("higher" if known else "lower")
