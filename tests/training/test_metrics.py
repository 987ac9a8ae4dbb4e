"""training.metrics (numpy only, for the Lambda jobs) gives scikit-learn's values on the same data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from training.metric_names import EVALUATION_METRICS, GATE_METRICS
from training.metrics import HIGHER_IS_BETTER, TASK_METRICS, binary_metrics, multiclass_metrics, regression_metrics, roc_auc, task_metrics


@pytest.fixture(params=[0, 1, 2])
def rng(request):
    return np.random.default_rng(request.param)


def test_binary_metrics_match_scikit_learn(rng):
    y = rng.integers(0, 2, 5000)
    # Rounded scores make many ties: the rank average must handle them as scikit-learn's AUC does.
    p = np.round(np.clip(0.3 * y + rng.normal(0.35, 0.25, y.size), 0, 1), 2)
    got = binary_metrics(y, p)
    predicted = (p >= 0.5).astype(int)
    assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(y, p), abs=1e-12)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    assert got["f1"] == pytest.approx(sk.f1_score(y, predicted))
    assert got["precision"] == pytest.approx(sk.precision_score(y, predicted))
    assert got["recall"] == pytest.approx(sk.recall_score(y, predicted))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, p, labels=[0, 1]), rel=1e-9)


def test_auc_is_undefined_with_one_class():
    assert roc_auc(np.ones(10, dtype=int), np.linspace(0, 1, 10)) is None


def test_multiclass_metrics_match_scikit_learn(rng):
    y = rng.integers(0, 4, 3000)
    predicted = np.where(rng.random(y.size) < 0.7, y, rng.integers(0, 5, y.size))  # a class y never has
    got = multiclass_metrics(y, predicted)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted))
    assert got["f1_macro"] == pytest.approx(sk.f1_score(y, predicted, average="macro"))


def test_regression_metrics_match_scikit_learn(rng):
    y = rng.normal(10, 3, 4000)
    predicted = y + rng.normal(0, 1, y.size)
    got = regression_metrics(y, predicted)
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, predicted)))
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, predicted))
    assert got["r2"] == pytest.approx(sk.r2_score(y, predicted))


def test_every_metric_has_a_direction():
    # What the quality job computes and what the built-in recipe's evaluation reports, every one with a direction.
    reported = {m for table in (TASK_METRICS, EVALUATION_METRICS, GATE_METRICS) for names in table.values() for m in names}
    assert reported == set(HIGHER_IS_BETTER)


def test_rejects_an_unknown_task():
    with pytest.raises(ValueError, match="unknown task 'ranking'; accepted: binary, multiclass, regression"):
        task_metrics("ranking", np.zeros(1), np.zeros(1))
