"""The demand model's transformation step: raw daily sales -> the train and validation channels.

Runs as a SageMaker processing job in the XGBoost image (``python3 preprocess.py``), or locally with paths::

    python preprocess.py [--input DIR] [--train-output DIR] [--validation-output DIR]
                         [--validation-fraction 0.2] [--seed 0]

Defaults are the processing job's paths: ``/opt/ml/processing/input/data`` in, ``/opt/ml/processing/output/train``
and ``/opt/ml/processing/output/validation`` out. Reads every ``*.csv`` under the input (header row, the contract's
columns); drops rows without a usable label (missing or negative ``units_sold``) and exact duplicates; trims category
values; then splits the rows (seeded, reproducible) into ``train/part-0.csv`` and ``validation/part-0.csv``, both
with the contract's columns in contract order, so the platform's contract validation and drift baseline read them
like raw data. Feature engineering happens in ``features.py`` at training and serving time, not here.

Exit codes: 0 written; 2 usage error (no input files, a column missing, nothing left to train on).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from features import load_contract

PROCESSING = Path("/opt/ml/processing")


class UsageError(Exception):
    pass


def read_input(source: Path, columns: list[str]) -> pd.DataFrame:
    files = sorted(source.rglob("*.csv")) if source.is_dir() else [source]
    if not files or not all(f.is_file() for f in files):
        raise UsageError(f"no CSV files under {source}; give --input a file or a directory of *.csv")
    frames = [pd.read_csv(f, dtype=str, keep_default_na=False) for f in files]
    frame = pd.concat(frames, ignore_index=True)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UsageError(f"{source}: columns {missing} are missing; the contract needs {', '.join(columns)}")
    return frame[columns]


def clean(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, dict[str, int]]:
    frame = frame.apply(lambda column: column.str.strip())
    label = pd.to_numeric(frame[target].replace("", np.nan), errors="coerce")
    usable = label.notna() & (label >= 0)
    kept = frame[usable]
    deduplicated = kept.drop_duplicates()
    return deduplicated, {"rows": len(frame), "no_label": int((~usable).sum()), "duplicates": len(kept) - len(deduplicated)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="preprocess.py", description="Raw daily sales -> train and validation channels.")
    parser.add_argument("--input", type=Path, default=PROCESSING / "input" / "data")
    parser.add_argument("--train-output", type=Path, default=PROCESSING / "output" / "train")
    parser.add_argument("--validation-output", type=Path, default=PROCESSING / "output" / "validation")
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 0.05 <= args.validation_fraction <= 0.5:
        raise UsageError(f"--validation-fraction {args.validation_fraction} is outside 0.05..0.5")

    contract = load_contract()
    columns, target = list(contract["columns"]), contract["target"]
    frame, counts = clean(read_input(args.input, columns), target)
    holdout = int(round(len(frame) * args.validation_fraction))
    if len(frame) - holdout < contract.get("min_rows", 1):
        raise UsageError(f"only {len(frame) - holdout} training rows left after cleaning; the contract needs {contract.get('min_rows')}")
    order = np.random.default_rng(args.seed).permutation(len(frame))
    validation, train = frame.iloc[np.sort(order[:holdout])], frame.iloc[np.sort(order[holdout:])]
    for rows, directory in ((train, args.train_output), (validation, args.validation_output)):
        directory.mkdir(parents=True, exist_ok=True)
        rows.to_csv(directory / "part-0.csv", index=False)
    print(
        f"preprocess: {counts['rows']} rows read, {counts['no_label']} without a usable label and "
        f"{counts['duplicates']} duplicates dropped; train {len(train)}, validation {len(validation)}",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UsageError as e:
        print(f"preprocess: {e}", file=sys.stderr)
        sys.exit(2)
