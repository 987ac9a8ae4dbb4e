"""Score a holdout set with a trained model and judge it against the production model.

Usage::

    python -m training.evaluate --model PATH --test PATH --output-dir DIR \\
        [--baseline-metrics FILE] [--contract FILE] [--task T] [--primary_metric roc_auc --minimum 0.7 --max_regression 0.02]
    python training/evaluate.py ...

Arguments (each overrides its environment default; ``-`` and ``_`` are interchangeable):
  --model PATH              model directory, a directory holding model.tar.gz, or a model.tar.gz
                            (default: $SM_MODEL_DIR)
  --test PATH               holdout CSV file or directory (default: $SM_CHANNEL_TEST)
  --output-dir DIR          where evaluation.json is written (default: $SM_OUTPUT_DATA_DIR)
  --baseline-metrics FILE   the production model's metrics: a flat {"roc_auc": 0.83, ...} or its
                            evaluation.json; absent = there is no production model yet (first model)
  --contract FILE           contract the holdout must meet (default: $MLOPS_CONTRACT, else the
                            contract stored with the model)
  --task T                  binary, multiclass or regression: checked against the model's contract (default: its task)
  --metrics FILE            a model's own evaluation.json (its evaluate's): judge its metrics by the rule instead of
                            scoring --model on --test (then --model and --test are not needed)
  --primary_metric, --minimum, --max_regression, --direction
                            the training.contract.EvaluationRule (defaults: roc_auc, 0.0, 0.0; direction: the
                            metric's own); primary_metric must be one the task reports (metric_names.GATE_METRICS)

Prints ``test:<metric>=<value>`` lines and writes ``evaluation.json`` (the contract in training/README.md,
"evaluation.json")::

    {"format": "mlops-evaluation/1", "task": "binary" | "multiclass" | "regression", "rows": 400,
     "metrics": {"roc_auc": ..., ...}, "directions": {"roc_auc": "higher", "log_loss": "lower", ...},
     "production_metrics": {...} | null,
     "comparison": {metric: {"new": .., "production": .., "delta": new - production}},
     "rule": {"primary_metric": .., "minimum": .., "max_regression": ..[, "direction": ..]},
     "verdict": "pass" | "fail", "reasons": [...]}

The verdict passes when the primary metric reaches ``minimum`` and is not worse than production by
more than ``max_regression`` (for log_loss, rmse and mae lower is better, in both conditions). ``reasons``
lists the failed conditions, or the met ones on a pass.

Exit codes: 0 whether the verdict is pass or fail (the pipeline's gate reads it); 2 for bad input
(unreadable model or data, holdout data that breaks the contract, malformed metrics file).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if not __package__:  # `python training/evaluate.py`: make the `training` package importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from training._deps import ensure_dependencies  # noqa: E402

ensure_dependencies()  # network-isolated containers: the pinned dependencies come from the shipped wheels

from training.contract import EvaluationRule, print_metrics  # noqa: E402
from training.data import (  # noqa: E402
    EXIT_OK,
    UsageError,
    add_path_option,
    read_json,
    resolve_contract,
    resolve_path,
    run,
    split_model_args,
    write_json,
)
from training.metric_names import TASKS, direction_of  # noqa: E402

# The scoring paths import pandas, scikit-learn and pandera where they need them: judging a model's own
# evaluation.json (--metrics) and rejecting a usage error need none of them (~0.4 CPU-s to start, not ~3.5).

EVALUATION_FORMAT = "mlops-evaluation/1"
EVALUATION_FILE = "evaluation.json"


def production_metrics(path: Path, rule: EvaluationRule) -> dict[str, float]:
    """The production model's metrics from a flat map or an evaluation.json; must hold the primary metric."""
    document = read_json(path, "baseline metrics")
    metrics = document.get("metrics", document) if isinstance(document, dict) else None
    if not isinstance(metrics, dict):
        raise UsageError(f"baseline metrics {path}: expected a JSON object of metrics or an evaluation.json")
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if rule.primary_metric not in numbers:
        raise UsageError(
            f"baseline metrics {path} have no numeric {rule.primary_metric!r} (the primary metric); "
            f"found: {', '.join(metrics) or 'nothing'}"
        )
    return numbers


def evaluation(
    metrics: dict[str, float], production: dict[str, float] | None, rule: EvaluationRule, rows: int, task: str = "binary",
    declared: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The ``evaluation.json`` document."""
    passed, reasons = rule.judge(metrics, production)
    comparison = {
        name: {"new": metrics[name], "production": production[name], "delta": metrics[name] - production[name]}
        for name in metrics
        if production is not None and name in production
    }
    directions = {name: (declared or {}).get(name) or direction_of(name) for name in metrics}
    directions[rule.primary_metric] = rule.resolved_direction
    return {
        "format": EVALUATION_FORMAT,
        "task": task,
        "rows": rows,
        "metrics": metrics,
        "directions": {name: d for name, d in directions.items() if d is not None},
        "production_metrics": production,
        "comparison": comparison,
        "rule": rule.model_dump(exclude_none=True),
        "verdict": "pass" if passed else "fail",
        "reasons": reasons,
    }


def rule_and_holdout(args: argparse.Namespace, rule_values: dict[str, str], task: str, source: Path, contract):
    """The gate's rule for ``task``, the production model's metrics (when given) and the holdout validated against
    ``contract``: what every evaluation path needs before it scores."""
    rule, _ = split_model_args(
        EvaluationRule, [t for name, value in rule_values.items() for t in (f"--{name}", value)], "evaluation rule", {"task": task}
    )
    from training.validate import validate_dataset

    production = production_metrics(Path(args.baseline_metrics), rule) if args.baseline_metrics else None
    _, result = validate_dataset(source, contract)
    if not result.valid:
        raise UsageError(result.summary(str(source)))
    assert result.frame is not None
    return rule, production, result.frame


def evaluate_own_code(args: argparse.Namespace, rule_values: dict[str, str], model_path: Path, source: Path, output_dir: Path) -> int:
    """A model of its own code (no model.joblib, a code/inference.py): the holdout scored through its handlers."""
    from training import handler_scoring
    from training.model import labels

    with tempfile.TemporaryDirectory() as scratch:
        stored = handler_scoring.stored_contract(handler_scoring.model_directory(model_path, Path(scratch)))
    contract = resolve_contract(args.contract, default=stored)
    task = contract.task
    if args.task is not None and args.task != task:
        raise UsageError(f"--task {args.task} contradicts the contract's task {task!r}; leave --task out or pass {task}")
    # Its metrics are the task's; a rule naming another metric needs its own evaluate.
    rule, production, typed = rule_and_holdout(args, rule_values, task, source, contract)
    metrics = handler_scoring.score(model_path, typed, contract, labels(typed, contract))
    return finish(metrics, production, rule, len(typed), task, output_dir)


def read_own_evaluation(path: Path) -> tuple[str, int, dict[str, float], dict[str, str]]:
    """A model's own evaluation.json (training/README.md): task, rows, metrics and directions, checked."""
    document = read_json(path, "model evaluation")
    if not isinstance(document, dict) or document.get("format") != EVALUATION_FORMAT:
        raise UsageError(f"{path}: not an evaluation.json (\"format\": \"{EVALUATION_FORMAT}\" expected); see training/README.md")
    task, rows, metrics, directions = (document.get(k) for k in ("task", "rows", "metrics", "directions"))
    problems = []
    if task not in TASKS:
        problems.append(f"task {task!r} is not one of {', '.join(TASKS)}")
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
        problems.append(f"rows {rows!r} is not a positive integer")
    if not isinstance(metrics, dict) or not metrics:
        problems.append("metrics is not a non-empty object of metric name -> number")
        metrics = {}
    if not isinstance(directions, dict):
        problems.append("directions is not an object of metric name -> higher|lower")
        directions = {}
    for name, value in metrics.items():
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            problems.append(f"metrics.{name} is {value!r}, not a finite number")
        if directions.get(name) not in ("higher", "lower"):
            problems.append(f"directions.{name} is {directions.get(name)!r}; give higher or lower")
        known = direction_of(name)
        if known is not None and directions.get(name) in ("higher", "lower") and directions[name] != known:
            problems.append(f"directions.{name} is {directions[name]!r}, but {known} is better for {name}")
    if problems:
        raise UsageError(f"{path}: " + "; ".join(problems))
    return task, rows, {k: float(v) for k, v in metrics.items()}, directions


def judge_own_evaluation(args: argparse.Namespace, rule_values: dict[str, str], output_dir: Path) -> int:
    """``--metrics FILE``: a model's own evaluation.json judged by the stack's rule (and the production model)."""
    task, rows, metrics, directions = read_own_evaluation(Path(args.metrics))
    if args.task is not None and args.task != task:
        raise UsageError(f"--task {args.task} contradicts the model's evaluation, of task {task!r}")
    given = dict(rule_values)
    primary = given.get("primary_metric", "roc_auc").strip('"')
    if "direction" not in given and direction_of(primary) is None and primary in directions:
        given["direction"] = directions[primary]  # a metric of the model's own: its declared direction
    rule, _ = split_model_args(EvaluationRule, [t for n, v in given.items() for t in (f"--{n}", v)], "evaluation rule")
    if rule.primary_metric in directions and directions[rule.primary_metric] != rule.resolved_direction:
        raise UsageError(
            f"the rule's direction for {rule.primary_metric} is {rule.resolved_direction!r} but the model's evaluation says "
            f"{directions[rule.primary_metric]!r}; make them agree"
        )
    production = production_metrics(Path(args.baseline_metrics), rule) if args.baseline_metrics else None
    return finish(metrics, production, rule, rows, task, output_dir, directions)


def finish(
    metrics: dict[str, float], production: dict[str, float] | None, rule: EvaluationRule, rows: int, task: str, output_dir: Path,
    directions: dict[str, str] | None = None,
) -> int:
    print_metrics("test", metrics)
    if rule.primary_metric not in metrics:
        raise UsageError(
            f"the holdout gives no {rule.primary_metric} (the primary metric; e.g. a class missing from it); "
            f"computed: {', '.join(metrics)}"
        )
    document = evaluation(metrics, production, rule, rows, task, directions)
    write_json(output_dir / EVALUATION_FILE, document)
    print(f"evaluate: verdict={document['verdict']}: " + "; ".join(document["reasons"]), flush=True)
    return EXIT_OK


def main(argv: Sequence[str]) -> int:
    try:
        rule_values, rest = EvaluationRule.take_cli_args(argv)
    except ValueError as e:
        raise UsageError(str(e)) from None
    parser = argparse.ArgumentParser(
        prog="training.evaluate",
        description="Score a holdout set and judge the model against production.",
        epilog=EvaluationRule.cli_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_path_option(parser, "model", "model directory or model.tar.gz", env="SM_MODEL_DIR")
    add_path_option(parser, "test", "holdout CSV file or directory", env="SM_CHANNEL_TEST")
    add_path_option(parser, "output-dir", "where evaluation.json is written", env="SM_OUTPUT_DATA_DIR")
    add_path_option(parser, "baseline-metrics", "the production model's metrics (absent: first model)")
    add_path_option(parser, "contract", "contract for the holdout (default: the model's own)", env="MLOPS_CONTRACT")
    parser.add_argument("--task", choices=TASKS, help="the model's task, checked against its contract (default: its task)")
    add_path_option(parser, "metrics", "a model's own evaluation.json to judge (instead of scoring --model on --test)")
    args = parser.parse_args(rest)

    if args.metrics:
        return judge_own_evaluation(args, rule_values, resolve_path(args.output_dir, "output-dir", "SM_OUTPUT_DATA_DIR"))

    model_path = resolve_path(args.model, "model", "SM_MODEL_DIR")
    source = resolve_path(args.test, "test", "SM_CHANNEL_TEST")
    output_dir = resolve_path(args.output_dir, "output-dir", "SM_OUTPUT_DATA_DIR")
    from training import handler_scoring

    if handler_scoring.has_own_handlers(model_path):
        return evaluate_own_code(args, rule_values, model_path, source, output_dir)
    from training.model import TrainedModel, labels, model_frame

    model = TrainedModel.load(model_path)
    contract = resolve_contract(args.contract, default=model.contract)
    trained_on = {n: model.contract.columns[n].type for n in model.contract.features}
    if {n: contract.columns[n].type for n in contract.features} != trained_on:
        raise UsageError(f"the contract's features differ from those the model was trained on: {trained_on}")
    task = model.task
    if args.task is not None and args.task != task:
        raise UsageError(f"--task {args.task} contradicts the model, trained for task {task!r}; leave --task out or pass {task}")
    rule, production, typed = rule_and_holdout(args, rule_values, task, source, contract)
    metrics = model.metrics(labels(typed, model.contract), model.scores(model_frame(typed, model.contract)))
    return finish(metrics, production, rule, len(typed), task, output_dir)


if __name__ == "__main__":
    run(main)
