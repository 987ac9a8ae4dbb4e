"""Prediction drift: the drift job reads the model's answers from each capture record's endpointOutput (the
serving handler's own response body) and scores them against the validation split's prediction bins."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import numpy as np
import pytest

from training.baseline import PREDICTION_EDGES, bin_proportions
from training.capture import capture_line, read_probabilities
from training.drift import METRIC_PREDICTION, BASELINE_FORMAT, DriftScorer, load_baseline, metric_data
from training.inference import render


def answer(probabilities) -> str:
    """The response body exactly as the endpoint's output_fn renders it."""
    body, _ = render([{"label": int(p >= 0.5), "probability": float(p)} for p in probabilities], "application/json")
    return body


def line(probabilities, request="1,2", base64_output=False) -> str:
    text = capture_line(request, response_body=answer(probabilities))
    if base64_output:
        record = json.loads(text)
        out = record["captureData"]["endpointOutput"]
        out.update(data=base64.b64encode(out["data"].encode()).decode(), encoding="BASE64")
        text = json.dumps(record)
    return text


def baseline(validation_probabilities) -> dict:
    return {
        "format": BASELINE_FORMAT,
        "features": {"x": {"kind": "numeric", "count": 10, "null_count": 0, "bins": {"edges": [0.5], "proportions": [0.5, 0.5]}}},
        "prediction": {"count": len(validation_probabilities), "mean": float(np.mean(validation_probabilities)),
                       "bins": {"edges": PREDICTION_EDGES.tolist(), "proportions": bin_proportions(validation_probabilities, PREDICTION_EDGES)}},
    }


def test_reads_every_answer_of_a_record_in_either_encoding():
    lines = [line([0.125, 0.75]), line([1e-05], base64_output=True), capture_line("1,2"), "{broken"]
    assert read_probabilities(lines) == [0.125, 0.75, 1e-05]


def test_a_feature_named_probability_in_the_request_is_not_an_answer():
    request = json.dumps({"instances": [{"probability": 0.99, "x": 1}]})
    assert read_probabilities([capture_line(request, "application/json", "JSON", response_body=answer([0.2]))]) == [0.2]


def test_shifted_answers_drift_and_steady_ones_do_not():
    rng = np.random.default_rng(3)
    validation = rng.beta(2, 5, 2000)
    doc = baseline(validation)
    steady, shifted = DriftScorer(load_baseline(doc, "t"), 0.2), DriftScorer(load_baseline(doc, "t"), 0.2)
    steady.feed([line([p], request=("0.25", "0.75")[i % 2]) for i, p in enumerate(rng.beta(2, 5, 2000))])
    shifted.feed([line([p], request=("0.25", "0.75")[i % 2]) for i, p in enumerate(rng.beta(5, 2, 2000))])
    calm, moved = steady.report()["prediction"], shifted.report()["prediction"]
    assert calm["count"] == moved["count"] == 2000
    assert calm["psi"] < 0.1 < 0.2 < moved["psi"] and moved["drifted"] and not calm["drifted"]
    assert shifted.report()["drifted_features"] == [], "the answers are not an input feature"
    when = datetime(2026, 11, 30, tzinfo=timezone.utc)
    [datum] = [d for d in metric_data(shifted.report(), "churn", when) if d["MetricName"] == METRIC_PREDICTION]
    assert datum["Value"] == moved["psi"] and datum["Dimensions"] == [{"Name": "Model", "Value": "churn"}]


def test_a_baseline_without_predictions_scores_inputs_only():
    doc = baseline([0.5])
    del doc["prediction"]
    scorer = DriftScorer(load_baseline(doc, "t"))
    scorer.feed([line([0.9], request="0.4")])
    report = scorer.report()
    assert report["prediction"] is None and report["records"]["scored"] == 1
    assert METRIC_PREDICTION not in {d["MetricName"] for d in metric_data(report, "m", datetime.now(timezone.utc))}


def test_rejects_a_broken_prediction_baseline():
    from training.drift import DriftError

    doc = baseline([0.5])
    doc["prediction"]["bins"]["proportions"] = [1.0]
    with pytest.raises(DriftError, match="'prediction' is not valid baseline statistics"):
        load_baseline(doc, "t")



def test_a_refused_request_naming_probability_adds_no_answer():
    garbage = json.dumps({"instances": [{"probability": 0.99, "unknown": 1}]})
    refused = capture_line(garbage, "application/json", "JSON", response_body='{"error": "unknown features"}')
    assert read_probabilities([refused]) == []
