"""Train the demand model: XGBoost regression of daily units sold, in SageMaker script mode.

The SageMaker XGBoost image runs it as the user entry point (``sagemaker_program=train.py``), with each
hyperparameter as ``--name value`` and the job's paths in the environment; locally, give the same::

    SM_CHANNEL_TRAIN=DIR [SM_CHANNEL_VALIDATION=DIR] SM_MODEL_DIR=DIR SM_OUTPUT_DATA_DIR=DIR python train.py [--num_round 200 ...]

Channels: ``train`` (required) and ``validation`` (optional: without it, ``--validation_fraction`` of the training
rows is held out, seeded), CSV files with a header and the contract's columns (preprocess.py writes them).
Prints ``train:<metric>=<value>`` and ``validation:<metric>=<value>`` for rmse, mae and r2 (SageMaker metric
definitions match them). Writes to the model directory ``xgboost-model.json`` (the booster), ``contract.json``,
``training.json`` (hyperparameters, metrics, rows, versions) and ``code/`` (inference.py, features.py,
contract.json: what the endpoint imports, SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code); to the output data
directory ``evaluation.json`` of the validation split (the platform's evaluation.json contract, training/README.md).

Exit codes: 0 trained; 2 usage error (bad hyperparameter, missing channel, data the features cannot read).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

from features import CONTRACT_FILE, HERE, feature_names, load_contract, transform

MODEL_FILE = "xgboost-model.json"
SERVING_FILES = ("inference.py", "features.py", CONTRACT_FILE)
DIRECTIONS = {"rmse": "lower", "mae": "lower", "r2": "higher"}


class UsageError(Exception):
    pass


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="train.py", description="Train the demand model (XGBoost regression).")
    parser.add_argument("--num_round", type=int, default=200, help="boosting rounds (default 200)")
    parser.add_argument("--max_depth", type=int, default=5, help="largest tree depth (default 5)")
    parser.add_argument("--eta", type=float, default=0.1, help="learning rate (default 0.1)")
    parser.add_argument("--subsample", type=float, default=0.9, help="row share per tree (default 0.9)")
    parser.add_argument("--min_child_weight", type=float, default=1.0, help="fewest hessian per leaf (default 1)")
    parser.add_argument("--early_stopping_rounds", type=int, default=20, help="stop after this many rounds without gain on validation (0: never)")
    parser.add_argument("--validation_fraction", type=float, default=0.2, help="held out when there is no validation channel")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hold-out split and of XGBoost")
    for name in ("train", "validation", "model-dir", "output-data-dir"):
        parser.add_argument(f"--{name}", type=Path, default=None)
    args = parser.parse_args(argv)
    for name, env in (("train", "SM_CHANNEL_TRAIN"), ("validation", "SM_CHANNEL_VALIDATION"), ("model_dir", "SM_MODEL_DIR"),
                      ("output_data_dir", "SM_OUTPUT_DATA_DIR")):
        if getattr(args, name) is None and os.environ.get(env):
            setattr(args, name, Path(os.environ[env]))
    for name in ("train", "model_dir", "output_data_dir"):
        if getattr(args, name) is None:
            raise UsageError(f"--{name.replace('_', '-')} is not given and its SM_* variable is not set")
    if args.num_round < 1 or args.max_depth < 1 or not 0 < args.eta <= 1 or not 0 < args.subsample <= 1:
        raise UsageError("num_round and max_depth must be at least 1; eta and subsample in (0, 1]")
    if not 0.05 <= args.validation_fraction <= 0.5:
        raise UsageError(f"validation_fraction {args.validation_fraction} is outside 0.05..0.5")
    return args


def read_channel(path: Path, contract: dict) -> tuple[np.ndarray, np.ndarray]:
    files = sorted(path.rglob("*.csv")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise UsageError(f"no CSV files in {path}")
    frame = pd.concat([pd.read_csv(f, keep_default_na=True) for f in files], ignore_index=True)
    target = contract["target"]
    if target not in frame.columns:
        raise UsageError(f"{path}: no {target!r} column (the label)")
    try:
        return transform(frame, contract), frame[target].to_numpy(dtype=np.float64)
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from None


def metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    error = predicted - y
    total = float(((y - y.mean()) ** 2).sum())
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float((error**2).sum()) / total if total else 0.0,
    }


def main(argv: list[str]) -> int:
    args = parse(argv)
    contract = load_contract()
    x_train, y_train = read_channel(args.train, contract)
    if args.validation is not None and args.validation.exists():
        x_valid, y_valid = read_channel(args.validation, contract)
    else:
        order = np.random.default_rng(args.seed).permutation(len(y_train))
        held = order[: int(round(len(order) * args.validation_fraction))]
        keep = np.setdiff1d(np.arange(len(y_train)), held)
        x_train, y_train, x_valid, y_valid = x_train[keep], y_train[keep], x_train[held], y_train[held]
    names = feature_names(contract)
    dtrain = xgb.DMatrix(x_train, label=y_train, feature_names=names)
    dvalid = xgb.DMatrix(x_valid, label=y_valid, feature_names=names)
    params = {
        "objective": "reg:squarederror", "eval_metric": "rmse", "max_depth": args.max_depth, "eta": args.eta,
        "subsample": args.subsample, "min_child_weight": args.min_child_weight, "seed": args.seed, "nthread": 1,
        "tree_method": "hist",
    }
    booster = xgb.train(
        params, dtrain, num_boost_round=args.num_round, evals=[(dvalid, "validation")],
        early_stopping_rounds=args.early_stopping_rounds or None, verbose_eval=False,
    )
    rounds = booster.best_iteration + 1 if args.early_stopping_rounds else args.num_round
    scores = {
        "train": metrics(y_train, booster.predict(dtrain, iteration_range=(0, rounds))),
        "validation": metrics(y_valid, booster.predict(dvalid, iteration_range=(0, rounds))),
    }
    for split, values in scores.items():
        for name, value in values.items():
            print(f"{split}:{name}={value:.6f}", flush=True)

    args.model_dir.mkdir(parents=True, exist_ok=True)
    booster = booster[:rounds]  # keep the trees up to the best round: serving predicts with all it has
    booster.save_model(args.model_dir / MODEL_FILE)
    shutil.copy2(HERE / CONTRACT_FILE, args.model_dir / CONTRACT_FILE)
    code = args.model_dir / "code"
    code.mkdir(exist_ok=True)
    for name in SERVING_FILES:
        shutil.copy2(HERE / name, code / name)
    hyperparameters = {k: v for k, v in vars(args).items() if not isinstance(v, Path) and v is not None}
    document = {
        "format": "mlops-training/1", "task": "regression", "hyperparameters": hyperparameters, "metrics": scores,
        "rows": {"train": len(y_train), "validation": len(y_valid)}, "rounds": rounds,
        "versions": {"python": platform.python_version(), "xgboost": xgb.__version__},
    }
    (args.model_dir / "training.json").write_text(json.dumps(document, indent=2) + "\n")
    args.output_data_dir.mkdir(parents=True, exist_ok=True)
    evaluation = {
        "format": "mlops-evaluation/1", "task": "regression", "rows": len(y_valid), "metrics": scores["validation"],
        "directions": DIRECTIONS,
    }
    (args.output_data_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\n")
    print(f"train: {rounds} rounds; model written to {args.model_dir}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UsageError as e:
        print(f"train: {e}", file=sys.stderr)
        sys.exit(2)
