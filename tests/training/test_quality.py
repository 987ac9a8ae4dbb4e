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


# ---------------------------------------------------------------------------------------------------------------
# The scheduled run against moto's S3 and CloudWatch


@pytest.fixture
def s3_cloudwatch(monkeypatch):
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("capture", "data"):
            s3.create_bucket(Bucket=bucket)
        yield s3, boto3.client("cloudwatch", region_name="us-east-1")


def test_a_run_joins_late_labels_and_publishes_metrics_and_a_report(s3_cloudwatch):
    from training.quality import QualityJob, run_job

    s3, cloudwatch = s3_cloudwatch
    job = QualityJob(model="churn", task="binary", endpoint_name="ep", capture_bucket="capture", data_bucket="data",
                     metric_namespace="mlops/test/churn", window_hours=2, label_delay_hours=1, min_records=4)
    when = datetime(2026, 11, 30, 12, 5, tzinfo=timezone.utc)
    # Captured at 09:xx and 10:xx (the window), labelled at 11:xx and 12:xx; one capture at 11:xx is outside it.
    y = [1, 0, 1, 0, 1, 1]
    p = [0.9, 0.2, 0.4, 0.1, 0.8, 0.7]
    for hour, ids in ((9, range(0, 3)), (10, range(3, 6)), (11, range(6, 7))):
        lines = [capture(f"e{i}", [{"probability": p[i % 6]}]) for i in ids]
        s3.put_object(Bucket="capture", Key=f"churn/ep/AllTraffic/2026/11/30/{hour:02d}/f.jsonl", Body="\n".join(lines).encode())
    s3.put_object(Bucket="data", Key="churn/ground-truth/2026/11/30/11/a.jsonl", Body="\n".join(ground_truth_record(f"e{i}", [y[i]]) for i in range(3)).encode())
    s3.put_object(Bucket="data", Key="churn/ground-truth/2026/11/30/12/b.jsonl", Body="\n".join(ground_truth_record(f"e{i}", [y[i % 6]]) for i in range(3, 7)).encode())

    report = run_job(job, when, s3, cloudwatch)
    assert report["records"] == {"requests": 6, "labels_received": 7, "joined": 6, "unmatched_labels": 1, "malformed": 0, "malformed_by_reason": {}}
    assert report["metrics"] == pytest.approx(binary_metrics(np.array(y), np.array(p)))
    stored = json.loads(s3.get_object(Bucket="capture", Key="churn/quality-reports/2026/11/30/12.json")["Body"].read())
    assert stored["metrics"] == pytest.approx(report["metrics"])
    names = {m["MetricName"] for m in cloudwatch.list_metrics(Namespace="mlops/test/churn")["Metrics"]}
    assert {"Quality_roc_auc", "Quality_log_loss", "QualityJoinedRecords", "QualityLabelsReceived"} <= names


def test_compact_records_read_without_a_parse_give_what_the_full_parse_gives():
    """SageMaker writes compact JSON; those lines take the sliced path, spaced ones the parse: same join, and a
    truncated compact line is malformed, never half-read."""
    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 300)
    p = rng.random(300)

    def lines(compact: bool):
        out = []
        for i, v in enumerate(p):
            text = capture(f"e{i}", [{"label": int(v >= 0.5), "probability": float(v)}], inference_id=f"r{i}" if i % 3 else None)
            out.append(json.dumps(json.loads(text), separators=(",", ":")) if compact else text)
        return out

    def labels(compact: bool):
        gt = Labels()
        records = [ground_truth_record(f"r{i}" if i % 3 else f"e{i}", [int(v)]) for i, v in enumerate(y)]
        gt.feed(records if compact else [json.dumps(json.loads(r)) for r in records])
        return gt

    fast, slow = QualityScorer("binary", labels(True), 1), QualityScorer("binary", labels(False), 1)
    fast.feed(lines(True) + [lines(True)[1][:-5]])
    slow.feed(lines(False))
    assert fast.labels.by_id == slow.labels.by_id
    assert fast.report()["metrics"] == slow.report()["metrics"] and fast.report()["records"]["joined"] == 300
    assert fast.report()["records"]["malformed_by_reason"] == {"bad_json": 1}
