"""DriftMonitor and DriftCode: the function, its least-privilege role, schedule, log group and alarms as
registered, both engines; the Lambda package; the drift config's validation; which models get one."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import subprocess
import sys
import zipfile

import pytest
from helpers import children_of, only, policy

from components.monitoring.drift import (
    LAMBDA_MODULES,
    DriftCode,
    DriftCodeArgs,
    DriftMonitor,
    DriftMonitorArgs,
    alarm_definitions,
    build_lambda_package,
    capture_stopped_alarm_name,
)
from components.context import StackContext
from components.monitoring.drift_config import DriftConfig
from components.model.registry import Model, ModelArgs
from components.naming import drift_alarm_name
from components.platform.platform import Platform, PlatformArgs
from infra.config import ConfigError, config_from_keys
from infra.program import BUILD_DIR, TRAINING_SOURCE
from infra.review.synth import run_program, synth_keys
from training.drift import JobSettings

ACCOUNT = "123456789012"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:mlops-test-notifications"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
CODE_URI = "s3://mlops-test-models/code/abc/sourcedir.tar.gz"
FUNCTION = "mlops-test-churn-drift"
# protect: the monitor's log group is protected; the topic is the platform's own (mlops-test-notifications)
CONTEXT = StackContext(prefix="mlops", stack="test", environment="dev", region="us-east-1", account_id=ACCOUNT, protect=True)


def build(register, **drift):
    """Platform, model, package and the model's DriftMonitor under the recording mock engine."""
    def program():
        platform = Platform(
            "platform", PlatformArgs(context=CONTEXT, access_logs=False)
        )
        model = Model("model-churn", ModelArgs(model="churn", context=CONTEXT, platform=platform.ref, image_uris=[IMAGE]))
        code = DriftCode(
            "drift-code",
            DriftCodeArgs(source_dir=TRAINING_SOURCE, bucket_name=platform.models_bucket.bucket_name, kms_key_arn=platform.kms_key_arn, build_dir=BUILD_DIR),
        )
        DriftMonitor(
            "drift-churn",
            DriftMonitorArgs(
                model=model, config=DriftConfig(**drift), code=code, processing_image=IMAGE, code_package_uri=CODE_URI,
            ),
        )

    return register(program, stack="test")


def role_statements(m, role_name: str) -> list[dict]:
    return [s for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role_name for s in policy(p)["Statement"]]


def s3_objects(statements: list[dict], verb: str) -> set[str]:
    return {s["Resource"] for s in statements if f"s3:{verb}Object" in s["Action"]}


def run(fn, stack):
    return run_program(fn, stack=stack, region="us-east-1")


@pytest.fixture(scope="module")
def lam():
    return build(run)


@pytest.fixture(scope="module")
def proc():
    return build(run, engine="processing", processing_instance_type="ml.m5.xlarge", processing_instance_count=4)


def test_children_are_parented_to_the_monitor(lam):
    monitor = only(lam.of_type("mlops:monitoring:DriftMonitor"))
    assert {c["type"] for c in children_of(lam, monitor["urn"])} == {
        "aws:cloudwatch/logGroup:LogGroup", "aws:iam/role:Role", "aws:iam/rolePolicy:RolePolicy", "aws:lambda/function:Function",
        "aws:scheduler/schedule:Schedule", "aws:cloudwatch/metricAlarm:MetricAlarm", "aws:sqs/queue:Queue",
    }


def test_failed_runs_reach_an_encrypted_dead_letter_queue_and_an_alarm_and_runs_are_traced_and_capped(lam):
    fn = only(lam.of_type("aws:lambda/function:Function"))["inputs"]
    queue = only(lam.of_type("aws:sqs/queue:Queue"))
    assert fn["deadLetterConfig"]["targetArn"].endswith(queue["inputs"]["name"])  # the queue's arn (the mock's form)
    assert queue["inputs"]["kmsMasterKeyId"] == fn["kmsKeyArn"]
    assert fn["tracingConfig"] == {"mode": "Active"} and fn["reservedConcurrentExecutions"] == 2
    sids = {s.get("Sid") for s in role_statements(lam, fn["name"])}
    assert {"DeadLetters", "EncryptDeadLetters", "Traces"} <= sids
    alarm = only([a for a in lam.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a["inputs"]["name"].endswith("-drift-failed")])
    assert alarm["inputs"]["dimensions"] == {"QueueName": queue["inputs"]["name"]} and alarm["inputs"]["alarmActions"] == [TOPIC]
    # The function's role: only Lambda of this account may assume it.
    role = only([r for r in lam.of_type("aws:iam/role:Role") if r["inputs"]["name"] == fn["name"]])
    assert policy(role, "assumeRolePolicy")["Statement"][0]["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}


def test_function_runs_the_job_from_the_package_with_its_settings(lam):
    fn = only(lam.of_type("aws:lambda/function:Function"))["inputs"]
    zip_object = only([o for o in lam.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if o["name"] == "drift-code-zip"])
    assert (fn["runtime"], fn["architectures"], fn["handler"]) == ("python3.12", ["arm64"], "training.drift.handler")
    assert (fn["s3Bucket"], fn["s3Key"]) == (zip_object["inputs"]["bucket"], zip_object["inputs"]["key"])
    built = (BUILD_DIR / zip_object["inputs"]["source"]["path"].removeprefix(".mlops/build/")).read_bytes()
    assert fn["codeSha256"] == base64.b64encode(hashlib.sha256(built).digest()).decode()
    assert zip_object["inputs"]["key"] == f"code/{hashlib.sha256(built).hexdigest()}/drift-lambda.zip" and zip_object["retain_on_delete"]
    assert (fn["memorySize"], fn["timeout"]) == (2048, 900)
    assert fn["environment"]["variables"] == JobSettings(
        model="churn", endpoint_name="mlops-test-churn", capture_bucket="mlops-test-capture-123456789012-us-east-1",
        metric_namespace="mlops/test/churn", report_prefix="churn/drift-reports/", window_hours=24, threshold=0.2, min_records=200,
    ).to_env()
    assert fn["kmsKeyArn"] == zip_object["inputs"]["kmsKeyId"], "the environment is encrypted with the stack key"
    assert fn["loggingConfig"] == {"logFormat": "JSON", "logGroup": "/mlops/mlops-test/drift/churn", "applicationLogLevel": "INFO", "systemLogLevel": "WARN"}


def test_log_group_is_the_stacks_with_retention_and_the_stack_key(lam):
    group = only(lam.of_type("aws:cloudwatch/logGroup:LogGroup"))
    assert group["inputs"]["name"].startswith("/mlops/mlops-test/")  # the only prefix the key policy lets Logs use
    assert group["inputs"]["retentionInDays"] == 30 and group["inputs"]["kmsKeyId"].startswith("arn:aws:kms:")
    assert group["protect"] is True
    function = only(lam.of_type("aws:lambda/function:Function"))
    assert group["urn"] in function["depends_on"], "the first run needs its log group"


def test_function_role_is_least_privilege(lam):
    role = only([r for r in lam.of_type("aws:iam/role:Role") if r["inputs"]["name"] == FUNCTION])
    assert only(policy(role, "assumeRolePolicy")["Statement"])["Principal"] == {"Service": "lambda.amazonaws.com"}
    stmts = role_statements(lam, FUNCTION)
    assert s3_objects(stmts, "Get") == {"arn:aws:s3:::mlops-test-capture-123456789012-us-east-1/churn/*", "arn:aws:s3:::mlops-test-models-123456789012-us-east-1/churn/*"}
    assert s3_objects(stmts, "Put") == {"arn:aws:s3:::mlops-test-capture-123456789012-us-east-1/churn/drift-reports/*"}
    by_sid = {s["Sid"]: s for s in stmts if "Sid" in s}
    assert by_sid["PublishOwnMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "mlops/test/churn"}}
    assert by_sid["FindLiveModel"]["Resource"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlops-test-churn",
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/mlops-test-churn*",
        "arn:aws:sagemaker:us-east-1:123456789012:model/mlops-test-churn*",
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-test-churn/*",
    ]
    assert by_sid["WriteOwnLogs"]["Resource"] == "arn:aws:logs:us-east-1:123456789012:log-group:/mlops/mlops-test/drift/churn:*"
    assert sorted(s.get("Sid") for s in stmts if s["Resource"] == "*") == ["PublishOwnMetrics", "Traces"]
    assert not any(a.startswith(("sagemaker:Create", "iam:")) for s in stmts for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))


def test_schedule_invokes_only_the_function_with_the_scheduled_time(lam):
    schedule = only(lam.of_type("aws:scheduler/schedule:Schedule"))["inputs"]
    function = only(lam.of_type("aws:lambda/function:Function"))
    assert schedule["scheduleExpression"] == "rate(1 hour)" and schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    target = schedule["target"]
    assert json.loads(target["input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    assert target["arn"] == f"arn:aws:lambda:us-east-1:{ACCOUNT}:function/{FUNCTION}"
    sched_role = only([r for r in lam.of_type("aws:iam/role:Role") if r["inputs"]["name"] == "mlops-test-churn-drift-schedule"])
    assert target["roleArn"].endswith("/mlops-test-churn-drift-schedule")
    trust = only(policy(sched_role, "assumeRolePolicy")["Statement"])
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"} and trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert role_statements(lam, "mlops-test-churn-drift-schedule") == [
        {"Sid": "InvokeDriftJob", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": target["arn"]}
    ]
    assert function["inputs"]["name"] == FUNCTION


def test_alarms_watch_the_models_drift_and_record_count_with_dimensions(lam):
    alarms = {a["inputs"]["name"]: a["inputs"] for a in lam.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    drift, stopped = alarms[drift_alarm_name("mlops", "test", "churn")], alarms[capture_stopped_alarm_name("mlops", "test", "churn")]
    for alarm in (drift, stopped):
        assert alarm["namespace"] == "mlops/test/churn" and alarm["dimensions"] == {"Model": "churn"}
        assert alarm["alarmActions"] == alarm["okActions"] == [TOPIC] and alarm["period"] == 3600
    assert (drift["metricName"], drift["statistic"], drift["comparisonOperator"], drift["threshold"]) == ("MaxDriftScore", "Maximum", "GreaterThanThreshold", 0.2)
    assert (drift["evaluationPeriods"], drift["datapointsToAlarm"], drift["treatMissingData"]) == (3, 3, "notBreaching")
    assert (stopped["metricName"], stopped["statistic"], stopped["comparisonOperator"], stopped["threshold"]) == ("RecordsScored", "Sum", "LessThanThreshold", 1)
    assert (stopped["evaluationPeriods"], stopped["treatMissingData"]) == (3, "breaching")


def test_alarm_definitions_follow_the_config():
    cfg = DriftConfig(schedule="cron(0 */6 * * ? *)", alarm_period_seconds=21600, threshold=0.35, evaluation_periods=4, datapoints_to_alarm=2, capture_stopped_periods=5)
    drift, stopped, prediction = alarm_definitions("acme", "prod", "churn", "mlops/prod/churn", cfg)
    assert (prediction.metric_name, prediction.comparison_operator, prediction.threshold, prediction.treat_missing_data) == (
        "PredictionDrift", "GreaterThanThreshold", 0.35, "notBreaching")
    assert prediction.name == "acme-prod-churn-prediction-drift" and prediction.dimensions == {"Model": "churn"}
    api = drift.api(TOPIC)
    assert (api["Period"], api["Threshold"], api["EvaluationPeriods"], api["DatapointsToAlarm"]) == (21600, 0.35, 4, 2)
    assert api["Dimensions"] == [{"Name": "Model", "Value": "churn"}] and api["AlarmActions"] == [TOPIC]
    assert (stopped.evaluation_periods, stopped.datapoints_to_alarm, stopped.period) == (5, 5, 21600)


def test_processing_engine_delegates_to_a_job_with_the_models_role(proc):
    stmts = role_statements(proc, FUNCTION)
    by_sid = {s["Sid"]: s for s in stmts if "Sid" in s}
    assert by_sid["StartDriftProcessingJobs"]["Resource"] == "arn:aws:sagemaker:us-east-1:123456789012:processing-job/mlops-test-churn-drift-*"
    model_role = "arn:aws:iam::123456789012:role/mlops-test-churn-sagemaker"
    assert by_sid["PassModelRoleToSageMaker"] == {
        "Sid": "PassModelRoleToSageMaker", "Effect": "Allow", "Action": "iam:PassRole", "Resource": model_role,
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    # It plans each run (lists the capture, reads the hour partials, writes the plan and the manifest) and, when
    # nothing is new, reports from the partials itself.
    assert by_sid["PublishOwnMetrics"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "mlops/test/churn"}}
    assert s3_objects(stmts, "Get") == {"arn:aws:s3:::mlops-test-capture-123456789012-us-east-1/churn/*", "arn:aws:s3:::mlops-test-models-123456789012-us-east-1/churn/*"}
    assert s3_objects(stmts, "Put") == {"arn:aws:s3:::mlops-test-capture-123456789012-us-east-1/churn/drift-reports/*"}
    model_stmts = role_statements(proc, "mlops-test-churn-sagemaker")
    assert "arn:aws:s3:::mlops-test-capture-123456789012-us-east-1/churn/drift-reports/*" in s3_objects(model_stmts, "Put")
    env = only(proc.of_type("aws:lambda/function:Function"))["inputs"]["environment"]["variables"]
    assert env["MLOPS_DRIFT_ENGINE"] == "processing" and env["MLOPS_DRIFT_PROCESSING_IMAGE"] == IMAGE
    assert env["MLOPS_DRIFT_CODE_URI"] == CODE_URI and env["MLOPS_DRIFT_PROCESSING_ROLE_ARN"] == model_role
    assert env["MLOPS_DRIFT_PROCESSING_INSTANCE_TYPE"] == "ml.m5.xlarge" and env["MLOPS_DRIFT_KMS_KEY_ARN"].startswith("arn:aws:kms:")
    assert env["MLOPS_DRIFT_PROCESSING_INSTANCE_COUNT"] == "4"


def test_rejects_processing_engine_without_image():
    def program():
        ctx = StackContext(prefix="mlops", stack="t", environment="dev", region="us-east-1", account_id=ACCOUNT)
        platform = Platform("platform", PlatformArgs(context=ctx, access_logs=False))
        model = Model("m", ModelArgs(model="churn", context=ctx, platform=platform.ref, image_uris=[IMAGE]))
        code = DriftCode("c", DriftCodeArgs(source_dir=TRAINING_SOURCE, bucket_name="b", kms_key_arn="k", build_dir=BUILD_DIR))
        DriftMonitor("d", DriftMonitorArgs(model=model, config=DriftConfig(engine="processing"), code=code))

    with pytest.raises(Exception, match="engine 'processing' needs processing_image and code_package_uri"):
        run(program, "t")


# ---------------------------------------------------------------------------------------------------------------
# The program: which models get a monitor; one package per stack


def test_program_monitors_models_with_capture_and_shares_one_package():
    churn = {"data_contract": "training/sample/contract.json"}
    m = synth_keys(
        "multi",
        {
            "mlops:environment": "dev",
            "mlops:region": "us-east-1",
            "mlops:vpc": {"create": {}},  # the processing engine runs in the stack's private VPC
            "mlops:models": {
                "churn": churn,
                "upsell": {**churn, "drift": {"engine": "processing"}},
                "quiet": {**churn, "drift": {"enabled": False}},
                "nocap": {**churn, "endpoint": {"capture": {"enabled": False}}},
            },
        },
        "us-east-1",
    )
    assert sorted(r["name"] for r in m.of_type("mlops:monitoring:DriftMonitor")) == ["drift-churn", "drift-upsell"]
    assert len(m.of_type("mlops:monitoring:DriftCode")) == 1
    keys = {f["inputs"]["s3Key"] for f in m.of_type("aws:lambda/function:Function") if f["inputs"]["name"].endswith("-drift")}
    assert len(keys) == 1
    upsell = only([f for f in m.of_type("aws:lambda/function:Function") if f["inputs"]["name"] == "mlops-multi-upsell-drift"])
    assert upsell["inputs"]["environment"]["variables"]["MLOPS_DRIFT_CODE_URI"] == m.outputs["code_package_uri"]
    assert upsell["inputs"]["environment"]["variables"]["MLOPS_DRIFT_PROCESSING_IMAGE"] == m.outputs["models"]["upsell"]["training_image"]
    subnets = sorted(s["inputs"]["id"] if "id" in s["inputs"] else s["urn"] for s in m.of_type("aws:ec2/subnet:Subnet"))
    env_subnets = upsell["inputs"]["environment"]["variables"]["MLOPS_DRIFT_SUBNET_IDS"].split(",")
    assert len(env_subnets) == len(subnets) == 2 and all(x.startswith("subnet-") for x in env_subnets), "its jobs run in the stack's subnets"
    assert upsell["inputs"]["environment"]["variables"]["MLOPS_DRIFT_SECURITY_GROUP_IDS"].startswith("sg-")
    assert m.outputs["models"]["churn"]["drift_function_name"] == "mlops-multi-churn-drift"
    assert m.outputs["models"]["quiet"]["drift_function_name"] is None


def test_the_ct_flow_retrains_on_this_alarm(manifests):
    rule = only([r for r in manifests["prod"].of_type("aws:cloudwatch/eventRule:EventRule") if r["name"].endswith("-drift")])
    alarm = only([a for a in manifests["prod"].of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if a["inputs"].get("metricName") == "MaxDriftScore"])
    assert json.loads(rule["inputs"]["eventPattern"])["detail"]["alarmName"] == [alarm["inputs"]["name"]]


# ---------------------------------------------------------------------------------------------------------------
# Config


def model_keys(**drift) -> dict:
    return {
        "mlops:environment": "dev",
        "mlops:region": "us-east-1",
        "mlops:models": {"churn": {"data_contract": "training/sample/contract.json", "drift": drift}},
    }


def test_config_defaults_and_periods():
    assert DriftConfig().period_seconds == 3600
    assert DriftConfig(schedule="rate(6 hours)").period_seconds == 21600
    assert DriftConfig(schedule="cron(0 2 * * ? *)", alarm_period_seconds=86400).period_seconds == 86400


@pytest.mark.parametrize(
    "drift, message",
    [
        ({"schedule": "every hour"}, "expected rate(N minutes|hours|days) or cron"),
        ({"schedule": "rate(2 hour)"}, "use the singular unit for 1 and the plural otherwise"),
        ({"schedule": "cron(0 2 * * ? *)"}, "alarm_period_seconds is required with a cron schedule"),
        ({"schedule": "rate(15 minutes)"}, "at least an hour"),
        ({"schedule": "rate(2 days)"}, "at most a day"),
        ({"evaluation_periods": 2, "datapoints_to_alarm": 3}, "datapoints_to_alarm (3) must be <= evaluation_periods (2)"),
        ({"schedule": "rate(1 day)", "capture_stopped_periods": 8}, "exceeds the 7 days"),
        ({"engine": "model_monitor"}, "'lambda' or 'processing'"),
        ({"log_retention_days": 10}, "10"),
        ({"engine": "processing", "processing_instance_count": 0}, "greater than or equal to 1"),
        ({"engine": "processing", "processing_instance_count": 101}, "less than or equal to 100"),
        ({"processing_instance_count": 3}, "applies to engine 'processing' only"),
    ],
)
def test_rejects_invalid_drift_config(drift, message):
    with pytest.raises(ConfigError) as exc:
        config_from_keys(model_keys(**drift), "stacks/Pulumi.test.yaml")
    assert "config.mlops:models.churn.drift" in str(exc.value) and message in str(exc.value)


def test_rejects_drift_explicitly_on_without_capture():
    keys = model_keys(enabled=True)
    keys["mlops:models"]["churn"]["endpoint"] = {"capture": {"enabled": False}}
    with pytest.raises(ConfigError, match="drift.enabled: true needs endpoint.enabled and endpoint.capture.enabled"):
        config_from_keys(keys, "stacks/Pulumi.test.yaml")


# ---------------------------------------------------------------------------------------------------------------
# The Lambda package


def test_lambda_package_is_deterministic_and_holds_the_job_and_numpy(tmp_path):
    cached, digest = build_lambda_package(TRAINING_SOURCE, BUILD_DIR)
    fresh, fresh_digest = build_lambda_package(TRAINING_SOURCE, tmp_path, wheel_cache=BUILD_DIR / "wheels")
    assert fresh_digest == digest and fresh.read_bytes() == cached.read_bytes()
    with zipfile.ZipFile(fresh) as z:
        infos = z.infolist()
        names = {i.filename for i in infos}
        assert {f"training/{m}" for m in LAMBDA_MODULES} == {n for n in names if n.startswith("training/")}
        assert z.read("training/drift.py") == (TRAINING_SOURCE / "drift.py").read_bytes()
    assert "numpy/__init__.py" in names and any(n.startswith("numpy.libs/") for n in names)
    assert not [n for n in names if "/tests/" in n]
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {((1980, 1, 1, 0, 0, 0), 0o644)}
    assert fresh.stat().st_size < 50 * 2**20


def test_lambda_modules_import_with_numpy_and_the_standard_library_only(tmp_path):
    """What the zip holds of training/ imports without pandas, pydantic, scikit-learn, scipy or yaml: both jobs'
    handlers (the drift and the quality Lambda run from this package), with every module they import."""
    cached, _ = build_lambda_package(TRAINING_SOURCE, BUILD_DIR)
    with zipfile.ZipFile(cached) as z:
        for m in LAMBDA_MODULES:
            z.extract(f"training/{m}", tmp_path)
    code = (
        "import sys; sys.modules.update(dict.fromkeys(['pandas', 'pydantic', 'sklearn', 'scipy', 'yaml', 'pandera']));"
        f"sys.path.insert(0, {str(tmp_path)!r}); import training.drift as d, training.quality as q, training.spill_metrics as m;"
        f"assert all(x.__file__.startswith({str(tmp_path)!r}) for x in (d, q, m)) and callable(q.handler); print('ok')"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


# ---------------------------------------------------------------------------------------------------------------
# The registered baseline: what the job reads for a model whose own code writes no baseline.json


def _allows(stmts: list[dict], action: str, resource: str) -> bool:
    def listed(value) -> list[str]:
        return [value] if isinstance(value, str) else list(value)

    return any(
        s["Effect"] == "Allow" and action in listed(s["Action"]) and any(fnmatch.fnmatchcase(resource, r) for r in listed(s["Resource"]))
        for s in stmts
    )


def _flow_states(manifest, model: str) -> dict[str, dict]:
    """Every state of the model's CT flow by name (the Deploy branch's included)."""
    machine = only([s for s in manifest.of_type("aws:sfn/stateMachine:StateMachine") if s["name"] == f"pipeline-{model}-state-machine"])
    states: dict[str, dict] = {}

    def walk(doc: dict) -> None:
        for name, state in doc.get("States", {}).items():
            states[name] = state
            for branch in state.get("Branches", []):
                walk(branch)

    walk(json.loads(machine["inputs"]["definition"]))
    return states


def test_the_drift_role_reads_the_baseline_the_ct_flow_registers_on_the_live_package_and_nothing_more(manifests):
    """demand (its own code, no baseline.json in its archive): the job follows endpoint -> config -> the model the
    flow's CreateModel made (from the package) -> DescribeModelPackage -> DriftCheckBaselines -> that S3 object.
    The function's role (and, with the processing engine, the model's role that scores) can make each of those
    reads, for this model's flow only: a change of the flow's names or of the baseline's prefix fails here."""
    m = manifests["dev"]
    states = _flow_states(m, "demand")
    created = states["CreateModel"]["Parameters"]
    assert created["PrimaryContainer"] == {"ModelPackageName.$": "$.package.arn"}, "the live model records its package"
    model_name = created["ModelName.$"].split("'")[1].replace("{}", "r20261128t120000z")
    registered = states["RegisterModel"]["Parameters"]
    group = registered["ModelPackageGroupName"]
    statistics = registered["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]
    uri = statistics["S3Uri.$"].split("'")[1].replace("{}", "r20261128t120000z")
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert key == "demand/runs/r20261128t120000z/baseline/baseline.json"

    drift = role_statements(m, "mlops-dev-demand-drift")
    sm = "arn:aws:sagemaker:us-east-1:123456789012"
    assert _allows(drift, "sagemaker:DescribeModel", f"{sm}:model/{model_name}")
    assert _allows(drift, "sagemaker:DescribeModelPackage", f"{sm}:model-package/{group}/3")
    assert _allows(drift, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}")
    model_role = role_statements(m, "mlops-dev-demand-sagemaker")
    assert _allows(model_role, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"), "the processing engine reads it with the model's role"

    # Nothing more: not another model's package, model or baseline; no write to the registry or the models bucket.
    assert not _allows(drift, "sagemaker:DescribeModelPackage", f"{sm}:model-package/mlops-dev-churn/3")
    assert not _allows(drift, "sagemaker:DescribeModel", f"{sm}:model/mlops-dev-churn-mdl-r1-0")
    assert not _allows(drift, "s3:GetObject", f"arn:aws:s3:::{bucket}/churn/runs/r1/baseline/baseline.json")
    assert not any(_allows(drift, a, f"arn:aws:s3:::{bucket}/{key}") for a in ("s3:PutObject", "s3:DeleteObject"))
    assert not any(_allows(drift, a, f"{sm}:model-package/{group}/3") for a in ("sagemaker:CreateModelPackage", "sagemaker:UpdateModelPackage"))
