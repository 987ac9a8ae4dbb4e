"""The demand model's features: the raw columns of its data contract -> the numeric matrix XGBoost trains on.

Shared by train.py and inference.py, so that serving applies exactly the transformation training did. Raw columns
(contract.json): store_type (category), day_of_week (0..6), temperature_c (may be missing), price, promo, holiday.
Model features: one indicator per store type, day_of_week, is_weekend, temperature_c (missing stays NaN: XGBoost
learns a default direction for it), log_price, promo, holiday, promo_on_weekend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
CONTRACT_FILE = "contract.json"
TRUE = {"true", "1", "yes", "t", "y"}
FALSE = {"false", "0", "no", "f", "n"}


def load_contract(directory: Path = HERE) -> dict[str, Any]:
    return json.loads((directory / CONTRACT_FILE).read_text(encoding="utf-8"))


def raw_features(contract: dict[str, Any]) -> list[str]:
    """The contract's feature columns, in order (the column order of CSV requests)."""
    return [name for name in contract["columns"] if name != contract["target"]]


def feature_names(contract: dict[str, Any]) -> list[str]:
    stores = contract["columns"]["store_type"]["allowed"]
    return [f"store_{s}" for s in stores] + [
        "day_of_week", "is_weekend", "temperature_c", "log_price", "promo", "holiday", "promo_on_weekend",
    ]


def _bool(values: pd.Series, name: str) -> np.ndarray:
    def one(v: Any) -> float:
        if isinstance(v, (bool, np.bool_)):
            return float(v)
        text = str(v).strip().lower()
        if text in TRUE:
            return 1.0
        if text in FALSE:
            return 0.0
        raise ValueError(f"{name} must be true or false, got {v!r}")

    return np.array([one(v) for v in values], dtype=np.float64)


def _number(values: pd.Series, name: str, missing_ok: bool = False) -> np.ndarray:
    numbers = pd.to_numeric(values.replace("", np.nan), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.isnan(numbers) & values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
    if bad.any():
        raise ValueError(f"{name} must be a number, got {values[bad].iloc[0]!r}")
    if not missing_ok and np.isnan(numbers).any():
        raise ValueError(f"{name} is missing; every row needs it")
    return numbers


def transform(frame: pd.DataFrame, contract: dict[str, Any]) -> np.ndarray:
    """The model matrix of raw rows (a frame with the contract's feature columns); ValueError names a bad value."""
    missing = [c for c in raw_features(contract) if c not in frame.columns]
    if missing:
        raise ValueError(f"missing columns {missing}; expected {', '.join(raw_features(contract))}")
    stores = contract["columns"]["store_type"]["allowed"]
    store = frame["store_type"].astype(str).str.strip()
    unknown = sorted(set(store) - set(stores))
    if unknown:
        raise ValueError(f"store_type {unknown[0]!r} is not one of {', '.join(stores)}")
    day = _number(frame["day_of_week"], "day_of_week")
    if ((day < 0) | (day > 6) | (day != np.round(day))).any():
        raise ValueError("day_of_week must be an integer 0..6 (Monday = 0)")
    price = _number(frame["price"], "price")
    if (price <= 0).any():
        raise ValueError("price must be greater than 0")
    promo = _bool(frame["promo"], "promo")
    weekend = (day >= 5).astype(np.float64)
    columns = [(store == s).to_numpy(dtype=np.float64) for s in stores] + [
        day, weekend, _number(frame["temperature_c"], "temperature_c", missing_ok=True), np.log(price), promo,
        _bool(frame["holiday"], "holiday"), promo * weekend,
    ]
    return np.column_stack(columns)
