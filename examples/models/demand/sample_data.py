"""Deterministic sample data for the demand model: ``python sample_data.py --rows 800 --seed 0 --out sample/demand.csv``.

Daily units sold per store, driven by store type, price (elastic), promotion, weekend, holiday and temperature,
with multiplicative noise; about 2% of temperatures missing. The same seed always writes the same file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

BASE = {"city": 40.0, "mall": 60.0, "suburb": 25.0}


def generate(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    store = rng.choice(list(BASE), size=rows, p=[0.4, 0.35, 0.25])
    day = rng.integers(0, 7, size=rows)
    temperature = np.round(rng.normal(15, 9, size=rows).clip(-25, 45), 1)
    price = np.round(rng.uniform(1.0, 12.0, size=rows), 2)
    promo = rng.random(rows) < 0.2
    holiday = rng.random(rows) < 0.05
    mean = (
        np.array([BASE[s] for s in store])
        * np.exp(-0.09 * (price - 5.0))
        * np.where(promo, 1.45, 1.0)
        * np.where(day >= 5, 1.25, 1.0)
        * np.where(holiday, 1.3, 1.0)
        * (1.0 + 0.01 * (temperature - 15.0))
    )
    units = np.round(np.maximum(0.0, mean * rng.lognormal(0.0, 0.15, size=rows)), 1)
    frame = pd.DataFrame({
        "store_type": store, "day_of_week": day, "temperature_c": temperature, "price": price,
        "promo": np.where(promo, "true", "false"), "holiday": np.where(holiday, "true", "false"), "units_sold": units,
    })
    frame.loc[rng.random(rows) < 0.02, "temperature_c"] = np.nan
    return frame


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    generate(args.rows, args.seed).to_csv(args.out, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
