"""The model-quality job end to end against LocalStack: predictions in the capture bucket and labels delivered to
the data bucket -> the Lambda handler (run in-process, boto3 pointed at LocalStack) -> quality metrics in
CloudWatch -> the alarm QualityMonitor declares (same definition) -> the stack topic's message in an SQS queue.

A degraded model is one whose labels disagree with its predictions: its live AUC falls under the standard.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from test_drift_localstack import alarm_messages, alarms, lambda_env, settled_state, topic_queue  # noqa: F401 (fixtures)

from components.naming import endpoint_name
from components.monitoring.quality import alarm_definitions
from components.monitoring.quality_config import QualityConfig
from training.quality import QualityJob, ground_truth_record, handler

pytestmark = pytest.mark.integration
PREFIX = "mlops"
CONFIG = QualityConfig(enabled=True, schedule="rate(1 hour)", window_hours=1, label_delay_hours=1, min_records=50)


@pytest.fixture
def stack() -> str:
    return f"iq{uuid.uuid4().hex[:6]}"


@pytest.fixture
def buckets(stack_buckets, stack):
    return stack_buckets(stack, "capture", "data")


def serve_and_label(aws_client, buckets, stack, model, agree: bool, n: int = 400) -> datetime:
    """An hour of captured predictions (two hours before the run) and, an hour later, their labels; returns the run's time."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, n)
    p = np.clip(np.where(y == 1, 0.75, 0.25) + rng.normal(0, 0.15, n), 0, 1)
    labels = y if agree else 1 - y
    # The run's time (its datapoints' timestamp) a few minutes back: LocalStack's alarm reads [now - period, now)
    # at creation, so a datapoint from the same second would not be in it yet.
    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    served, delivered = now - timedelta(hours=2), now - timedelta(hours=1)
    lines = []
    for i, prob in enumerate(p):
        output = {"observedContentType": "application/json", "mode": "OUTPUT", "data": json.dumps({"predictions": [{"label": int(prob >= 0.5), "probability": float(prob)}]}), "encoding": "JSON"}
        lines.append(json.dumps({"captureData": {"endpointInput": {"data": "1,2", "encoding": "CSV"}, "endpointOutput": output},
                                 "eventMetadata": {"eventId": f"e{i}", "inferenceId": f"req-{i}", "inferenceTime": served.isoformat()}, "eventVersion": "0"}))
    s3 = aws_client("s3")
    s3.put_object(Bucket=buckets["capture"], Key=f"{model}/{endpoint_name(PREFIX, stack, model)}/primary/{served:%Y/%m/%d/%H}/c.jsonl", Body="\n".join(lines).encode())
    body = "\n".join(ground_truth_record(f"req-{i}", [int(v)]) for i, v in enumerate(labels))
    s3.put_object(Bucket=buckets["data"], Key=f"{model}/ground-truth/{delivered:%Y/%m/%d/%H}/labels.jsonl", Body=body.encode())
    return now


def run(lambda_env, buckets, stack, model, now):  # noqa: F811 (the fixture, passed on)
    job = QualityJob(model=model, task="binary", endpoint_name=endpoint_name(PREFIX, stack, model), capture_bucket=buckets["capture"],
                     data_bucket=buckets["data"], metric_namespace=f"mlops/{stack}/{model}", window_hours=CONFIG.window_hours,
                     label_delay_hours=CONFIG.label_delay_hours, min_records=CONFIG.min_records)
    for key, value in job.to_env().items():
        lambda_env.setenv(key, value)
    return handler({"scheduled_time": now.isoformat()})


def create_alarms(aws_client, alarms, stack, model, topic):  # noqa: F811
    definitions = alarm_definitions(PREFIX, stack, model, f"mlops/{stack}/{model}", CONFIG, "roc_auc", 0.7, "higher")
    for d in definitions:
        aws_client("cloudwatch").put_metric_alarm(**d.api(topic))
        alarms.append(d.name)
    return definitions


def test_a_degraded_model_raises_the_quality_alarm_on_the_topic(aws_client, buckets, topic_queue, lambda_env, stack, alarms):  # noqa: F811
    topic, queue = topic_queue
    now = serve_and_label(aws_client, buckets, stack, "churn", agree=False)
    result = run(lambda_env, buckets, stack, "churn", now)
    assert result["status"] == "ok" and result["records"]["joined"] == 400
    assert result["metrics"]["roc_auc"] < 0.1, "labels that disagree with the predictions"
    report_keys = [o["Key"] for o in aws_client("s3").list_objects_v2(Bucket=buckets["capture"], Prefix="churn/quality-reports/")["Contents"]]
    assert report_keys == [f"churn/quality-reports/{now:%Y/%m/%d/%H}.json"]

    quality, labels_stopped = create_alarms(aws_client, alarms, stack, "churn", topic)
    assert settled_state(aws_client, quality.name) == "ALARM"
    [message] = [m for m in alarm_messages(aws_client, queue) if m["AlarmName"] == quality.name]
    assert message["NewStateValue"] == "ALARM" and message["Trigger"]["MetricName"] == "Quality_roc_auc"
    assert settled_state(aws_client, labels_stopped.name) == "OK", "labels arrived in the period"


def test_a_healthy_model_stays_ok(aws_client, buckets, topic_queue, lambda_env, stack, alarms):  # noqa: F811
    topic, _ = topic_queue
    now = serve_and_label(aws_client, buckets, stack, "steady", agree=True)
    result = run(lambda_env, buckets, stack, "steady", now)
    assert result["metrics"]["roc_auc"] > 0.9
    quality, _ = create_alarms(aws_client, alarms, stack, "steady", topic)
    assert settled_state(aws_client, quality.name) == "OK"
