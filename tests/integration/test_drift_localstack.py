"""The drift job end to end against LocalStack: capture files in the capture bucket -> the Lambda handler
(run in-process, boto3 pointed at LocalStack) -> metrics in CloudWatch -> the alarm the component
declares (same definition) reaches ALARM -> the stack topic's message arrives in a subscribed SQS queue.

SageMaker is not in LocalStack, so the runs score against an explicit ``baseline_uri`` (a model
archive in the models bucket) instead of resolving the live model; that resolution is tested on moto
(tests/training/test_drift_job.py).
"""

from __future__ import annotations

import io
import json
import tarfile
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from components.monitoring.drift import REPORTS_PREFIX, alarm_definitions
from components.monitoring.drift_config import DriftConfig
from components.naming import endpoint_name
from training.baseline import compute_baseline
from training.capture import capture_line
from training.contract import load_contract
from training.drift import JobSettings, handler
from training.sample_data import CONTRACT_PATH, generate
from training.validate import validate_frame

pytestmark = pytest.mark.integration
PREFIX = "mlops"
WAIT_S = 60


@pytest.fixture
def stack() -> str:
    return f"it{uuid.uuid4().hex[:6]}"  # fresh names: a developer's long-running LocalStack may hold older ones


@pytest.fixture
def buckets(stack_buckets, stack):
    return stack_buckets(stack, "capture", "models")


@pytest.fixture
def topic_queue(aws_client, stack):
    """The stack topic with an SQS queue subscribed: what an alarm action publishes lands there."""
    sns, sqs = aws_client("sns"), aws_client("sqs")
    topic = sns.create_topic(Name=f"{PREFIX}-{stack}-notifications")["TopicArn"]
    queue = sqs.create_queue(QueueName=f"{PREFIX}-{stack}-alarms")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    yield topic, queue
    sqs.delete_queue(QueueUrl=queue)
    sns.delete_topic(TopicArn=topic)


@pytest.fixture
def alarms(aws_client):
    """Names of the alarms a test creates, deleted after it (LocalStack keeps evaluating them otherwise)."""
    names: list[str] = []
    yield names
    if names:
        aws_client("cloudwatch").delete_alarms(AlarmNames=names)


@pytest.fixture
def lambda_env(monkeypatch, localstack):
    """The Lambda's AWS environment, pointed at LocalStack."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", localstack)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    return monkeypatch


def model_archive(baseline: dict) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in (("model.joblib", b"model"), ("baseline.json", json.dumps(baseline).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def capture(frame, malformed: list[str]) -> bytes:
    features = load_contract(CONTRACT_PATH).features
    rows = [",".join("" if isinstance(v, float) and np.isnan(v) else str(v) for v in r) for r in frame[features].itertuples(index=False)]
    lines = [capture_line(r) for r in rows]
    for i, bad in enumerate(malformed):
        lines.insert(37 * (i + 1), bad)
    return ("\n".join(lines) + "\n").encode()


def last_run_time() -> datetime:
    """When the schedule's last run was: minutes back, not now (LocalStack's alarm reads [now - period, now) when it
    is created, and a datapoint from that very second would fall outside it). The capture hour and every run are
    placed from this one instant, so the scenario is the same at any minute of the hour."""
    return datetime.now(timezone.utc) - timedelta(minutes=5)


def deploy_model_and_capture(aws_client, buckets, stack, model, frame, malformed=(), *, last_run: datetime):
    """A trained model's archive in the models bucket and an hour of capture in the capture bucket: the complete
    hour before the first of three hourly runs ending at ``last_run`` (so all three windows hold it)."""
    contract = load_contract(CONTRACT_PATH)
    baseline = compute_baseline(validate_frame(generate(4000, seed=1), contract).frame, contract, np.linspace(0, 1, 20))
    s3 = aws_client("s3")
    key = f"{model}/training/run-1/model.tar.gz"
    s3.put_object(Bucket=buckets["models"], Key=key, Body=model_archive(baseline))
    hour = last_run.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    s3.put_object(
        Bucket=buckets["capture"],
        Key=f"{model}/{endpoint_name(PREFIX, stack, model)}/primary/{hour:%Y/%m/%d/%H}/capture-0.jsonl",
        Body=capture(frame, list(malformed)),
    )
    return f"s3://{buckets['models']}/{key}"


def run_hourly(lambda_env, buckets, stack, model, baseline_uri, *, last_run: datetime, runs=3) -> list[dict]:
    """The schedule's last ``runs`` invocations, an hour apart, ending at ``last_run``: the handler in this process."""
    settings = JobSettings(
        model=model, endpoint_name=endpoint_name(PREFIX, stack, model), capture_bucket=buckets["capture"],
        metric_namespace=f"mlops/{stack}/{model}", report_prefix=f"{model}/{REPORTS_PREFIX}/",
    )
    for key, value in settings.to_env().items():
        lambda_env.setenv(key, value)
    lambda_env.setenv("MLOPS_DRIFT_EVENT_BASELINE", "1")  # no SageMaker in LocalStack: the test names the baseline
    return [
        handler({"scheduled_time": (last_run - timedelta(hours=h)).isoformat(), "baseline_uri": baseline_uri})
        for h in range(runs - 1, -1, -1)
    ]


def create_alarm(aws_client, alarms, stack, model, topic, which: int):
    """Alarm ``which`` (0 drift, 1 capture stopped) exactly as DriftMonitor declares it, default config."""
    definition = alarm_definitions(PREFIX, stack, model, f"mlops/{stack}/{model}", DriftConfig())[which]
    aws_client("cloudwatch").put_metric_alarm(**definition.api(topic))
    alarms.append(definition.name)
    return definition


def settled_state(aws_client, name: str) -> str:
    cloudwatch, deadline = aws_client("cloudwatch"), time.monotonic() + WAIT_S
    while True:
        state = cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]
        if state != "INSUFFICIENT_DATA" or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def alarm_messages(aws_client, queue: str) -> list[dict]:
    sqs, deadline, found = aws_client("sqs"), time.monotonic() + WAIT_S, []
    while not found and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", []):
            found.append(json.loads(json.loads(message["Body"])["Message"]))
    return found


def test_drift_reaches_alarm_and_the_topic_and_malformed_records_are_counted(aws_client, buckets, topic_queue, lambda_env, stack, alarms):
    topic, queue = topic_queue
    drifted = generate(1500, seed=3, drift={"shift": {"tenure_months": 1.0}})
    malformed = ["{not json", capture_line("12,50.0,1,basic,north"), capture_line("x,50.0,1,basic,north,True")]
    last_run = last_run_time()
    uri = deploy_model_and_capture(aws_client, buckets, stack, "churn", drifted, malformed, last_run=last_run)

    results = run_hourly(lambda_env, buckets, stack, "churn", uri, last_run=last_run)

    assert [r["status"] for r in results] == ["drift"] * 3
    assert results[-1]["drifted_features"] == ["tenure_months"]
    assert results[-1]["records"]["scored"] == 1500 and results[-1]["records"]["malformed"] == 3
    stored = [o["Key"] for o in aws_client("s3").list_objects_v2(Bucket=buckets["capture"], Prefix=f"churn/{REPORTS_PREFIX}/")["Contents"]]
    partials = [k for k in stored if k.startswith(f"churn/{REPORTS_PREFIX}/partials/")]
    assert len(stored) - len(partials) == 3, "one report per run"
    assert len(partials) == 24 + 2, "one partial per capture hour of the three runs' windows, each hour counted once"
    cloudwatch = aws_client("cloudwatch")
    stats = cloudwatch.get_metric_statistics(
        Namespace=f"mlops/{stack}/churn", MetricName="MalformedRecords", Dimensions=[{"Name": "Model", "Value": "churn"}],
        StartTime=datetime.now(timezone.utc) - timedelta(hours=4), EndTime=datetime.now(timezone.utc) + timedelta(minutes=5),
        Period=3600, Statistics=["Maximum"],
    )["Datapoints"]
    assert [d["Maximum"] for d in stats] == [3.0] * 3
    features = {d["Value"] for m in cloudwatch.list_metrics(Namespace=f"mlops/{stack}/churn", MetricName="PSI")["Metrics"] for d in m["Dimensions"] if d["Name"] == "Feature"}
    assert features == set(load_contract(CONTRACT_PATH).features)

    definition = create_alarm(aws_client, alarms, stack, "churn", topic, 0)
    assert settled_state(aws_client, definition.name) == "ALARM"
    message = only_alarm(alarm_messages(aws_client, queue), definition.name)
    assert message["NewStateValue"] == "ALARM"
    assert message["Trigger"]["MetricName"] == "MaxDriftScore" and message["Trigger"]["Namespace"] == f"mlops/{stack}/churn"

    # The capture-stopped alarm of the same model sees records every period: OK.
    stopped = create_alarm(aws_client, alarms, stack, "churn", topic, 1)
    assert settled_state(aws_client, stopped.name) == "OK"


def test_fresh_samples_raise_no_alarm_and_missing_runs_raise_capture_stopped(aws_client, buckets, topic_queue, lambda_env, stack, alarms):
    topic, queue = topic_queue
    last_run = last_run_time()
    uri = deploy_model_and_capture(aws_client, buckets, stack, "steady", generate(1500, seed=4), last_run=last_run)
    results = run_hourly(lambda_env, buckets, stack, "steady", uri, last_run=last_run)
    assert [r["status"] for r in results] == ["no_drift"] * 3

    drift = create_alarm(aws_client, alarms, stack, "steady", topic, 0)
    assert settled_state(aws_client, drift.name) == "OK"

    # A model whose drift job never reported: missing data is breaching for the capture-stopped alarm.
    stopped = create_alarm(aws_client, alarms, stack, "silent", topic, 1)
    assert settled_state(aws_client, stopped.name) == "ALARM"
    message = only_alarm(alarm_messages(aws_client, queue), stopped.name)
    assert message["Trigger"]["MetricName"] == "RecordsScored"
    assert message["Trigger"]["Dimensions"] == [{"value": "silent", "name": "Model"}]


def only_alarm(messages: list[dict], name: str) -> dict:
    matching = [m for m in messages if m.get("AlarmName") == name]
    assert len(matching) == 1, messages
    return matching[0]
