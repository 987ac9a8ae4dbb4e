"""QualityMonitor as the real program registers it for the dev stack (quality on for churn): the job's
function and least-privilege role, schedule, alarms; the quality config's validation."""

from __future__ import annotations

import json

import pytest
from helpers import only, policy

from components.monitoring.quality import labels_stopped_alarm_name, quality_alarm_name
from infra.config import ConfigError, config_from_keys
from training.quality import QualityJob

DEV = "mlops-dev-churn-quality"
CAPTURE = "mlops-dev-capture-123456789012-us-east-1"
DATA = "mlops-dev-data-123456789012-us-east-1"


@pytest.fixture(scope="module")
def dev(manifests):
    return manifests["dev"]


def statements(m, role_name: str) -> list[dict]:
    return [s for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role_name for s in policy(p)["Statement"]]


def objects(stmts: list[dict], action: str) -> set[str]:
    return {s["Resource"] for s in stmts if action in s["Action"]}


def test_function_runs_the_quality_handler_with_the_models_settings(dev):
    fn = only([f for f in dev.of_type("aws:lambda/function:Function") if f["inputs"]["name"] == DEV])["inputs"]
    drift = only([f for f in dev.of_type("aws:lambda/function:Function") if f["inputs"]["name"] == "mlops-dev-churn-drift"])["inputs"]
    assert fn["handler"] == "training.quality.handler"
    assert (fn["s3Bucket"], fn["s3Key"], fn["codeSha256"]) == (drift["s3Bucket"], drift["s3Key"], drift["codeSha256"]), "one package for both jobs"
    job = QualityJob.from_env(fn["environment"]["variables"])
    assert job == QualityJob(
        model="churn", task="binary", endpoint_name="mlops-dev-churn", capture_bucket=CAPTURE, data_bucket=DATA,
        metric_namespace="mlops/dev/churn", window_hours=24, label_delay_hours=24, min_records=100,
    )
    assert fn["kmsKeyArn"].startswith("arn:aws:kms:")
    assert fn["ephemeralStorage"] == {"size": 512}, "the join spills to /tmp: sized by quality.lambda_ephemeral_storage_mb"
    assert "ephemeralStorage" not in drift, "the drift job keeps Lambda's default"


def test_role_reads_only_the_models_captures_and_labels_and_writes_only_its_reports(dev):
    stmts = statements(dev, DEV)
    assert objects(stmts, "s3:GetObject") == {f"arn:aws:s3:::{CAPTURE}/churn/*", f"arn:aws:s3:::{DATA}/churn/ground-truth/*"}
    assert objects(stmts, "s3:PutObject") == {f"arn:aws:s3:::{CAPTURE}/churn/quality-reports/*"}
    by_sid = {s["Sid"]: s for s in stmts if "Sid" in s}
    assert by_sid["PublishOwnMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "mlops/dev/churn"}}
    assert sorted(s.get("Sid") for s in stmts if s["Resource"] == "*") == ["PublishOwnMetrics", "Traces"], "namespace-conditioned, and X-Ray's resource-less APIs"
    assert not any(a.startswith(("sagemaker:", "iam:")) for s in stmts for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))


def test_schedule_invokes_the_function(dev):
    schedule = only([s for s in dev.of_type("aws:scheduler/schedule:Schedule") if s["inputs"]["name"] == DEV])["inputs"]
    assert schedule["scheduleExpression"] == "rate(1 day)"
    assert schedule["target"]["arn"].endswith(f":function/{DEV}")
    assert json.loads(schedule["target"]["input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert statements(dev, "mlops-dev-churn-quality-schedule") == [
        {"Sid": "InvokeDriftJob", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": schedule["target"]["arn"]}
    ]


def test_alarms_hold_the_model_to_the_gates_standard(dev):
    alarms = {a["inputs"]["name"]: a["inputs"] for a in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    quality, stopped = alarms[quality_alarm_name("mlops", "dev", "churn")], alarms[labels_stopped_alarm_name("mlops", "dev", "churn")]
    topic = only(dev.of_type("aws:sns/topic:Topic"))
    for alarm in (quality, stopped):
        assert alarm["namespace"] == "mlops/dev/churn" and alarm["dimensions"] == {"Model": "churn"} and alarm["period"] == 86400
        assert len(alarm["alarmActions"]) == 1 and alarm["alarmActions"][0].endswith(":" + topic["inputs"]["name"])
    # dev's gate: roc_auc at least 0.7
    assert (quality["metricName"], quality["comparisonOperator"], quality["threshold"], quality["treatMissingData"]) == (
        "Quality_roc_auc", "LessThanThreshold", 0.7, "notBreaching")
    assert (stopped["metricName"], stopped["comparisonOperator"], stopped["threshold"], stopped["treatMissingData"]) == (
        "QualityLabelsReceived", "LessThanThreshold", 1, "breaching")


def test_a_lower_is_better_metric_alarms_above_its_threshold(manifests):
    from components.monitoring.quality import alarm_definitions
    from components.monitoring.quality_config import QualityConfig

    [quality, _labels] = alarm_definitions("mlops", "dev", "churn", "ns", QualityConfig(enabled=True), "log_loss", 0.5, "lower")
    assert (quality.metric_name, quality.comparison_operator, quality.statistic) == ("Quality_log_loss", "GreaterThanThreshold", "Maximum")


def test_staging_and_prod_have_no_quality_job_until_enabled(manifests):
    for stack in ("staging", "prod"):
        assert manifests[stack].of_type("mlops:monitoring:QualityMonitor") == []


def keys(**quality):
    return {
        "mlops:region": "us-east-1",
        "mlops:environment": "dev",
        "mlops:models": {"churn": {"data_contract": "training/sample/contract.json", "evaluation": {"primary_metric": "roc_auc", "minimum": 0.7}, "quality": quality}},
    }


def test_rejects_quality_without_capture():
    k = keys(enabled=True)
    k["mlops:models"]["churn"]["endpoint"] = {"capture": {"enabled": False}}
    with pytest.raises(ConfigError, match="quality.enabled: true needs endpoint.enabled and endpoint.capture.enabled"):
        config_from_keys(k, "test")


def test_rejects_a_metric_of_another_task():
    with pytest.raises(ConfigError, match="quality.metric 'rmse' is not a binary metric; accepted: roc_auc"):
        config_from_keys(keys(enabled=True, metric="rmse", threshold=1.0), "test")


def test_rejects_an_unknown_metric():
    with pytest.raises(ConfigError, match="unknown metric 'auc'"):
        config_from_keys(keys(enabled=True, metric="auc"), "test")


def test_rejects_a_standard_that_would_never_alarm():
    k = keys(enabled=True)
    k["mlops:models"]["churn"]["evaluation"] = {"primary_metric": "roc_auc", "minimum": 0.0}
    with pytest.raises(ConfigError, match="quality.threshold is needed"):
        config_from_keys(k, "test")
    with pytest.raises(ConfigError, match="quality.threshold is needed"):
        config_from_keys(keys(enabled=True, metric="f1"), "test")
    assert config_from_keys(keys(enabled=True, metric="f1", threshold=0.6), "test").models["churn"].quality_standard == ("f1", 0.6, "higher")


def test_the_dashboard_shows_live_quality_against_its_standard(manifests):
    def quality_widgets(stack):
        dash = only(manifests[stack].of_type("aws:cloudwatch/dashboard:Dashboard"))
        return [w for w in json.loads(dash["inputs"]["dashboardBody"])["widgets"] if w["type"] == "metric" and "quality" in w["properties"]["title"].lower()]

    [widget] = quality_widgets("dev")
    assert widget["properties"]["metrics"] == [["mlops/dev/churn", "Quality_roc_auc", "Model", "churn"]]
    assert widget["properties"]["annotations"] == {"horizontal": [{"label": "production standard", "value": 0.7}]}
    assert quality_widgets("prod") == [], "no panel for a model whose quality is not monitored"


def test_retrain_on_alarm_adds_a_rule_that_starts_training_on_the_quality_alarm(dev, manifests):
    [rule] = [r for r in dev.of_type("aws:cloudwatch/eventRule:EventRule") if r["name"] == "pipeline-churn-quality"]
    pattern = json.loads(rule["inputs"]["eventPattern"])
    assert pattern["detail"] == {"alarmName": [quality_alarm_name("mlops", "dev", "churn")], "state": {"value": ["ALARM"]}}
    [target] = [t for t in dev.of_type("aws:cloudwatch/eventTarget:EventTarget") if t["name"] == "pipeline-churn-quality-target"]
    assert target["inputs"]["arn"].endswith(":stateMachine:mlops-dev-churn-training:current"), "training runs start on the training alias"
    assert '"trigger": "quality"' in target["inputs"]["inputTransformer"]["inputTemplate"]
    assert "deadLetterConfig" in target["inputs"]


def test_without_retrain_on_alarm_the_quality_alarm_only_notifies(manifests):
    from infra.config import STACKS_DIR, read_stack_keys
    from infra.review.synth import synth_keys

    keys = read_stack_keys(STACKS_DIR / "Pulumi.dev.yaml")
    keys["mlops:models"]["churn"]["quality"]["retrain_on_alarm"] = False
    m = synth_keys("dev", keys, "us-east-1")
    assert m.of_type("mlops:monitoring:QualityMonitor")
    assert not [r for r in m.of_type("aws:cloudwatch/eventRule:EventRule") if r["name"].endswith("-quality")]


def test_the_quality_jobs_own_errors_alarm(dev):
    alarms = {a["inputs"]["name"]: a["inputs"] for a in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    errors = alarms["mlops-dev-churn-quality-job-errors"]
    assert (errors["namespace"], errors["metricName"], errors["dimensions"]) == ("AWS/Lambda", "Errors", {"FunctionName": DEV})


def test_failed_runs_land_in_an_encrypted_dead_letter_queue_with_an_alarm(dev):
    fn = only([f for f in dev.of_type("aws:lambda/function:Function") if f["inputs"]["name"] == DEV])["inputs"]
    queue = only([q for q in dev.of_type("aws:sqs/queue:Queue") if q["inputs"]["name"] == f"{DEV}-dlq"])["inputs"]
    assert fn["deadLetterConfig"]["targetArn"].endswith(f"/{DEV}-dlq") and queue["kmsMasterKeyId"].startswith("arn:aws:kms:")
    assert fn["tracingConfig"] == {"mode": "Active"} and fn["reservedConcurrentExecutions"] == 2
    alarms = {a["inputs"]["name"]: a["inputs"] for a in dev.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarms["mlops-dev-churn-quality-failed"]["dimensions"] == {"QueueName": f"{DEV}-dlq"}
    role = only([r for r in dev.of_type("aws:iam/role:Role") if r["inputs"]["name"] == DEV])["inputs"]
    assert role["permissionsBoundary"] == "arn:aws:iam::123456789012:policy/mlops-dev-boundary", "the stack's boundary, as every stack role"


@pytest.mark.parametrize(
    ("quality", "message"),
    [
        ({"schedule": "cron(0 3 * * ? *)"}, "alarm_period_seconds is required with a cron schedule"),
        ({"schedule": "rate(30 minutes)"}, "at least an hour"),
        ({"labels_stopped_periods": 8}, "labels_stopped_periods \\(8\\) x the alarm period \\(86400 s\\) exceeds the 7 days"),
        ({"schedule": "cron(0 3 * * SUN *)", "alarm_period_seconds": 86400}, "exactly one of day-of-month and day-of-week must be '\\?'"),
    ],
)
def test_rejects_a_quality_schedule_cloudwatch_cannot_alarm_on(quality, message):
    from pydantic import ValidationError

    from components.monitoring.quality_config import QualityConfig

    with pytest.raises(ValidationError, match=message):
        QualityConfig(enabled=True, **quality)


def test_in_a_stack_with_a_vpc_the_quality_function_runs_in_its_private_subnets():
    from infra.config import STACKS_DIR, read_stack_keys
    from infra.review.synth import synth_keys

    keys = read_stack_keys(STACKS_DIR / "Pulumi.staging.yaml")
    keys["mlops:models"]["churn"]["quality"] = {"enabled": True, "threshold": 0.7}
    m = synth_keys("stagingq", keys, "us-east-1")
    fn = only([f for f in m.of_type("aws:lambda/function:Function") if f["inputs"]["name"] == "mlops-stagingq-churn-quality"])["inputs"]
    drift = only([f for f in m.of_type("aws:lambda/function:Function") if f["inputs"]["name"] == "mlops-stagingq-churn-drift"])["inputs"]
    assert fn["vpcConfig"] == drift["vpcConfig"] and len(fn["vpcConfig"]["subnetIds"]) == 2, "the drift job's subnets and group"
    [network] = [p for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["name"] == "quality-churn-network"]
    assert network["inputs"]["role"] == "mlops-stagingq-churn-quality"
