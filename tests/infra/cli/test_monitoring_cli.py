"""`mlops models` and `mlops status` against moto (SageMaker registry and endpoint, Step Functions, S3 reports,
CloudWatch alarms): what an on-call engineer reads first, and a clear message for an undeployed stack."""

from __future__ import annotations

import json
import shutil
import subprocess

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from components.naming import bucket_name
from components.pipeline.spec import state_machine_name
from infra.cli.app import app
from infra.config import STACKS_DIR

runner = CliRunner()
ACCOUNT = "123456789012"
REGION = "us-east-1"
GROUP = ENDPOINT = "mlops-dev-churn"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/mlops-dev-churn-sagemaker"


@pytest.fixture
def aws(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    stack_file = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(STACKS_DIR / "Pulumi.dev.yaml", stack_file)
    with mock_aws():
        yield stack_file


def deploy(with_versions: bool = True):
    s3 = boto3.client("s3", region_name=REGION)
    for role in ("data", "capture"):
        s3.create_bucket(Bucket=bucket_name("mlops", "dev", role, ACCOUNT, REGION))
    capture = bucket_name("mlops", "dev", "capture", ACCOUNT, REGION)
    for hour, psi in (("2026/11/30/10", 0.05), ("2026/11/30/11", 0.31)):
        s3.put_object(Bucket=capture, Key=f"churn/drift-reports/{hour}.json", Body=json.dumps({"status": "drift" if psi > 0.2 else "no_drift", "max_psi": psi}))
    # The drift job's hour partials live next to its reports (and list after them): never taken for a report.
    s3.put_object(Bucket=capture, Key="churn/drift-reports/partials/2026/11/30/10.json", Body=json.dumps({"format": "mlops-drift-partial/1"}))
    s3.put_object(Bucket=capture, Key="churn/quality-reports/2026/11/30/00.json",
                  Body=json.dumps({"status": "ok", "metrics": {"roc_auc": 0.71}, "records": {"joined": 512}}))
    sm = boto3.client("sagemaker", region_name=REGION)
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    arns = []
    if with_versions:
        for auc, status in ((0.83, "Approved"), (0.86, "PendingManualApproval")):
            arns.append(sm.create_model_package(
                ModelPackageGroupName=GROUP, ModelApprovalStatus=status,
                InferenceSpecification={"Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://m/model.tar.gz"}],
                                        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]},
                CustomerMetadataProperties={"metric:test:roc_auc": f"{auc:.6f}", "code_sha256": "ab" * 32, "training_job": f"mlops-dev-churn-train-{len(arns)}",
                                            "data:train:version_id": f"v{len(arns)}", "data:train:s3_uri": "s3://d/churn/train/"},
            )["ModelPackageArn"])
        sm.create_model(ModelName="m1", PrimaryContainer={"ModelPackageName": arns[0]}, ExecutionRoleArn=ROLE)
        sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[{"VariantName": "primary", "ModelName": "m1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c1")
    sfn = boto3.client("stepfunctions", region_name=REGION)
    machine = sfn.create_state_machine(name=state_machine_name("mlops", "dev", "churn"), definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
                                       roleArn=f"arn:aws:iam::{ACCOUNT}:role/x")["stateMachineArn"]
    sfn.start_execution(stateMachineArn=machine, name="run-1")
    cw = boto3.client("cloudwatch", region_name=REGION)
    for name in ("mlops-dev-churn-drift", "mlops-dev-churn-quality"):
        cw.put_metric_alarm(AlarmName=name, Namespace="mlops/dev/churn", MetricName="X", Statistic="Maximum", Period=3600, EvaluationPeriods=1,
                            Threshold=1, ComparisonOperator="GreaterThanThreshold", Dimensions=[{"Name": "Model", "Value": "churn"}])
    cw.set_alarm_state(AlarmName="mlops-dev-churn-drift", StateValue="ALARM", StateReason="test")
    return arns


def test_models_lists_versions_with_lineage_and_marks_the_live_one(aws):
    arns = deploy()
    result = runner.invoke(app, ["models", "--file", str(aws), "--model", "churn", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["version"], r["live"], r["approval"]) for r in rows] == [(1, True, "Approved"), (2, False, "PendingManualApproval")]
    assert rows[1]["metrics"] == {"test:roc_auc": 0.86} and rows[1]["arn"] == arns[1]
    assert rows[0]["data"]["train:version_id"] == "v0" and rows[0]["code_sha256"] == "ab" * 32 and rows[0]["training_job"] == "mlops-dev-churn-train-0"
    table = runner.invoke(app, ["models", "--file", str(aws), "--model", "churn"], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "live" in table.output and "0.8600" in table.output


def test_status_shows_live_version_runs_latest_reports_and_alarms(aws):
    deploy()
    result = runner.invoke(app, ["status", "--file", str(aws), "--json"])
    assert result.exit_code == 0, result.output
    [churn] = [row for row in json.loads(result.output) if row["model"] == "churn"]
    assert churn["model"] == "churn" and churn["endpoint_status"] == "InService" and churn["live_version"] == 1
    assert [r["name"] for r in churn["runs"]] == ["run-1"]
    assert churn["drift"]["key"] == "churn/drift-reports/2026/11/30/11.json" and churn["drift"]["max_psi"] == 0.31, "the newest report"
    assert churn["quality"]["metrics"] == {"roc_auc": 0.71}
    assert churn["alarms"] == ["mlops-dev-churn-drift"], "only alarms in ALARM"
    table = runner.invoke(app, ["status", "--file", str(aws)], env={"COLUMNS": "250"})
    assert table.exit_code == 0 and "mlops-dev-churn-drift" in table.output and "roc_auc 0.7100" in table.output


def test_a_model_with_no_versions_says_so(aws):
    deploy(with_versions=False)
    result = runner.invoke(app, ["models", "--file", str(aws), "--model", "churn"])
    assert result.exit_code == 0 and "has no registered version yet" in result.output
    [churn] = [row for row in json.loads(runner.invoke(app, ["status", "--file", str(aws), "--json"]).output) if row["model"] == "churn"]
    assert churn["endpoint_status"] is None and churn["live_version"] is None


def test_an_undeployed_stack_is_a_clear_error(aws):
    for args in (["status", "--file", str(aws)], ["models", "--file", str(aws), "--model", "churn"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "stack 'dev' is not deployed" in result.output and "pulumi up --stack dev" in result.output
        assert "Traceback" not in result.output


def test_an_unknown_model_is_a_clear_error(aws):
    deploy()
    result = runner.invoke(app, ["models", "--file", str(aws), "--model", "fraud"])
    assert result.exit_code == 2 and "has no model 'fraud'; its models: churn" in result.output


# ---------------------------------------------------------------------------------------------------------------
# mlops report, rendered by a real browser


def chromium() -> str:
    import os

    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: `make install` installs Debian's chromium for the report test", pytrace=False)
        pytest.skip("chromium is not installed (Debian's chromium package; `make install` installs it as root)")
    return path


def browser(*args: str, tmp_path) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}"]
    return subprocess.run([chromium(), *flags, *args], capture_output=True, text=True, timeout=180)


HOSTILE = "<script>alert(1)</script>"


def test_report_page_shows_history_drift_and_quality_in_a_browser(aws, tmp_path):
    from datetime import datetime, timedelta, timezone

    from PIL import Image

    from infra.ops.report import COLORS

    deploy()
    s3 = boto3.client("s3", region_name=REGION)
    capture = bucket_name("mlops", "dev", "capture", ACCOUNT, REGION)
    for obj in s3.list_objects_v2(Bucket=capture)["Contents"]:  # deploy()'s dated reports: this test counts its own
        s3.delete_object(Bucket=capture, Key=obj["Key"])
    now = datetime.now(timezone.utc)
    s3.put_object(Bucket=capture, Key=f"churn/drift-reports/{now - timedelta(days=3):%Y/%m/%d/%H}.json", Body=b"{}")  # outside --days 2
    for h in range(3):
        when = now - timedelta(hours=3 - h)
        s3.put_object(Bucket=capture, Key=f"churn/drift-reports/{when:%Y/%m/%d/%H}.json", Body=json.dumps(
            {"status": "no_drift", "features": {"tenure_months": {"psi": 0.05 * h}, HOSTILE: {"psi": 0.1}}}))
        s3.put_object(Bucket=capture, Key=f"churn/quality-reports/{when:%Y/%m/%d/%H}.json", Body=json.dumps(
            {"status": "ok", "metrics": {"roc_auc": 0.8 - 0.05 * h, "log_loss": None}, "records": {"joined": 100 + h}}))
    page = tmp_path / "report.html"
    result = runner.invoke(app, ["report", "--file", str(aws), "--model", "churn", "--out", str(page), "--days", "2"])
    assert result.exit_code == 0, result.output
    assert "2 version(s), 3 drift and 3 quality report(s)" in result.output

    dom = browser("--dump-dom", page.as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr
    assert "Metric history across versions" in dom.stdout and "Live version: <strong>1</strong>" in dom.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom.stdout and HOSTILE not in dom.stdout, "data is escaped, never markup"
    assert dom.stdout.count("<svg") == 4 and "production standard 0.7" in dom.stdout

    shot = tmp_path / "report.png"
    rendered = browser(f"--screenshot={shot}", "--window-size=900,2200", "--hide-scrollbars", page.as_uri(), tmp_path=tmp_path)
    assert rendered.returncode == 0 and shot.exists(), rendered.stderr
    found = {color: n for n, color in Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 24)}
    counts = {c: found.get(tuple(int(c[i : i + 2], 16) for i in (1, 3, 5)), 0) for c in COLORS[:2]}
    # The markers are 8x8 squares in exactly the series' colors: each chart's first series shows, and the drift
    # and quality charts have a second one.
    assert all(n >= 64 * 3 for n in counts.values()), counts
