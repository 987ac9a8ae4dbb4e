"""`mlops rollback` logic on moto's SageMaker: target selection, refusals, and the guarded update it issues.

moto has no UpdateEndpoint, so that one call is captured with a botocore before-call hook (botocore
still validates its parameters against the service model); everything else is moto's state.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from infra.ops.serving import OpsError, apply_rollback, plan_rollback

ENDPOINT = "mlops-prod-churn"
GROUP = "mlops-prod-churn"
ROLE = "arn:aws:iam::123456789012:role/mlops-prod-churn-sagemaker"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"


@pytest.fixture
def sm():
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        client.create_model_package_group(ModelPackageGroupName=GROUP)
        arns = []
        for status in ("Approved", "Approved", "Rejected", "Approved"):
            arns.append(
                client.create_model_package(
                    ModelPackageGroupName=GROUP,
                    ModelApprovalStatus=status,
                    InferenceSpecification={
                        "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://m/churn/model.tar.gz"}],
                        "SupportedContentTypes": ["text/csv"],
                        "SupportedResponseMIMETypes": ["application/json"],
                    },
                )["ModelPackageArn"]
            )
        client.arns = arns
        live(client, arns[3])  # version 4 serves
        yield client


def live(client, package_arn: str) -> None:
    client.create_model(ModelName="live-model", PrimaryContainer={"ModelPackageName": package_arn}, ExecutionRoleArn=ROLE, EnableNetworkIsolation=True)
    client.create_endpoint_config(
        EndpointConfigName="live-config",
        ProductionVariants=[{"VariantName": "primary", "ModelName": "live-model", "InstanceType": "ml.m5.large", "InitialInstanceCount": 2}],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": "s3://capture/churn/",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        },
        KmsKeyId="arn:aws:kms:us-east-1:123456789012:key/k",
    )
    client.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="live-config")


def capture_update(client) -> list[dict]:
    calls: list[dict] = []

    client.meta.events.register("before-parameter-build.sagemaker.UpdateEndpoint", lambda params, **_: calls.append(dict(params)))

    def hook(**_):
        return AWSResponse("https://sagemaker", 200, {}, None), {"EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}"}

    client.meta.events.register("before-call.sagemaker.UpdateEndpoint", hook)
    return calls


def plan(sm, to=None, pinned=None):
    return plan_rollback(sm, endpoint_name=ENDPOINT, group=GROUP, to=to, pinned=pinned, run_id="t1")


def test_default_target_is_the_previous_approved_version_skipping_rejected(sm):
    p = plan(sm)
    assert p.current.version == 4 and p.target.version == 2  # 3 was rejected


def test_explicit_version_and_guarded_update(sm):
    calls = capture_update(sm)
    created: list[dict] = []  # moto does not keep EnableNetworkIsolation, so the request itself is checked
    sm.meta.events.register("before-parameter-build.sagemaker.CreateModel", lambda params, **_: created.append(dict(params)))
    p = plan(sm, to="1")
    apply_rollback(sm, p)
    model = sm.describe_model(ModelName=p.model_name)
    assert model["PrimaryContainer"]["ModelPackageName"] == sm.arns[0]
    assert model["ExecutionRoleArn"] == ROLE
    assert created[0]["EnableNetworkIsolation"] is True
    config = sm.describe_endpoint_config(EndpointConfigName=p.endpoint_config_name)
    variant = config["ProductionVariants"][0]
    assert variant["VariantName"] == "primary" and variant["InitialInstanceCount"] == 2 and variant["ModelName"] == p.model_name
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://capture/churn/", "capture keeps feeding drift"
    assert config["KmsKeyId"].endswith(":key/k")
    assert calls == [{"EndpointName": ENDPOINT, "EndpointConfigName": p.endpoint_config_name, "RetainDeploymentConfig": True}]


def test_rollback_passes_every_rollback_alarm_explicitly(sm):
    """After a first deployment away from the placeholder (no 5xx alarm), a retained config would lack it."""
    from components.serving.endpoint import flow_deployment_configs
    from components.serving.config import EndpointConfig

    calls = capture_update(sm)
    every, first = flow_deployment_configs(ENDPOINT, EndpointConfig())
    apply_rollback(sm, plan(sm, to="1"), every)
    [call] = calls
    assert "RetainDeploymentConfig" not in call
    assert [a["AlarmName"] for a in call["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]] == [f"{ENDPOINT}-5xx-rate", f"{ENDPOINT}-latency-p99"]


def test_rejects_unknown_version_with_the_approved_ones(sm):
    with pytest.raises(OpsError, match=r"version '9' is not in group mlops-prod-churn; approved versions: 1, 2, 4"):
        plan(sm, to="9")


def test_rejects_unapproved_version(sm):
    with pytest.raises(OpsError, match="version 3 is Rejected, not Approved"):
        plan(sm, to="3")


def test_rejects_the_live_version(sm):
    with pytest.raises(OpsError, match="version 4 is already live"):
        plan(sm, to="4")


def test_rejects_when_pinned_by_config(sm):
    with pytest.raises(OpsError, match="pinned by config"):
        plan(sm, pinned=sm.arns[1])


def test_rejects_missing_endpoint():
    with mock_aws():
        client = boto3.client("sagemaker", region_name="us-east-1")
        with pytest.raises(OpsError, match="does not exist; deploy the stack first"):
            plan(client)


def test_cli_reports_refusal_without_traceback(sm, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from infra.cli.app import app
    from infra.config import STACKS_DIR

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    stack = tmp_path / "Pulumi.prod.yaml"
    stack.write_text((STACKS_DIR / "Pulumi.prod.yaml").read_text())
    result = CliRunner().invoke(app, ["rollback", "--file", str(stack), "--model", "churn", "--to", "3", "--no-wait"])
    assert result.exit_code == 2, result.output
    assert "version 3 is Rejected, not Approved" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
