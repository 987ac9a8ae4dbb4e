"""Baseline statistics of the training data, the reference drift monitoring compares new data with.

``baseline.json`` (written by train.py to ``SM_OUTPUT_DATA_DIR`` and to the model directory)::

    {
      "format": "mlops-baseline/1",
      "rows": 2000,                              # rows of the training channel (all of it, before the split)
      "target": {"name": "churned", "positive_rate": 0.246},   # binary; multiclass: "class_rates"; regression: "mean"
      "features": {
        "<numeric feature>": {                   # contract type int or float
          "kind": "numeric",
          "count": 1980,                         # non-missing values
          "null_count": 20,
          "mean": 55.1, "std": 24.3,             # std with ddof=1; null when count < 2
          "min": 5.0, "max": 130.2,              # null when count == 0
          "bins": {"edges": [e0, ..., ek], "proportions": [p0, ..., pk+1]}
        },
        "<categorical feature>": {               # contract type category or bool ("true"/"false")
          "kind": "categorical",
          "count": 2000, "null_count": 0,
          "frequencies": {"basic": 0.5, ...}     # share of non-missing values; sums to 1
        }
      },
      "prediction": {                            # positive-class probability on the validation split (binary;
                                                 # null for multiclass and regression: no prediction drift)
        "count": 400, "mean": 0.25,
        "bins": {"edges": [0.1, ..., 0.9], "proportions": [...]}
      }
    }

Bins: ``edges`` are the inner edges only (JSON has no infinities), strictly increasing: the training
deciles, deduplicated (a feature with few distinct values has fewer). There are ``len(edges) + 1``
bins, the outer ones open: bin 0 is ``x < e0``, bin i is ``e(i-1) <= x < e(i)``, the last is
``x >= ek``. ``proportions`` are shares of the non-missing values, summing to 1 (all zero when there
are none). :func:`bin_proportions` computes the same for new data, so a drift job only needs the
edges from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from training.contract import DataContract

BASELINE_FORMAT = "mlops-baseline/1"
BASELINE_FILE = "baseline.json"
QUANTILES = np.linspace(0.1, 0.9, 9)
PREDICTION_EDGES = np.round(np.linspace(0.1, 0.9, 9), 10)


def assign_bins(values: np.ndarray, edges: np.ndarray | list[float]) -> np.ndarray:
    """Bin index of each value (see the module docstring for the convention); values must not be NaN."""
    return np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")


def bin_proportions(values: np.ndarray, edges: np.ndarray | list[float]) -> list[float]:
    """Share of the non-missing ``values`` in each of the ``len(edges) + 1`` bins."""
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    counts = np.bincount(assign_bins(present, edges), minlength=len(edges) + 1)
    return (counts / present.size).tolist() if present.size else [0.0] * (len(edges) + 1)


def _numeric(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, QUANTILES)) if present.size else np.array([])
    return {
        "kind": "numeric",
        "count": int(present.size),
        "null_count": int(values.size - present.size),
        "mean": float(present.mean()) if present.size else None,
        "std": float(present.std(ddof=1)) if present.size > 1 else None,
        "min": float(present.min()) if present.size else None,
        "max": float(present.max()) if present.size else None,
        "bins": {"edges": edges.tolist(), "proportions": bin_proportions(present, edges)},
    }


def _categorical(values: pd.Series) -> dict[str, Any]:
    present = values.dropna()
    if pd.api.types.is_bool_dtype(present.dtype):
        present = present.map({True: "true", False: "false"})
    counts = present.value_counts()
    return {
        "kind": "categorical",
        "count": int(present.size),
        "null_count": int(values.size - present.size),
        "frequencies": {str(k): int(n) / present.size for k, n in counts.items() if n > 0},
    }


def compute_baseline(typed: pd.DataFrame, contract: DataContract, validation_probability: np.ndarray | None) -> dict[str, Any]:
    """The ``baseline.json`` document for a validated (typed) training frame and the model's
    probabilities on the validation split (None: no prediction section)."""
    features: dict[str, Any] = {}
    for name in contract.features:
        column = typed[name]
        if contract.columns[name].type in ("int", "float"):
            features[name] = _numeric(column.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            features[name] = _categorical(column)
    if contract.task == "regression":
        values = typed[contract.target].astype("Float64")
        target: dict[str, Any] = {"name": contract.target, "mean": float(values.mean()) if len(values) else None}
    elif contract.task == "multiclass":
        counts = typed[contract.target].astype("Int64").value_counts(normalize=True).sort_index()
        target = {"name": contract.target, "class_rates": {str(k): float(v) for k, v in counts.items()}}
    else:
        label = typed[contract.target].astype("Int64")
        target = {"name": contract.target, "positive_rate": float(label.mean()) if len(label) else None}
    return {
        "format": BASELINE_FORMAT,
        "rows": int(len(typed)),
        "target": target,
        "features": features,
        "prediction": None if validation_probability is None else {
            "count": int(validation_probability.size),
            "mean": float(validation_probability.mean()) if validation_probability.size else None,
            "bins": {"edges": PREDICTION_EDGES.tolist(), "proportions": bin_proportions(validation_probability, PREDICTION_EDGES)},
        },
    }
