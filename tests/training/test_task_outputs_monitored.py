"""The built-in recipe's multiclass and regression answers, as the endpoint writes them into data capture, read by
the monitoring jobs: the model-quality job scores them; drift scores the requests and, with no prediction baseline
(train writes none for these tasks), reports no prediction drift instead of misreading the answers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

from training.baseline import compute_baseline
from training.capture import capture_line, read_probabilities
from training.contract import DataContract
from training.drift import DriftScorer, load_baseline
from training.model import TrainedModel
from training.quality import Labels, QualityScorer

ROWS = 150


def fitted(task: str) -> tuple[TrainedModel, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=ROWS), "b": rng.normal(size=ROWS)})
    if task == "regression":
        y = 3 * x["a"].to_numpy() + rng.normal(0, 0.1, ROWS)
        estimator, target = HistGradientBoostingRegressor(max_iter=20), {"type": "float"}
    else:
        y = np.digitize(x["a"].to_numpy(), [-0.5, 0.5])
        estimator, target = HistGradientBoostingClassifier(max_iter=20), {"type": "int"}
    contract = DataContract.model_validate({"task": task, "target": "y", "columns": {"a": {"type": "float"}, "b": {"type": "float"}, "y": target}})
    return TrainedModel(pipeline=Pipeline([("m", estimator)]).fit(x, y), contract=contract), x, y


@pytest.mark.parametrize("task, metric", [("regression", "rmse"), ("multiclass", "accuracy")])
def test_quality_job_scores_the_recipe_answers(task, metric):
    model, x, y = fitted(task)
    lines, labels = [], Labels()
    for i in range(ROWS):
        answer = json.dumps({"predictions": model.predictions(model.scores(x.iloc[[i]]))})
        lines.append(capture_line(f"{x.a[i]},{x.b[i]}", event_id=f"id-{i}", response_body=answer))
        labels.by_id[f"id-{i}"] = [float(y[i])]
    scorer = QualityScorer(task, labels, min_records=ROWS)
    scorer.feed(lines)
    report = scorer.report()
    value = report["metrics"][metric]
    expected = model.metrics(y, model.scores(x))[metric]
    assert value == pytest.approx(expected, rel=1e-6), report


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_drift_has_no_prediction_drift_for_these_tasks(task):
    model, x, y = fitted(task)
    frame = x.assign(y=y)
    baseline = load_baseline(json.loads(json.dumps(compute_baseline(frame, model.contract, None))), "baseline.json")
    assert baseline.prediction is None
    lines = [capture_line(f"{a},{b}", response_body=json.dumps({"predictions": model.predictions(model.scores(x.iloc[[i]]))}))
             for i, (a, b) in enumerate(zip(x.a, x.b))]
    assert read_probabilities(lines) == []  # a multiclass answer's "probabilities" is not a binary probability
    scorer = DriftScorer(baseline)
    scorer.feed(lines)
    report = scorer.report()
    assert report["prediction"] is None and report["records"] == {"scored": ROWS, "malformed": 0, "malformed_by_reason": {}}, report
