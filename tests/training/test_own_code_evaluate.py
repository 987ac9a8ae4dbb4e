"""``training.evaluate`` on a model of its own code with no evaluate of its own: the platform scores the holdout
through the model's serving handlers (code/inference.py in its model archive) and writes evaluation.json."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from training_steps import REPO, run_step

from infra.scaffold import new_model

pytest.importorskip("xgboost")
DEMAND = REPO / "examples" / "models" / "demand"


def train(script: Path, train_dir: Path, root: Path, *args: str) -> Path:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SM_")}, "OMP_NUM_THREADS": "1",
           "SM_CHANNEL_TRAIN": str(train_dir), "SM_MODEL_DIR": str(root / "model"), "SM_OUTPUT_DATA_DIR": str(root / "data")}
    done = subprocess.run([sys.executable, str(script), *args], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return root / "model"


def archive(model_dir: Path) -> Path:
    path = model_dir.parent / "model.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for item in sorted(model_dir.iterdir()):
            tar.add(item, arcname=item.name)
    return path


def evaluate(model: Path, test: Path, out: Path, *rule: str):
    step = run_step("evaluate", ["--model", str(model), "--test", str(test), "--output-dir", str(out), *rule], cwd=out.parent)
    document = out / "evaluation.json"
    return step, (json.loads(document.read_text()) if document.is_file() else None)


@pytest.fixture(scope="module")
def demand_model(tmp_path_factory) -> Path:
    """The demand model as its train.py writes it (trained once for the module)."""
    return train(DEMAND / "train.py", DEMAND / "sample", tmp_path_factory.mktemp("demand"), "--num_round", "60")


def test_demand_model_archive_is_judged_on_the_task_metrics_from_its_handlers(demand_model, tmp_path):
    model = demand_model
    step, doc = evaluate(archive(model), DEMAND / "sample", tmp_path / "eval", "--primary_metric", "rmse", "--minimum", "25")
    assert step.returncode == 0, step.stderr
    assert doc["task"] == "regression" and set(doc["metrics"]) == {"rmse", "mae", "r2"} and doc["verdict"] == "pass"
    assert doc["directions"] == {"rmse": "lower", "mae": "lower", "r2": "higher"}
    # The same numbers as the model's own validation metrics would give on the same rows: the platform used its answers.
    assert 0 < doc["metrics"]["rmse"] < 25 and "test:rmse=" in step.stdout


@pytest.mark.parametrize("task, rule, metrics", [
    ("binary", ["--primary_metric", "roc_auc", "--minimum", "0.6"], {"roc_auc", "accuracy", "f1", "log_loss", "precision", "recall"}),
    ("multiclass", ["--primary_metric", "f1_macro", "--minimum", "0.3"], {"accuracy", "f1_macro", "log_loss", "roc_auc_ovr"}),
])
def test_scaffolded_classifiers_are_judged_from_their_probabilities(tmp_path, task, rule, metrics):
    directory = new_model(f"own-{task}", "xgboost", task, tmp_path / "models")
    model = train(directory / "train.py", directory / "sample", tmp_path)
    step, doc = evaluate(model, directory / "sample", tmp_path / "eval", *rule)
    assert step.returncode == 0, step.stderr
    assert doc["task"] == task and set(doc["metrics"]) == metrics and doc["verdict"] == "pass", doc


def test_rejects_handlers_whose_answers_miss_the_task_field(demand_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(demand_model, model)
    handlers = model / "code" / "inference.py"
    handlers.write_text(handlers.read_text().replace('{"value": float(max(0.0, v))}', '{"units": float(v)}'))
    step, doc = evaluate(model, DEMAND / "sample", tmp_path / "eval", "--primary_metric", "rmse", "--minimum", "25")
    assert step.returncode == 2 and doc is None and "Traceback" not in step.stderr
    assert "a regression model's predictions must each carry a numeric 'value'" in step.stderr


def judge(tmp_path: Path, document: dict, *rule: str):
    (tmp_path / "own.json").write_text(json.dumps(document))
    out = tmp_path / "judged"
    step = run_step("evaluate", ["--metrics", str(tmp_path / "own.json"), "--output-dir", str(out), *rule], cwd=tmp_path)
    path = out / "evaluation.json"
    return step, (json.loads(path.read_text()) if path.is_file() else None)


def test_a_models_own_evaluation_is_judged_by_the_stack_rule(demand_model, tmp_path):
    model = demand_model
    own = json.loads((model.parent / "data" / "evaluation.json").read_text())
    step, doc = judge(tmp_path, own, "--primary_metric", "rmse", "--minimum", str(own["metrics"]["rmse"] / 2))
    assert step.returncode == 0, step.stderr
    assert doc["verdict"] == "fail" and doc["metrics"] == own["metrics"] and doc["task"] == "regression"
    assert doc["reasons"][0].startswith("rmse ") and "does not reach the minimum (at most" in doc["reasons"][0]


def test_a_metric_of_the_models_own_is_judged_in_its_declared_direction(tmp_path):
    own = {"format": "mlops-evaluation/1", "task": "regression", "rows": 90,
           "metrics": {"pinball_loss": 1.2, "rmse": 3.0}, "directions": {"pinball_loss": "lower", "rmse": "lower"}}
    production = tmp_path / "production.json"
    production.write_text(json.dumps({"pinball_loss": 1.0}))
    step, doc = judge(tmp_path, own, "--primary_metric", "pinball_loss", "--minimum", "2", "--max_regression", "0.1",
                      "--baseline-metrics", str(production))
    assert step.returncode == 0, step.stderr
    assert doc["verdict"] == "fail" and "worse than production 1.000000 by 0.200000" in doc["reasons"][0], doc
    assert doc["directions"]["pinball_loss"] == "lower" and doc["rule"]["direction"] == "lower"


@pytest.mark.parametrize("change, message", [
    ({"directions": {"rmse": "higher"}}, "directions.rmse is 'higher', but lower is better for rmse"),
    ({"directions": {}}, "directions.rmse is None; give higher or lower"),
    ({"metrics": {"rmse": "low"}}, "metrics.rmse is 'low', not a finite number"),
    ({"task": "ranking"}, "task 'ranking' is not one of binary, multiclass, regression"),
    ({"format": "mine"}, "not an evaluation.json"),
])
def test_rejects_an_own_evaluation_that_breaks_the_contract(tmp_path, change, message):
    own = {"format": "mlops-evaluation/1", "task": "regression", "rows": 90, "metrics": {"rmse": 3.0}, "directions": {"rmse": "lower"}, **change}
    step, doc = judge(tmp_path, own, "--primary_metric", "rmse", "--minimum", "5")
    assert step.returncode == 2 and doc is None and "Traceback" not in step.stderr
    assert message in step.stderr, step.stderr
