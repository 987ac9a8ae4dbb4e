"""Serving: endpoint properties on the synthesized resources, and the IaC/CT ownership split."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from helpers import only

from components.serving.endpoint import ModelEndpoint, ModelEndpointArgs, bootstrap_model_archive, deployment_config
from components.serving.config import EndpointConfig
from infra.config import PROJECT_ROOT, ConfigError, config_from_keys

from components.context import StackContext  # noqa: E402
from components.notifications.ref import TopicRef  # noqa: E402
from components.platform.ref import PlatformRef  # noqa: E402
from components.security.ref import KeyRef  # noqa: E402
from components.storage.ref import BucketRef  # noqa: E402

KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-staging-churn/3"


def build(register, tmp_path, environment="prod", subnets=(), **endpoint):
    cfg = EndpointConfig.model_validate(endpoint)

    def program():
        ModelEndpoint(
            "endpoint-churn",
            ModelEndpointArgs(
                model="churn",
                # prefix mlops, stack prod: the endpoint is named mlops-prod-churn
                context=StackContext(prefix="mlops", stack="prod", environment=environment, region="us-east-1", account_id="123456789012"),
                platform=PlatformRef(
                    data=BucketRef.from_name("data-b", key=KeyRef(KEY)), models=BucketRef.from_name("models-b", key=KeyRef(KEY)),
                    capture=BucketRef.from_name("capture-b", key=KeyRef(KEY)), key=KeyRef(KEY),
                    topic=TopicRef("arn:aws:sns:us-east-1:123456789012:t"), log_group_prefix="/mlops/mlops-prod/",
                ),
                config=cfg,
                role_arn="arn:aws:iam::123456789012:role/r",
                inference_image="img:1",
                training_source=PROJECT_ROOT / "training",
                build_dir=tmp_path,
                subnet_ids=tuple(subnets),
                security_group_ids=("sg-0123456789abcdef0",) if subnets else (),
            ),
        )

    return register(program)


def test_model_is_network_isolated_with_code_inside_the_artifact(register, tmp_path):
    m = build(register, tmp_path)
    model = only(m.of_type("aws:sagemaker/model:Model"))
    assert model["inputs"]["enableNetworkIsolation"] is True
    container = model["inputs"]["primaryContainer"]
    environment = container["environment"]
    assert environment["SAGEMAKER_PROGRAM"] == "inference.py" and environment["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert environment["PIP_NO_BUILD_ISOLATION"] == "false"  # `serve` installs the code offline (tests/runtime proves it)
    artifact = only(m.of_type("aws:s3/bucketObjectv2:BucketObjectv2"))
    assert container["modelDataUrl"] == f"s3://models-b/{artifact['inputs']['key']}"
    assert artifact["inputs"]["kmsKeyId"] == KEY and artifact["retain_on_delete"]
    assert "vpcConfig" not in model["inputs"]


def test_model_runs_in_the_stack_vpc_when_given(register, tmp_path):
    model = only(build(register, tmp_path, subnets=["subnet-0123456789abcdef0"]).of_type("aws:sagemaker/model:Model"))
    assert model["inputs"]["vpcConfig"] == {"subnets": ["subnet-0123456789abcdef0"], "securityGroupIds": ["sg-0123456789abcdef0"]}


def test_bootstrap_archive_is_deterministic_and_marked():
    from components.code import package as code_package

    first = bootstrap_model_archive(PROJECT_ROOT / "training")
    code_package._ENTRIES.clear()  # a second real build, not the per-process memo (that would make equality trivial)
    code_package._ARCHIVES.clear()
    second = bootstrap_model_archive(PROJECT_ROOT / "training")
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        names = tar.getnames()
        assert json.load(tar.extractfile("bootstrap.json"))["bootstrap"] is True
    assert "code/inference.py" in names and "code/training/inference.py" in names and "model.joblib" not in names


def test_endpoint_config_encrypts_and_captures(register, tmp_path):
    m = build(register, tmp_path, capture={"sampling_percent": 40})
    config = only(m.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"))["inputs"]
    assert config["kmsKeyArn"] == KEY
    capture = config["dataCaptureConfig"]
    assert capture["destinationS3Uri"] == "s3://capture-b/churn/"
    assert capture["initialSamplingPercentage"] == 40 and capture["enableCapture"] is True and capture["kmsKeyId"] == KEY
    assert [o["captureMode"] for o in capture["captureOptions"]] == ["Input", "Output"]
    assert capture["captureContentTypeHeader"] == {"csvContentTypes": ["text/csv"], "jsonContentTypes": ["application/json"]}


def test_prod_defaults_to_two_instances_and_autoscales_on_invocations(register, tmp_path):
    m = build(register, tmp_path)
    variant = only(only(m.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"))["inputs"]["productionVariants"])
    assert variant["initialInstanceCount"] == 2 and variant["variantName"] == "primary"
    target = only(m.of_type("aws:appautoscaling/target:Target"))["inputs"]
    assert target["resourceId"] == "endpoint/mlops-prod-churn/variant/primary"
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 4)
    policy = only(m.of_type("aws:appautoscaling/policy:Policy"))["inputs"]
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    assert policy["policyType"] == "TargetTrackingScaling"
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == "SageMakerVariantInvocationsPerInstance"
    assert tracking["targetValue"] == 100
    dev = build(register, tmp_path, environment="dev")
    assert only(only(dev.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"))["inputs"]["productionVariants"])["initialInstanceCount"] == 1


def test_serverless_endpoint_has_no_instances_scaling_or_host_alarms(register, tmp_path):
    m = build(register, tmp_path, serverless={"memory_mb": 3072, "max_concurrency": 8})
    variant = only(only(m.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"))["inputs"]["productionVariants"])
    assert variant["serverlessConfig"] == {"memorySizeInMb": 3072, "maxConcurrency": 8}
    assert "instanceType" not in variant
    assert not m.of_type("aws:appautoscaling/target:Target")
    names = {a["inputs"]["name"] for a in m.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert names == {"mlops-prod-churn-5xx-rate", "mlops-prod-churn-4xx-rate", "mlops-prod-churn-latency-p99"}


def test_every_alarm_watches_the_endpoint_variant_and_notifies(register, tmp_path):
    alarms = build(register, tmp_path).of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert len(alarms) == 5
    want = {"EndpointName": "mlops-prod-churn", "VariantName": "primary"}
    for a in alarms:
        i = a["inputs"]
        metrics = [q["metric"] for q in i.get("metricQueries", []) if "metric" in q] or [i]
        assert all(mm["dimensions"] == want for mm in metrics), i["name"]
        assert i["alarmActions"] == ["arn:aws:sns:us-east-1:123456789012:t"] and i["okActions"] == i["alarmActions"]
        assert i["treatMissingData"] == "notBreaching"
    latency = only([a for a in alarms if a["inputs"]["name"].endswith("latency-p99")])["inputs"]
    assert latency["extendedStatistic"] == "p99" and latency["metricName"] == "ModelLatency" and latency["threshold"] == 1_000_000
    rate = only([a for a in alarms if a["inputs"]["name"].endswith("5xx-rate")])["inputs"]
    assert {q["id"] for q in rate["metricQueries"]} == {"errors", "invocations", "rate"}


@pytest.mark.parametrize(
    "deployment, routing",
    [
        ({"strategy": "canary", "canary_percent": 20}, {"type": "CANARY", "canarySize": {"type": "CAPACITY_PERCENT", "value": 20}}),
        ({"strategy": "linear", "linear_step_percent": 10}, {"type": "LINEAR", "linearStepSize": {"type": "CAPACITY_PERCENT", "value": 10}}),
        ({"strategy": "all_at_once"}, {"type": "ALL_AT_ONCE"}),
    ],
)
def test_blue_green_with_rollback_on_the_models_alarms(register, tmp_path, deployment, routing):
    m = build(register, tmp_path, deployment={**deployment, "bake_seconds": 900})
    endpoint = only(m.of_type("aws:sagemaker/endpoint:Endpoint"))
    policy = endpoint["inputs"]["deploymentConfig"]["blueGreenUpdatePolicy"]
    assert {k: v for k, v in policy["trafficRoutingConfiguration"].items() if k != "waitIntervalInSeconds"} == routing
    assert policy["terminationWaitInSeconds"] == 900
    rollback = [a["alarmName"] for a in endpoint["inputs"]["deploymentConfig"]["autoRollbackConfiguration"]["alarms"]]
    assert rollback == ["mlops-prod-churn-5xx-rate", "mlops-prod-churn-latency-p99"]
    alarm_urns = {a["urn"] for a in m.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    assert alarm_urns <= set(endpoint["depends_on"]), "the alarms exist before the endpoint can watch them"


def test_ownership_split_unpinned(register, tmp_path):
    """The CT flow moves the live configuration: pulumi up ignores it and never deletes what may be live."""
    m = build(register, tmp_path)
    endpoint = only(m.of_type("aws:sagemaker/endpoint:Endpoint"))
    assert endpoint["ignore_changes"] == ["endpointConfigName"]
    assert endpoint["inputs"]["name"] == "mlops-prod-churn"
    config = only(m.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"))
    assert config["retain_on_delete"] and "name" not in config["inputs"] and config["inputs"]["namePrefix"] == "mlops-prod-churn-boot-"
    assert only(m.of_type("aws:sagemaker/model:Model"))["retain_on_delete"]


def test_ownership_split_pinned_promotion(register, tmp_path):
    """Naming a model package in config (promotion) makes Pulumi own the live model: a reviewed change."""
    m = build(register, tmp_path, model_package=PACKAGE)
    assert only(m.of_type("aws:sagemaker/endpoint:Endpoint"))["ignore_changes"] == []
    model = only(m.of_type("aws:sagemaker/model:Model"))["inputs"]
    assert model["primaryContainer"] == {"modelPackageName": PACKAGE} and model["enableNetworkIsolation"] is True
    assert not m.of_type("aws:s3/bucketObjectv2:BucketObjectv2")


def test_shipped_stacks_serve_every_model(manifests):
    for stack, m in manifests.items():
        for model in m.outputs["models"]:
            endpoint = only([e for e in m.of_type("aws:sagemaker/endpoint:Endpoint") if f"endpoint-{model}-" in e["urn"]])
            assert endpoint["inputs"]["name"] == f"mlops-{stack}-{model}"
            assert m.outputs["models"][model]["endpoint_name"] == f"mlops-{stack}-{model}"
            config = only([c for c in m.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration") if f"endpoint-{model}-" in c["urn"]])
            assert config["inputs"]["kmsKeyArn"] == m.outputs["kms_key_arn"]
            assert config["inputs"]["dataCaptureConfig"]["destinationS3Uri"] == f"s3://{m.outputs['capture_bucket_name']}/{model}/"


def test_dashboard_shows_each_model(manifests):
    m = manifests["prod"]
    dash = only(m.of_type("aws:cloudwatch/dashboard:Dashboard"))
    body = json.loads(dash["inputs"]["dashboardBody"])
    metrics = [w["properties"]["metrics"] for w in body["widgets"] if w["type"] == "metric"]
    flat = [row for rows in metrics for row in rows]
    assert ["AWS/SageMaker", "Invocations", "EndpointName", "mlops-prod-churn", "VariantName", "primary"] in flat
    assert ["mlops/prod/churn", "MaxDriftScore", "Model", "churn"] in flat
    assert ["mlops/prod/churn", "PredictionDrift", "Model", "churn"] in flat


def test_rejects_realtime_and_serverless_together():
    keys = {
        "mlops:environment": "dev",
        "mlops:region": "us-east-1",
        "mlops:models": {"churn": {"data_contract": "training/sample/contract.json", "endpoint": {"realtime": {}, "serverless": {}}}},
    }
    with pytest.raises(ConfigError, match="endpoint.realtime and endpoint.serverless are exclusive"):
        config_from_keys(keys, "t")


def test_rejects_bad_model_package_arn():
    keys = {
        "mlops:environment": "prod",
        "mlops:region": "us-east-1",
        "mlops:models": {"churn": {"data_contract": "training/sample/contract.json", "endpoint": {"model_package": "churn:3"}}},
    }
    with pytest.raises(ConfigError, match=r"config.mlops:models.churn.endpoint.model_package: 'churn:3' is not accepted"):
        config_from_keys(keys, "t")


def test_deployment_config_shape_matches_the_sagemaker_api():
    """The same builder feeds the CT flow's UpdateEndpoint; botocore's model must accept its output."""
    import botocore.session
    from botocore.validate import ParamValidator

    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for("DeploymentConfig")
    for strategy in ("canary", "linear", "all_at_once"):
        cfg = EndpointConfig.model_validate({"deployment": {"strategy": strategy}})
        report = ParamValidator().validate(deployment_config(cfg, ["a-5xx-rate"]), shape)
        assert not report.has_errors(), report.generate_report()


def test_variants_wait_deliberately_for_the_container_to_start(manifests):
    # The image's server takes tens of seconds to its first /ping 200 (README, "Serving"): the timeout is set, not
    # left to SageMaker's default, in Pulumi's configuration and in every configuration the CT flow creates.
    for manifest in manifests.values():
        for config in manifest.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration"):
            for variant in config["inputs"]["productionVariants"]:
                if "serverlessConfig" not in variant:
                    assert variant["containerStartupHealthCheckTimeoutInSeconds"] == 600, variant
        for machine in manifest.of_type("aws:sfn/stateMachine:StateMachine"):
            definition = machine["inputs"]["definition"]
            if '"ProductionVariants"' in definition and "ServerlessConfig" not in definition:
                assert '"ContainerStartupHealthCheckTimeoutInSeconds": 600' in definition


def test_rejects_a_startup_health_check_timeout_outside_what_sagemaker_accepts():
    with pytest.raises(ValueError, match="startup_health_check_seconds"):
        EndpointConfig.model_validate({"realtime": {"startup_health_check_seconds": 30}})
