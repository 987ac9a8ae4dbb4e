"""The built-in recipe's other tasks in the scikit-learn 1.9-0 image: the dev stack's own Train job, with a
regression or multiclass contract in its contract channel, trains the task's estimator and prints its metrics."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from sm_agent import RUN, resolve, run_training_job
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


def _data(task: str, path, rows: int = 600):
    frame = generate(rows, seed=5).drop(columns=["churned"])
    rng = np.random.default_rng(5)
    tenure = frame["tenure_months"].to_numpy(dtype=float)
    if task == "regression":
        frame["spend"] = np.round(0.8 * tenure + rng.normal(0, 5, rows), 2).clip(0)
    else:
        frame["segment"] = np.digitize(tenure, [12, 36])
    write_csv(frame, path / "part-0.csv")
    return path


@pytest.mark.parametrize("task, target", [("regression", {"spend": {"type": "float", "min": 0}}),
                                          ("multiclass", {"segment": {"type": "int", "min": 0, "max": 2}})])
def test_train_job_trains_the_contract_task(runtime, dev, tmp_path, task, target):
    params = resolve(dev.parameters("Train"), RUN)
    params["HyperParameters"]["max_iter"] = "30"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in params["InputDataConfig"]}
    contract = tmp_path / "contract.json"
    contract.write_text(json.dumps({"task": task, "target": next(iter(target)), "columns": {**FEATURES, **target}}))
    s3 = dev.s3(**{channels["train"]: _data(task, tmp_path / "data"), channels["contract"]: contract})
    result = run_training_job(runtime, tmp_path / "job", params, s3)
    assert result.returncode == 0, result.logs()
    training = json.loads((result.opt_ml / "model" / "training.json").read_text())
    assert training["task"] == task and set(training["metrics"]["validation"]) == set(EVALUATION_METRICS[task])
    for name in EVALUATION_METRICS[task]:
        assert re.search(rf"^validation:{name}=[-0-9.]+$", result.stdout, re.M), result.logs()
    assert json.loads((result.opt_ml / "model" / "baseline.json").read_text())["prediction"] is None
