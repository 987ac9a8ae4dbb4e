"""Train the built-in recipe's model on the training channel: a classifier (binary, multiclass) or a regressor.

Usage::

    python training/train.py [--max_iter 200 --learning_rate 0.1 ...]      # SageMaker script mode
    python -m training.train --train DIR --model-dir DIR --output-data-dir DIR --contract FILE [hyperparameters]

Arguments (each overrides its environment default; ``-`` and ``_`` are interchangeable):
  --train PATH            CSV file or directory of CSV files (default: $SM_CHANNEL_TRAIN)
  --model-dir DIR         where the model is written (default: $SM_MODEL_DIR)
  --output-data-dir DIR   where baseline.json and validation_report.json are written (default: $SM_OUTPUT_DATA_DIR)
  --contract FILE         the data contract, JSON or YAML (default: $MLOPS_CONTRACT)
  --failure-file FILE     when the data is invalid, write a one-paragraph summary here
  --<hyperparameter> V    every field of training.contract.Hyperparameters, e.g. --max_iter 300
                          (SageMaker passes each hyperparameter this way, as a string); ``--task`` binary,
                          multiclass or regression must match the contract's task (default: the contract's)

Steps: validate the data against the contract (refuse to train on invalid data: exit 1, report
written); hold out ``validation_fraction`` of the rows (stratified for classification, seeded by ``random_state``); fit (in
checkpointed stages when the job has a CheckpointConfig: a restarted spot job resumes, see training.checkpoint);
print the task's metrics (``training.metric_names.EVALUATION_METRICS``) as ``train:<metric>=<value>`` (on a
seeded sample of at most 100,000 training rows) and ``validation:<metric>=<value>`` lines (matched by
``training.contract.metric_definitions``); write to the model directory ``model.joblib``,
``contract.json``, ``training.json``, ``baseline.json`` (also to the output data directory) and
``code/`` (the serving code: the endpoint runs network-isolated); to the output data directory also
``validation.csv``, the held-out rows (the CT flow evaluates on them when there is no test channel).

Exit codes: 0 trained; 1 invalid data; 2 usage error (bad hyperparameter, missing path, malformed file).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # `python training/train.py`, as SageMaker script mode runs it
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from training._deps import copy_serving_code, ensure_dependencies  # noqa: E402

ensure_dependencies()  # network-isolated containers: the pinned dependencies come from the shipped wheels

from training.contract import Hyperparameters, print_metrics  # noqa: E402
from training.data import (  # noqa: E402
    EXIT_INVALID,
    EXIT_OK,
    UsageError,
    add_path_option,
    resolve_contract,
    resolve_path,
    run,
    split_model_args,
    write_json,
)

# numpy, pandas, scikit-learn and pandera are imported in main(), after the arguments are checked: a usage error
# (a bad hyperparameter, a missing path) is reported in ~0.3 CPU-s, not 3-4 (as training/evaluate.py does).

TRAIN_METRICS_ROWS = 100_000
VALIDATION_FILE = "validation.csv"


def main(argv: Sequence[str]) -> int:
    hp, rest = split_model_args(Hyperparameters, argv, "hyperparameters")
    parser = argparse.ArgumentParser(
        prog="training.train",
        description="Train the built-in recipe's model on the training channel.",
        epilog=Hyperparameters.cli_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_path_option(parser, "train", "CSV file or directory of CSV files", env="SM_CHANNEL_TRAIN")
    add_path_option(parser, "model-dir", "where the model is written", env="SM_MODEL_DIR")
    add_path_option(parser, "output-data-dir", "where baseline.json and validation_report.json go", env="SM_OUTPUT_DATA_DIR")
    add_path_option(parser, "contract", "data contract, JSON or YAML", env="MLOPS_CONTRACT")
    add_path_option(parser, "failure-file", "when the data is invalid, write a one-paragraph summary here")
    args = parser.parse_args(rest)

    source = resolve_path(args.train, "train", "SM_CHANNEL_TRAIN")
    model_dir = resolve_path(args.model_dir, "model-dir", "SM_MODEL_DIR")
    output_dir = resolve_path(args.output_data_dir, "output-data-dir", "SM_OUTPUT_DATA_DIR")
    contract = resolve_contract(args.contract)
    failure_file = Path(args.failure_file) if args.failure_file else None
    print("train: hyperparameters " + " ".join(f"{k}={v}" for k, v in hp.to_hyperparameters().items()), flush=True)

    import numpy as np
    import sklearn
    from sklearn.model_selection import train_test_split

    from training.baseline import BASELINE_FILE, compute_baseline
    from training.checkpoint import checkpoint_dir, fit_with_checkpoints
    from training.model import TRAINING_FILE, TRAINING_FORMAT, TrainedModel, build_pipeline, labels, model_frame, resolve_task
    from training.validate import check_and_report

    result = check_and_report(source, contract, output_dir, failure_file)
    if not result.valid:
        print("train: refusing to train on data that breaks the contract", file=sys.stderr)
        return EXIT_INVALID
    typed = result.frame
    assert typed is not None
    task = resolve_task(contract, hp.task)

    features, y = model_frame(typed, contract), labels(typed, contract)
    try:
        x_train, x_valid, y_train, y_valid = train_test_split(
            features, y, test_size=hp.validation_fraction, stratify=None if task == "regression" else y,
            random_state=hp.random_state,
        )
    except ValueError as e:  # a class too rare to appear on both sides of the split
        raise UsageError(f"cannot hold out validation_fraction {hp.validation_fraction} stratified: {e}") from None

    started = time.perf_counter()
    checkpoints = checkpoint_dir()
    if checkpoints is None:
        pipeline = build_pipeline(contract, hp).fit(x_train, y_train)
    else:  # managed spot training: an interrupted job resumes from its last stage
        pipeline = fit_with_checkpoints(build_pipeline(contract, hp), x_train, y_train, checkpoints, hp.model_dump())
    print(f"train: fitted {len(x_train)} rows in {time.perf_counter() - started:.1f} s", flush=True)

    model = TrainedModel(pipeline=pipeline, contract=contract)
    validation_scores = model.scores(x_valid)
    # Train metrics only show overfitting; on a large split, scoring every row costs more than the fit.
    scored = np.random.default_rng(hp.random_state).permutation(len(x_train))[:TRAIN_METRICS_ROWS]
    metrics = {
        "train": model.metrics(y_train[scored], model.scores(x_train.iloc[scored])),
        "validation": model.metrics(y_valid, validation_scores),
    }
    for split, values in metrics.items():
        print_metrics(split, values)

    model.save(model_dir)
    write_json(
        model_dir / TRAINING_FILE,
        {
            "format": TRAINING_FORMAT,
            "task": task,
            "hyperparameters": hp.model_dump(),
            "metrics": metrics,
            "rows": {"train": len(x_train), "validation": len(x_valid), "train_scored": len(scored)},
            "versions": {"python": platform.python_version(), "scikit-learn": sklearn.__version__},
        },
    )
    # Prediction drift watches the binary recipe's probability; other tasks' baselines carry no prediction section.
    baseline = compute_baseline(typed, contract, validation_scores if task == "binary" else None)
    for directory in (model_dir, output_dir):
        write_json(directory / BASELINE_FILE, baseline)
    # The holdout of last resort: the CT flow evaluates on it when the model has no <model>/test/ data.
    typed.loc[x_valid.index].to_csv(output_dir / VALIDATION_FILE, index=False)
    copy_serving_code(model_dir)
    print(f"train: model written to {model_dir}", flush=True)
    return EXIT_OK


if __name__ == "__main__":
    run(main)
