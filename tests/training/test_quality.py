"""training.quality: captured predictions joined with Model Monitor ground-truth records, scored per task."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import numpy as np
import pytest

from training.metrics import binary_metrics, regression_metrics
from training.quality import (
    Labels,
    QualityError,
    QualityScorer,
    ground_truth_key,
    ground_truth_record,
    label_hours,
    metric_data,
    read_label_file,
)


def capture(event_id: str, predictions, inference_id: str | None = None, base64_output: bool = False) -> str:
    body = json.dumps({"predictions": predictions})
    output = {"observedContentType": "application/json", "mode": "OUTPUT", "data": body, "encoding": "JSON"}
    if base64_output:
        output.update(data=base64.b64encode(body.encode()).decode(), encoding="BASE64")
    meta = {"eventId": event_id, "inferenceTime": "2026-11-30T10:00:00Z", **({"inferenceId": inference_id} if inference_id else {})}
    return json.dumps({"captureData": {"endpointInput": {"data": "1,2", "encoding": "CSV"}, "endpointOutput": output}, "eventMetadata": meta, "eventVersion": "0"})


def test_joined_metrics_equal_the_metrics_of_the_matched_pairs():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 400)
    p = np.clip(0.4 * y + rng.random(400) * 0.6, 0, 1)
    labels = Labels()
    labels.feed(ground_truth_record(f"id-{i}", [int(v)]) for i, v in enumerate(y))
    scorer = QualityScorer("binary", labels, min_records=10)
    scorer.feed(capture(f"id-{i}", [{"label": int(v >= 0.5), "probability": float(v)}], base64_output=i % 2 == 0) for i, v in enumerate(p))
    scorer.feed([capture("never-labelled", [{"label": 1, "probability": 0.9}])])
    report = scorer.report(model="churn")
    assert report["status"] == "ok"
    assert report["records"]["joined"] == 400 and report["records"]["requests"] == 401
    assert report["metrics"] == pytest.approx(binary_metrics(y, p))
    assert report["directions"]["log_loss"] == "lower"


def test_the_inference_id_is_preferred_and_the_later_label_wins():
    labels = Labels()
    labels.feed([ground_truth_record("client-42", [0]), ground_truth_record("client-42", [1]), ground_truth_record("evt-1", [0])])
    scorer = QualityScorer("regression", labels, min_records=1)
    scorer.feed([capture("evt-1", [{"value": 3.0}], inference_id="client-42")])
    report = scorer.report()
    assert report["records"]["joined"] == 1
    assert report["metrics"] == pytest.approx(regression_metrics(np.array([1.0]), np.array([3.0])))
    assert report["records"]["unmatched_labels"] == 1  # evt-1: its request carried an inference id


def test_a_multi_row_request_takes_one_label_per_row_and_mismatches_are_counted():
    labels = Labels()
    labels.feed([ground_truth_record("a", [1, 0]), ground_truth_record("b", [1])])
    scorer = QualityScorer("binary", labels, min_records=1)
    scorer.feed([capture("a", [{"probability": 0.8}, {"probability": 0.3}]), capture("b", [{"probability": 0.1}, {"probability": 0.2}])])
    report = scorer.report()
    assert report["records"]["joined"] == 2
    assert report["records"]["malformed_by_reason"] == {"label_count_mismatch": 1}


def test_corrupt_records_are_counted_never_raised():
    labels = Labels()
    labels.feed(["not json", json.dumps({"groundTruthData": {"data": "x,y", "encoding": "CSV"}, "eventMetadata": {"eventId": "q"}}), ground_truth_record("ok", [1])])
    scorer = QualityScorer("binary", labels, min_records=1)
    scorer.feed(["{", json.dumps({"captureData": {"endpointOutput": {"data": "1"}}, "eventMetadata": {}}), capture("ok", ["garbage"])])
    report = scorer.report()
    assert report["records"]["malformed_by_reason"] == {"bad_json": 2, "no_id": 1, "bad_output": 1, "bad_label": 1}
    assert report["status"] == "insufficient_data" and report["metrics"] == {}


def test_too_few_joined_records_publish_counts_but_no_scores():
    labels = Labels()
    labels.feed([ground_truth_record("a", [1])])
    scorer = QualityScorer("binary", labels, min_records=5)
    scorer.feed([capture("a", [{"probability": 0.9}])])
    when = datetime(2026, 11, 30, 12, tzinfo=timezone.utc)
    names = {d["MetricName"] for d in metric_data(scorer.report(), "churn", when)}
    assert names == {"QualityJoinedRecords", "QualityLabelsReceived", "QualityUnmatchedLabels"}


def test_window_and_label_span():
    captures, label_span = label_hours(datetime(2026, 11, 30, 12, 30, tzinfo=timezone.utc), window_hours=2, delay_hours=3)
    assert [h.hour for h in captures] == [7, 8]
    assert [h.hour for h in label_span] == [7, 8, 9, 10, 11, 12]
    assert ground_truth_key("churn", captures[0], "x") == "churn/ground-truth/2026/11/30/07/x.jsonl"


def test_reads_csv_and_json_lines_label_files():
    assert read_label_file("inference_id,label\nabc,1\n\ndef,0\n", "l.csv") == [("abc", "1"), ("def", "0")]
    assert read_label_file('{"inference_id": "abc", "label": true}\n', "l.jsonl") == [("abc", "1")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("id,label\na,1\n", "the first line must be the header inference_id,label"),
        ("inference_id,label\na,1,2\n", "l:2: 3 columns"),
        ("inference_id,label\n,1\n", "l:2: inference_id must be 1 to 64 characters"),
        ("inference_id,label\n" + "x" * 65 + ",1\n", "l:2: inference_id must be 1 to 64 characters"),
        ('{"inference_id": "a"}\n', "l:1: each line needs the keys inference_id and label"),
        ('{"inference_id": "a", "label": 1}\n{oops\n', "l:2: not JSON"),
    ],
)
def test_rejects_a_bad_label_file(text, message):
    with pytest.raises(QualityError, match=message):
        read_label_file(text, "l")


def test_rejects_an_unknown_task():
    with pytest.raises(QualityError, match="accepted: binary, multiclass, regression"):
        QualityScorer("ranking", Labels())
