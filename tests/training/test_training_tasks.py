"""The built-in recipe beyond binary labels: multiclass classification and regression, trained by ``training/train.py``
and judged by ``training/evaluate.py`` as SageMaker runs them, served by the handlers, with the task from the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from training_steps import run_step

from training.contract import DataContract, EvaluationRule
from training.inference import input_fn, model_fn, output_fn, predict_fn
from training.metric_names import EVALUATION_METRICS
from training.sample_data import generate, write_csv

FEATURES = {
    "tenure_months": {"type": "int", "min": 0, "max": 240},
    "monthly_charges": {"type": "float", "min": 0, "max": 500, "max_null_rate": 0.05},
    "support_calls": {"type": "int", "min": 0, "max": 50},
    "plan": {"type": "category", "allowed": ["basic", "standard", "premium"]},
    "region": {"type": "category", "allowed": ["north", "south", "east", "west"]},
    "autopay": {"type": "bool"},
}
TARGETS = {
    # A spend figure driven by tenure and plan; a three-way segment from tenure and support calls.
    "regression": ("spend", {"type": "float", "min": 0}),
    "multiclass": ("segment", {"type": "int", "min": 0, "max": 2}),
}


def frame_for(task: str, rows: int, seed: int):
    frame = generate(rows, seed=seed).drop(columns=["churned"])
    rng = np.random.default_rng(seed)
    tenure = frame["tenure_months"].to_numpy(dtype=float)
    if task == "regression":
        plan = frame["plan"].map({"basic": 10.0, "standard": 25.0, "premium": 60.0}).to_numpy(dtype=float)
        frame["spend"] = np.round(plan + 0.8 * tenure + rng.normal(0, 5, rows), 2).clip(0)
    else:
        calls = frame["support_calls"].to_numpy(dtype=float)
        frame["segment"] = np.where(tenure > 36, 2, np.where(calls > 2, 1, 0))
        flip = rng.random(rows) < 0.05
        frame.loc[flip, "segment"] = rng.integers(0, 3, int(flip.sum()))
    return frame


@pytest.fixture(scope="module", params=["regression", "multiclass"])
def task_run(request, tmp_path_factory):
    task = request.param
    root = tmp_path_factory.mktemp(task)
    target, spec = TARGETS[task]
    contract = {"task": task, "target": target, "columns": {**FEATURES, target: spec}}
    (root / "contract.json").write_text(json.dumps(contract))
    write_csv(frame_for(task, 1200, 1), root / "train" / "part-0.csv")
    write_csv(frame_for(task, 400, 2), root / "test" / "holdout.csv")
    env = {"SM_CHANNEL_TRAIN": str(root / "train"), "SM_MODEL_DIR": str(root / "model"),
           "SM_OUTPUT_DATA_DIR": str(root / "output"), "MLOPS_CONTRACT": str(root / "contract.json")}
    step = run_step("train", ["--max_iter", "40", "--task", task], env, cwd=root, script=True)
    assert step.returncode == 0, step.stderr
    return task, root, step


def evaluate(root: Path, *rule: str, out: str = "eval"):
    args = ["--model", str(root / "model"), "--test", str(root / "test"), "--output-dir", str(root / out), *rule]
    step = run_step("evaluate", args, cwd=root)
    document = root / out / "evaluation.json"
    return step, json.loads(document.read_text()) if document.is_file() else None


RULES = {"regression": ["--primary_metric", "rmse", "--minimum", "50"], "multiclass": ["--primary_metric", "f1_macro", "--minimum", "0.5"]}


@pytest.fixture(scope="module")
def judged(task_run):
    """The trained model evaluated once on the holdout under its task's rule (read by the tests that need it)."""
    task, root, _ = task_run
    return evaluate(root, *RULES[task])


def test_train_prints_and_records_the_task_metrics(task_run):
    task, root, step = task_run
    training = json.loads((root / "model" / "training.json").read_text())
    assert training["task"] == task
    assert set(training["metrics"]["validation"]) == set(EVALUATION_METRICS[task])
    for name in EVALUATION_METRICS[task]:
        assert f"validation:{name}=" in step.stdout, step.stdout
    assert "roc_auc=" not in step.stdout  # no binary metric for these tasks
    baseline = json.loads((root / "model" / "baseline.json").read_text())
    assert baseline["prediction"] is None  # prediction drift reads binary probabilities only
    assert ("mean" if task == "regression" else "class_rates") in baseline["target"]


def test_evaluation_json_carries_task_metrics_and_directions(task_run, judged):
    task, root, _ = task_run
    step, doc = judged
    assert step.returncode == 0, step.stderr
    assert doc["format"] == "mlops-evaluation/1" and doc["task"] == task and doc["verdict"] == "pass", doc
    assert set(doc["metrics"]) == set(EVALUATION_METRICS[task])
    expected = {"rmse": "lower", "mae": "lower", "r2": "higher"} if task == "regression" else \
        {"accuracy": "higher", "f1_macro": "higher", "log_loss": "lower", "roc_auc_ovr": "higher"}
    assert doc["directions"] == expected


@pytest.mark.parametrize("task_run", ["regression"], indirect=True)
def test_lower_is_better_metric_fails_above_its_ceiling_and_on_regression(task_run, judged, tmp_path):
    _, root, _ = task_run
    _, first = judged  # --primary_metric rmse --minimum 50
    rmse = first["metrics"]["rmse"]
    _, strict = evaluate(root, "--primary_metric", "rmse", "--minimum", str(rmse / 2), out="strict")
    assert strict["verdict"] == "fail" and "does not reach the minimum (at most" in strict["reasons"][0], strict
    better = tmp_path / "production.json"
    better.write_text(json.dumps({"rmse": rmse * 0.5}))
    _, regressed = evaluate(root, "--primary_metric", "rmse", "--minimum", "50", "--baseline-metrics", str(better), out="reg")
    assert regressed["verdict"] == "fail" and "worse than production" in regressed["reasons"][0], regressed
    assert regressed["comparison"]["rmse"]["delta"] == pytest.approx(rmse * 0.5)


def test_rejects_a_primary_metric_the_task_does_not_report(task_run):
    task, root, _ = task_run
    step, doc = evaluate(root, "--primary_metric", "roc_auc", "--minimum", "0.5", out="wrong")
    assert step.returncode == 2 and doc is None and "Traceback" not in step.stderr
    accepted = "'rmse', 'mae' or 'r2'" if task == "regression" else "'accuracy', 'f1_macro', 'log_loss' or 'roc_auc_ovr'"
    assert f"primary_metric: Input should be {accepted} (got 'roc_auc')" in step.stderr, step.stderr


def test_rejects_a_task_hyperparameter_that_contradicts_the_contract(task_run, tmp_path):
    task, root, _ = task_run
    env = {"SM_CHANNEL_TRAIN": str(root / "train"), "SM_MODEL_DIR": str(tmp_path / "m"),
           "SM_OUTPUT_DATA_DIR": str(tmp_path / "o"), "MLOPS_CONTRACT": str(root / "contract.json")}
    step = run_step("train", ["--task", "binary"], env, cwd=tmp_path, script=True)
    assert step.returncode == 2 and "Traceback" not in step.stderr
    assert f"hyperparameter task 'binary' contradicts the data contract's task {task!r}" in step.stderr


def test_endpoint_answers_per_task(task_run):
    task, root, _ = task_run
    served = model_fn(str(root / "model"))
    body = b"12,70.5,1,basic,north,true\n48,20.0,0,premium,south,false\n"
    answer, content_type = output_fn(predict_fn(input_fn(body, "text/csv"), served), "application/json")
    predictions = json.loads(answer)["predictions"]
    assert len(predictions) == 2 and content_type == "application/json"
    if task == "regression":
        assert all(set(p) == {"value"} and isinstance(p["value"], float) for p in predictions)
        assert predictions[1]["value"] > predictions[0]["value"]  # premium, long tenure: the larger spend
    else:
        for p in predictions:
            assert set(p) == {"label", "probabilities"} and set(p["probabilities"]) == {"0", "1", "2"}
            assert sum(p["probabilities"].values()) == pytest.approx(1.0)
            assert p["label"] == int(max(p["probabilities"], key=p["probabilities"].get))
        assert predictions[1]["label"] == 2  # 48 months of tenure: the long-tenure segment


@pytest.mark.parametrize(
    "task, spec, message",
    [
        ("regression", {"type": "category"}, "a regression target must be int or float (task 'regression')"),
        ("multiclass", {"type": "float"}, "a multiclass label must be int"),
        ("binary", {"type": "float"}, "a binary label must be int (0/1) or bool"),
    ],
)
def test_rejects_a_target_type_the_task_cannot_learn(task, spec, message):
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DataContract.model_validate({"task": task, "target": "y", "columns": {"x": {"type": "int"}, "y": spec}})


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"primary_metric": "pinball_loss"}, "is not a metric the platform knows"),
        ({"primary_metric": "rmse", "direction": "higher", "minimum": 5}, "contradicts rmse, for which lower is better"),
        ({"primary_metric": "mae"}, "set minimum to the highest acceptable mae"),
        ({"primary_metric": "r2", "minimum": 1.5}, "above 1, the largest r2"),
        ({"primary_metric": "bad name!", "direction": "lower"}, "should match pattern"),
    ],
)
def test_rejects_an_evaluation_rule_that_cannot_judge(rule, message):
    with pytest.raises(ValidationError, match=message):
        EvaluationRule.model_validate(rule)


def test_rule_takes_any_metric_with_its_direction():
    rule = EvaluationRule(primary_metric="pinball_loss", direction="lower", minimum=3.0, max_regression=0.5)
    assert rule.judge({"pinball_loss": 2.0}, {"pinball_loss": 1.6})[0] is True
    assert rule.judge({"pinball_loss": 2.0}, {"pinball_loss": 1.4})[0] is False
    assert EvaluationRule.from_cli_args(rule.to_cli_args()) == (rule, [])
