"""Sample data: a customer-churn dataset with a real signal and controllable drift.

Usage::

    python -m training.sample_data --rows N [--seed S] --out FILE.csv [--shift FEATURE=K ...] [--mix FEATURE=CAT:P,CAT:P ...]

Arguments:
  --rows N     number of rows
  --seed S     random seed (default 0): the same seed and drift give the same file
  --out FILE   CSV file to write (header row, empty cells for missing values)
  --shift F=K  move numeric feature F's mean by K standard deviations (repeatable)
  --mix F=C:P  draw category feature F with these proportions, e.g. plan=basic:0.8,premium:0.2;
               categories outside the contract's allowed list simulate unseen categories (repeatable)

Columns (contract: ``training/sample/contract.json``): ``tenure_months`` (int), ``monthly_charges``
(float, about 1% missing, depends on the plan), ``support_calls`` (int), ``plan`` and ``region``
(category), ``autopay`` (bool), and the label ``churned`` (0/1), drawn from a logistic model of the
features. Drift changes the inputs, not that relationship: the label is drawn from the drifted
features. Each column draws from its own random stream, so drift in one feature leaves every other
feature's values unchanged (except ``monthly_charges``, which follows ``plan``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

if not __package__:  # `python training/sample_data.py`: make the `training` package importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from training.data import EXIT_OK, UsageError, run  # noqa: E402

CONTRACT_PATH = Path(__file__).resolve().parent / "sample" / "contract.json"
NUMERIC = ("tenure_months", "monthly_charges", "support_calls")
INTEGER = ("tenure_months", "support_calls")
CATEGORICAL: dict[str, dict[str, float]] = {
    "plan": {"basic": 0.5, "standard": 0.3, "premium": 0.2},
    "region": {"north": 0.3, "south": 0.25, "east": 0.25, "west": 0.2},
}
PLAN_PRICE = {"basic": 30.0, "standard": 60.0, "premium": 95.0}
PLAN_EFFECT = {"basic": 0.55, "standard": 0.0, "premium": -0.7}
REGION_EFFECT = {"north": 0.0, "south": 0.25, "east": -0.15, "west": 0.1}
CHARGES_NULL_RATE = 0.01
_STREAMS = (
    "tenure_months", "plan", "monthly_charges", "monthly_charges_nulls", "support_calls", "region", "autopay", "churned",
    "rounding",
)


def _mix(feature: str, mix: Mapping[str, float]) -> dict[str, float]:
    if not mix or any(p < 0 for p in mix.values()) or abs(sum(mix.values()) - 1.0) > 1e-6:
        raise ValueError(f"mix for {feature!r} must be non-negative proportions summing to 1, got {dict(mix)}")
    return dict(mix)


def _draw(u: np.ndarray, mix: Mapping[str, float]) -> pd.Categorical:
    """Categories by inverse CDF of uniforms: a changed mix moves only the rows near the boundaries."""
    codes = np.searchsorted(np.cumsum(list(mix.values())), u, side="right")
    return pd.Categorical.from_codes(np.minimum(codes, len(mix) - 1), categories=list(mix))


def _lookup(values: pd.Categorical, table: Mapping[str, float], default: float) -> np.ndarray:
    per_category = np.array([table.get(c, default) for c in values.categories])
    return per_category[values.codes]


def generate(rows: int, seed: int = 0, drift: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """A churn dataset of ``rows`` rows.

    ``drift``: ``{"shift": {numeric feature: k standard deviations}, "mix": {category feature: {category:
    proportion}}}``, both optional. Raises ValueError for a drift naming an unknown feature or a bad mix.
    """
    drift = dict(drift or {})
    unknown_keys = set(drift) - {"shift", "mix"}
    if unknown_keys:
        raise ValueError(f"drift keys {sorted(unknown_keys)} are unknown; use 'shift' and/or 'mix'")
    shifts = dict(drift.get("shift") or {})
    mixes = dict(drift.get("mix") or {})
    for name in shifts:
        if name not in NUMERIC:
            raise ValueError(f"cannot shift {name!r}; numeric features are {', '.join(NUMERIC)}")
    for name in mixes:
        if name not in CATEGORICAL:
            raise ValueError(f"cannot change the mix of {name!r}; category features are {', '.join(CATEGORICAL)}")
    rng = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS)))))

    plan = _draw(rng["plan"].random(rows), _mix("plan", mixes["plan"]) if "plan" in mixes else CATEGORICAL["plan"])
    region = _draw(rng["region"].random(rows), _mix("region", mixes["region"]) if "region" in mixes else CATEGORICAL["region"])
    numeric = {
        "tenure_months": np.minimum(np.floor(rng["tenure_months"].gamma(1.6, 16.0, rows)), 120.0),
        "monthly_charges": np.maximum(_lookup(plan, PLAN_PRICE, 60.0) + rng["monthly_charges"].normal(0.0, 8.0, rows), 5.0),
        "support_calls": rng["support_calls"].poisson(1.4, rows).astype(float),
    }
    numeric["monthly_charges"][rng["monthly_charges_nulls"].random(rows) < CHARGES_NULL_RATE] = np.nan
    for name, k in shifts.items():
        shifted = numeric[name] + float(k) * np.nanstd(numeric[name])
        if name in INTEGER:
            # Randomised rounding: whole numbers whose mean still moves by exactly k standard deviations.
            shifted = np.floor(shifted + rng["rounding"].random(rows))
        numeric[name] = shifted
    autopay = rng["autopay"].random(rows) < 0.55

    charges = np.nan_to_num(numeric["monthly_charges"], nan=60.0)
    logit = (
        -0.07 * numeric["tenure_months"]
        + 0.04 * (charges - 60.0)
        + 0.7 * numeric["support_calls"]
        - 1.4 * autopay
        + _lookup(plan, PLAN_EFFECT, 0.0)
        + _lookup(region, REGION_EFFECT, 0.0)
    )
    churned = (rng["churned"].random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int8)

    return pd.DataFrame(
        {
            "tenure_months": numeric["tenure_months"].astype(np.int64),
            "monthly_charges": np.round(numeric["monthly_charges"], 2),
            "support_calls": numeric["support_calls"].astype(np.int64),
            "plan": plan,
            "region": region,
            "autopay": autopay,
            "churned": churned,
        }
    )


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format="%.2f")


def _parse_shift(text: str) -> tuple[str, float]:
    name, eq, k = text.partition("=")
    try:
        if not eq:
            raise ValueError
        return name.strip(), float(k)
    except ValueError:
        raise UsageError(f"--shift {text!r}: expected FEATURE=K, e.g. monthly_charges=1.5") from None


def _parse_mix(text: str) -> tuple[str, dict[str, float]]:
    name, eq, spec = text.partition("=")
    try:
        if not eq:
            raise ValueError
        pairs = [part.split(":") for part in spec.split(",")]
        return name.strip(), {cat.strip(): float(p) for cat, p in pairs}
    except ValueError:
        raise UsageError(f"--mix {text!r}: expected FEATURE=CAT:P,CAT:P, e.g. plan=basic:0.8,premium:0.2") from None


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="training.sample_data", description="Write a sample churn dataset as CSV.")
    parser.add_argument("--rows", type=int, required=True, help="number of rows")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--shift", action="append", default=[], help="FEATURE=K: move a numeric feature's mean by K std")
    parser.add_argument("--mix", action="append", default=[], help="FEATURE=CAT:P,...: category proportions")
    args = parser.parse_args(argv)
    if args.rows < 1:
        raise UsageError("--rows must be at least 1")
    drift = {"shift": dict(map(_parse_shift, args.shift)), "mix": dict(map(_parse_mix, args.mix))}
    try:
        frame = generate(args.rows, args.seed, drift)
    except ValueError as e:
        raise UsageError(str(e)) from None
    write_csv(frame, Path(args.out))
    print(f"sample_data: wrote {len(frame)} rows to {args.out} (churn rate {frame['churned'].mean():.3f})")
    return EXIT_OK


if __name__ == "__main__":
    run(main)
