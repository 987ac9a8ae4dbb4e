"""Names and directions of the metrics the platform judges, per task: no numpy, so config and components read them.

The values are computed by :mod:`training.metrics`.
"""

from __future__ import annotations

BINARY = ("roc_auc", "accuracy", "f1", "log_loss", "precision", "recall")
MULTICLASS = ("accuracy", "f1_macro")
REGRESSION = ("rmse", "mae", "r2")
TASK_METRICS = {"binary": BINARY, "multiclass": MULTICLASS, "regression": REGRESSION}
HIGHER_IS_BETTER = {
    "roc_auc": True, "accuracy": True, "f1": True, "precision": True, "recall": True, "f1_macro": True,
    "r2": True, "log_loss": False, "rmse": False, "mae": False,
}
THRESHOLD = 0.5
"""A binary prediction is label 1 when its probability reaches this."""
