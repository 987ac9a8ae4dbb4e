"""Drift monitoring of one model: the scheduled drift job, its alarms, and the job's code package.

The job (``training/drift.py``) runs as a Lambda on an EventBridge Scheduler schedule. With
``engine: processing`` the same Lambda resolves the live model and starts a SageMaker processing job
that runs the same code from the code package, for volumes a Lambda cannot score in 15 minutes.

Why a Lambda starts the processing job rather than a Scheduler universal target
(``sagemaker:createProcessingJob``): every run needs a unique job name and the live model's artifact
(DescribeEndpoint -> config -> model), which a static target input cannot carry; and a starter that
finds the bootstrap placeholder (no ``baseline.json``) starts nothing, instead of paying for an
instance to find out.

Alarms with ``Model`` dimensions, actions to the stack topic:
- drift: ``MaxDriftScore`` (the largest per-feature PSI) above the threshold in ``datapoints_to_alarm``
  of ``evaluation_periods``; missing data is not breaching (no traffic is not drift). The CT flow's
  EventBridge rule starts retraining on its ALARM state change.
- capture stopped: ``RecordsScored`` below 1 for ``capture_stopped_periods``, missing data breaching.
  The job publishes ``RecordsScored`` (0 included) on every run with a trained model, so the alarm
  fires when capture stops arriving (0 records in the window) and when the job itself stops
  publishing (a failing or deleted function: missing datapoints). Before the first trained model
  the job publishes nothing, so a fresh stack's alarm is in ALARM until a model serves traffic.
- prediction drift: ``PredictionDrift`` (the PSI of the model's answers against its validation split) above
  the same threshold; missing data is not breaching. It notifies; retraining follows the input-drift alarm.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from components import iam
from components.roles import service_role
from components.code_package import CodePackageArgs, deterministic_zip, pip_download, stored_artifact, write_artifact
from components.drift_config import DriftConfig
from components.endpoint_config import EndpointConfig
from components.model import Model
from components.naming import drift_alarm_name, job_prefix, resource_name
from components.network import as_input_list, in_vpc, lambda_vpc_statements
from training.drift import METRIC_MAX, METRIC_PREDICTION, METRIC_RECORDS, REPORTS_PREFIX, JobSettings

HANDLER = "training.drift.handler"
RUNTIME = "python3.12"
ARCHITECTURE = "arm64"  # Graviton: cheaper per GB-second, and numpy ships aarch64 wheels
LAMBDA_MODULES = ("__init__.py", "capture.py", "drift.py", "metric_names.py", "metrics.py", "quality.py")
"""The part of training/ the drift and quality jobs import: numpy, boto3 (in the runtime) and the standard library only."""


@dataclass(frozen=True)
class PinnedWheel:
    requirement: str
    filename: str
    sha256: str
    platform: str
    python_version: str = "3.12"


# Lambda's python3.12 runtime has no numpy; this wheel (PyPI, pinned by hash) is bundled into the zip.
NUMPY = PinnedWheel(
    requirement="numpy==2.4.6",
    filename="numpy-2.4.6-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
    sha256="5f9fb9157b4ce2971008323afe46053787b526ef624fea915b261468a8421a0f",
    platform="manylinux_2_28_aarch64",
)


def monitored(endpoint: EndpointConfig, drift: DriftConfig) -> bool:
    """Whether a model gets a DriftMonitor: drift on, and an endpoint that captures requests."""
    return drift.enabled and endpoint.enabled and endpoint.capture.enabled


def capture_stopped_alarm_name(prefix: str, stack: str, model: str) -> str:
    """The alarm on the model's drift job scoring nothing (capture stopped, or the job stopped)."""
    return f"{job_prefix(prefix, stack, model)}-capture-stopped"


# ---------------------------------------------------------------------------------------------------------------
# The Lambda package: the job's modules and numpy, as a deterministic zip


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(wheel: PinnedWheel, cache: Path) -> Path:
    """The pinned wheel from the cache, else downloaded from PyPI by pip (refused unless the hash matches)."""
    path = cache / wheel.filename
    if path.is_file() and _sha256(path.read_bytes()) == wheel.sha256:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    requirement = cache / f"{wheel.filename}.requirement.txt"
    requirement.write_text(f"{wheel.requirement} --hash=sha256:{wheel.sha256}\n")
    result = pip_download(["--require-hashes", "-r", str(requirement)], cache, platform=wheel.platform, python_version=wheel.python_version)
    if result.returncode != 0 or not path.is_file():
        raise pulumi.RunError(
            f"the drift Lambda bundles {wheel.filename} and it could not be downloaded from PyPI "
            f"({' '.join((result.stderr or result.stdout).strip().splitlines()[-3:])[-600:]}); put that file (sha256 {wheel.sha256}) in {cache}"
        )
    return path


def lambda_entries(source: Path, wheel: Path) -> list[tuple[str, bytes]]:
    """Zip entries: the job's modules under ``training/`` and the wheel's files (its tests left out)."""
    entries = [(f"training/{name}", (source / name).read_bytes()) for name in LAMBDA_MODULES]
    with zipfile.ZipFile(wheel) as whl:
        entries += [(i.filename, whl.read(i)) for i in whl.infolist() if not i.is_dir() and "/tests/" not in i.filename]
    return entries


def build_lambda_package(source: Path, build_dir: Path, wheel_cache: Path | None = None) -> tuple[Path, str]:
    """``drift-lambda-<inputs>-<sha256>.zip`` in ``build_dir`` (built once per content) and its sha256.

    Compressing numpy takes seconds, so the zip is looked up by a hash of its inputs first.
    """
    wheel = fetch_wheel(NUMPY, wheel_cache or build_dir / "wheels")
    inputs = _sha256(json.dumps([[n, _sha256((source / n).read_bytes())] for n in LAMBDA_MODULES] + [NUMPY.sha256]).encode())[:16]
    stem = f"drift-lambda-{inputs}"
    for cached in sorted(build_dir.glob(f"{stem}-*.zip")):
        digest = cached.name.removeprefix(f"{stem}-").removesuffix(".zip")
        if _sha256(cached.read_bytes()) == digest:
            return cached, digest
    return write_artifact(deterministic_zip(lambda_entries(source, wheel)), build_dir, stem, ".zip")


@dataclass(frozen=True)
class DriftCodeArgs(CodePackageArgs):
    """The training package (``source_dir``), where the zip is stored, and where the pinned wheel is kept."""

    wheel_cache: Path | None = None
    """Where the pinned wheels are kept (default ``build_dir/wheels``)."""


class DriftCode(pulumi.ComponentResource):
    """The drift Lambda's zip, once per stack: ``s3://<bucket>/<prefix>/<sha256>/drift-lambda.zip``."""

    key: str
    code_sha256: str
    bucket_name: pulumi.Output[str]

    def __init__(self, name: str, args: DriftCodeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:DriftCode", name, None, opts)
        path, sha = build_lambda_package(args.source_dir, args.build_dir, args.wheel_cache)
        self.key = f"{args.prefix}/{sha}/drift-lambda.zip"
        self.code_sha256 = base64.b64encode(bytes.fromhex(sha)).decode()  # Lambda's CodeSha256 form
        obj = stored_artifact(
            f"{name}-zip", self, bucket_name=args.bucket_name, kms_key_arn=args.kms_key_arn, tags=args.tags,
            key=self.key, path=path, sha256=sha, content_type="application/zip",
        )
        self.bucket_name = obj.bucket
        self.register_outputs({"key": self.key, "code_sha256": self.code_sha256, "bucket_name": self.bucket_name})


# ---------------------------------------------------------------------------------------------------------------
# Pure builders (tested without mocks; the LocalStack test creates alarms from the same definitions)


@dataclass(frozen=True)
class AlarmDefinition:
    """One metric alarm, convertible to PutMetricAlarm parameters and to pulumi-aws MetricAlarm args."""

    name: str
    description: str
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    statistic: str
    period: int
    comparison_operator: str
    threshold: float
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing_data: str

    def api(self, topic_arn: str) -> dict[str, Any]:
        return {
            "AlarmName": self.name,
            "AlarmDescription": self.description,
            "Namespace": self.namespace,
            "MetricName": self.metric_name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
            "Statistic": self.statistic,
            "Period": self.period,
            "ComparisonOperator": self.comparison_operator,
            "Threshold": self.threshold,
            "EvaluationPeriods": self.evaluation_periods,
            "DatapointsToAlarm": self.datapoints_to_alarm,
            "TreatMissingData": self.treat_missing_data,
            "AlarmActions": [topic_arn],
            "OKActions": [topic_arn],
        }

    def pulumi_args(self, topic_arn: pulumi.Input[str]) -> dict[str, Any]:
        return {
            "name": self.name,
            "alarm_description": self.description,
            "namespace": self.namespace,
            "metric_name": self.metric_name,
            "dimensions": dict(self.dimensions),
            "statistic": self.statistic,
            "period": self.period,
            "comparison_operator": self.comparison_operator,
            "threshold": self.threshold,
            "evaluation_periods": self.evaluation_periods,
            "datapoints_to_alarm": self.datapoints_to_alarm,
            "treat_missing_data": self.treat_missing_data,
            "alarm_actions": [topic_arn],
            "ok_actions": [topic_arn],
        }


def alarm_definitions(prefix: str, stack: str, model: str, namespace: str, cfg: DriftConfig) -> list[AlarmDefinition]:
    """The drift, capture-stopped and prediction-drift alarms of a model (see the module docstring)."""
    dims = {"Model": model}
    return [
        AlarmDefinition(
            name=drift_alarm_name(prefix, stack, model),
            description=f"{model}: the largest feature PSI is above {cfg.threshold:g} (input drift); starts retraining",
            namespace=namespace,
            metric_name=METRIC_MAX,
            dimensions=dims,
            statistic="Maximum",
            period=cfg.period_seconds,
            comparison_operator="GreaterThanThreshold",
            threshold=cfg.threshold,
            evaluation_periods=cfg.evaluation_periods,
            datapoints_to_alarm=cfg.datapoints_to_alarm or cfg.evaluation_periods,
            treat_missing_data="notBreaching",
        ),
        AlarmDefinition(
            name=capture_stopped_alarm_name(prefix, stack, model),
            description=f"{model}: no captured request scored for drift (capture stopped, or the drift job is not running)",
            namespace=namespace,
            metric_name=METRIC_RECORDS,
            dimensions=dims,
            statistic="Sum",
            period=cfg.period_seconds,
            comparison_operator="LessThanThreshold",
            threshold=1.0,
            evaluation_periods=cfg.capture_stopped_periods,
            datapoints_to_alarm=cfg.capture_stopped_periods,
            treat_missing_data="breaching",
        ),
        AlarmDefinition(
            name=prediction_drift_alarm_name(prefix, stack, model),
            description=f"{model}: the PSI of the model's answers against its validation split is above {cfg.threshold:g} (prediction drift)",
            namespace=namespace,
            metric_name=METRIC_PREDICTION,
            dimensions=dims,
            statistic="Maximum",
            period=cfg.period_seconds,
            comparison_operator="GreaterThanThreshold",
            threshold=cfg.threshold,
            evaluation_periods=cfg.evaluation_periods,
            datapoints_to_alarm=cfg.datapoints_to_alarm or cfg.evaluation_periods,
            treat_missing_data="notBreaching",
        ),
    ]


def prediction_drift_alarm_name(prefix: str, stack: str, model: str) -> str:
    """The alarm on the model's answers drifting (notifies; retraining follows the input-drift alarm)."""
    return f"{job_prefix(prefix, stack, model)}-prediction-drift"


def job_error_alarm(prefix: str, stack: str, model: str, function_name: str, job: str = "drift") -> AlarmDefinition:
    """A monitoring job itself failing (an error in its Lambda; the drift one also starts the processing engine's job)."""
    return AlarmDefinition(
        name=f"{job_prefix(prefix, stack, model)}-{job}-job-errors",
        description=f"{model}: the {job} job failed (Lambda {function_name} errors); {job} is not being measured",
        namespace="AWS/Lambda",
        metric_name="Errors",
        dimensions={"FunctionName": function_name},
        statistic="Sum",
        period=300,
        comparison_operator="GreaterThanThreshold",
        threshold=0.0,
        evaluation_periods=1,
        datapoints_to_alarm=1,
        treat_missing_data="notBreaching",
    )


def job_statements(
    *,
    partition: str,
    region: str,
    account_id: str,
    log_group_name: str,
    metric_namespace: str,
    endpoint_name: str,
    job_prefix: str,
    model_package_group: str,
    kms_key_arn: str,
    engine: str,
    processing_role_arn: str | None = None,
) -> list[iam.Statement]:
    """What the drift function needs besides its bucket grants.

    Logs to its own group; Describe* on this model's endpoint, configurations, models and registry
    only (to find the live artifact); then either PutMetricData in the model's namespace (it scores),
    or starting this model's drift processing jobs with the model's SageMaker role (it delegates).
    """
    sm = f"arn:{partition}:sagemaker:{region}:{account_id}"
    stmts: list[iam.Statement] = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group_name}:*",
        },
        {
            "Sid": "FindLiveModel",
            "Effect": "Allow",
            "Action": ["sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel", "sagemaker:DescribeModelPackage"],
            "Resource": [
                f"{sm}:endpoint/{endpoint_name}",
                f"{sm}:endpoint-config/{job_prefix}*",
                f"{sm}:model/{job_prefix}*",
                f"{sm}:model-package/{model_package_group}/*",
            ],
        },
    ]
    if engine == "lambda":
        stmts.append(
            {
                "Sid": "PublishOwnMetrics",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",  # PutMetricData has no resource type; the namespace condition scopes it
                "Condition": {"StringEquals": {"cloudwatch:namespace": metric_namespace}},
            }
        )
    else:
        if not processing_role_arn:
            raise ValueError("engine 'processing' needs processing_role_arn (the model's SageMaker role)")
        stmts += [
            {
                "Sid": "StartDriftProcessingJobs",
                "Effect": "Allow",
                "Action": ["sagemaker:CreateProcessingJob", "sagemaker:AddTags"],
                "Resource": f"{sm}:processing-job/{job_prefix}-drift-*",
            },
            {
                "Sid": "PassModelRoleToSageMaker",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": processing_role_arn,
                "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            },
            {
                "Sid": "EncryptJobVolumes",
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:DescribeKey"],
                "Resource": kms_key_arn,
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ]
    return stmts


def failure_statements(queue_arn: str, kms_key_arn: str, region: str) -> list[iam.Statement]:
    """The drift function's dead-letter queue (encrypted with the stack key) and its X-Ray traces."""
    return [
        {"Sid": "DeadLetters", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arn},
        {
            "Sid": "EncryptDeadLetters",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": kms_key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
        },
        {
            "Sid": "Traces",
            "Effect": "Allow",
            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": "*",  # X-Ray's trace APIs have no resource types
        },
    ]


def schedule_policy(function_arn: str) -> dict[str, Any]:
    return iam.document({"Sid": "InvokeDriftJob", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arn})


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftMonitorArgs:
    model: Model
    """The model's platform component (names, buckets, key, metric namespace, SageMaker role)."""
    config: DriftConfig
    endpoint_name: str
    code: DriftCode
    topic_arn: pulumi.Input[str]
    log_group_prefix: str
    """The stack's log-group prefix (the stack key lets CloudWatch Logs encrypt only there)."""
    processing_image: str | None = None
    """Engine ``processing``: the framework image the job runs in."""
    code_package_uri: pulumi.Input[str] | None = None
    """Engine ``processing``: ``s3://.../sourcedir.tar.gz`` with ``training/`` at its root."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """Run the function in these subnets (strings, or a created network's Output); empty: outside any VPC."""
    security_group_ids: pulumi.Input[Sequence[str]] = ()
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False


class DriftMonitor(pulumi.ComponentResource):
    """The scheduled drift job of one model and its alarms (see the module docstring)."""

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    schedule_arn: pulumi.Output[str]
    alarm_names: list[str]
    report_prefix: str

    def __init__(self, name: str, args: DriftMonitorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:DriftMonitor", name, None, opts)
        cfg, m = args.config, args.model.args
        processing = cfg.engine == "processing"
        if processing and (args.processing_image is None or args.code_package_uri is None):
            raise ValueError(
                f"DriftMonitor {name!r}: engine 'processing' needs processing_image and code_package_uri "
                "(the job runs the code package in the framework image)"
            )
        child = pulumi.ResourceOptions(parent=self)
        physical = resource_name(m.name_prefix, m.stack, m.model, "drift", limit=64)
        self.report_prefix = f"{m.model}/{REPORTS_PREFIX}/"

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"{args.log_group_prefix}drift/{m.model}",
            retention_in_days=cfg.log_retention_days,
            kms_key_id=m.kms_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        role = service_role(
            f"{name}-role",
            parent=self,
            role_name=physical,
            service="lambda.amazonaws.com",
            description=f"Drift job of model {m.model} ({m.stack})",
            tags=args.tags,
            # Lambda sends no aws:SourceArn before the function exists; the account guard still applies.
            source_account=m.account_id,
            permissions_boundary=m.permissions_boundary_arn,
        )
        # The read grants carry kms:Decrypt on the stack key, which also decrypts the function's environment.
        grants = [m.models_bucket.grant_read(role, f"{m.model}/")]
        if processing:
            m.capture_bucket.grant_write(args.model.role, self.report_prefix)
        else:
            grants += [m.capture_bucket.grant_read(role, f"{m.model}/"), m.capture_bucket.grant_write(role, self.report_prefix)]
        runtime = aws.iam.RolePolicy(
            f"{name}-runtime",
            role=role.id,
            policy=pulumi.Output.all(m.partition, m.account_id, m.kms_key_arn, log_group.name, args.model.model_package_group_name, args.model.role_arn).apply(
                lambda a: json.dumps(
                    iam.document(
                        *job_statements(
                            partition=a[0],
                            region=m.region,
                            account_id=a[1],
                            log_group_name=a[3],
                            metric_namespace=m.metric_namespace,
                            endpoint_name=args.endpoint_name,
                            job_prefix=m.job_prefix,
                            model_package_group=a[4],
                            kms_key_arn=a[2],
                            engine=cfg.engine,
                            processing_role_arn=a[5] if processing else None,
                        )
                    )
                )
            ),
            opts=child,
        )

        # Failed asynchronous runs (the schedule invokes asynchronously) land here, encrypted with the stack key;
        # an alarm tells the stack topic.
        dlq = aws.sqs.Queue(
            f"{name}-dlq",
            name=f"{physical}-dlq"[:80],
            kms_master_key_id=m.kms_key_arn,
            message_retention_seconds=1209600,
            tags=args.tags,
            opts=child,
        )
        failures = aws.iam.RolePolicy(
            f"{name}-failures-and-traces",
            role=role.id,
            policy=pulumi.Output.all(dlq.arn, m.kms_key_arn).apply(
                lambda a: json.dumps(iam.document(*failure_statements(a[0], a[1], m.region)))
            ),
            opts=child,
        )
        aws.cloudwatch.MetricAlarm(
            f"{name}-dlq-alarm",
            name=f"{m.job_prefix}-drift-failed",
            alarm_description=f"A drift run of {m.model} failed after its retries (messages in {physical}-dlq)",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": dlq.name},
            statistic="Maximum",
            period=300,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[args.topic_arn],
            tags=args.tags,
            opts=child,
        )

        network: list[pulumi.Resource] = []
        vpc_config = None
        if in_vpc(args.subnet_ids):
            if not in_vpc(args.security_group_ids):
                raise ValueError(f"DriftMonitor {name!r}: subnet_ids need security_group_ids (the function's ENIs carry them)")
            network.append(
                aws.iam.RolePolicy(
                    f"{name}-network",
                    role=role.id,
                    policy=pulumi.Output.all(m.partition, m.account_id, args.subnet_ids, args.security_group_ids).apply(
                        lambda a: json.dumps(iam.document(*lambda_vpc_statements(a[0], m.region, a[1], a[2], a[3])))
                    ),
                    opts=child,
                )
            )
            vpc_config = {"subnet_ids": as_input_list(args.subnet_ids), "security_group_ids": as_input_list(args.security_group_ids)}

        def environment(a: list[Any]) -> dict[str, Any]:
            settings = JobSettings(
                model=m.model,
                endpoint_name=args.endpoint_name,
                capture_bucket=a[0],
                metric_namespace=m.metric_namespace,
                report_prefix=self.report_prefix,
                window_hours=cfg.window_hours,
                threshold=cfg.threshold,
                min_records=cfg.min_records,
                engine=cfg.engine,
                **(
                    dict(
                        job_prefix=m.job_prefix,
                        processing_image=args.processing_image or "",
                        processing_role_arn=a[1],
                        processing_instance_type=cfg.processing_instance_type,
                        processing_max_runtime_seconds=cfg.processing_max_runtime_seconds,
                        code_uri=a[2],
                        kms_key_arn=a[3],
                    )
                    if processing
                    else {}
                ),
            )
            return {"variables": settings.to_env()}

        function = aws.lambda_.Function(
            f"{name}-function",
            name=physical,
            description=f"Drift of model {m.model}'s captured requests against its training baseline ({cfg.engine} engine)",
            role=role.arn,
            runtime=RUNTIME,
            architectures=[ARCHITECTURE],
            handler=HANDLER,
            s3_bucket=args.code.bucket_name,
            s3_key=args.code.key,
            code_sha256=args.code.code_sha256,
            memory_size=cfg.lambda_memory_mb,
            timeout=cfg.lambda_timeout_seconds,
            environment=pulumi.Output.all(m.capture_bucket.bucket_name, args.model.role_arn, args.code_package_uri or "", m.kms_key_arn).apply(environment),
            kms_key_arn=m.kms_key_arn,
            dead_letter_config={"target_arn": dlq.arn},
            tracing_config={"mode": "Active"},
            vpc_config=vpc_config,
            reserved_concurrent_executions=cfg.lambda_reserved_concurrency,
            logging_config={"log_format": "JSON", "log_group": log_group.name, "application_log_level": "INFO", "system_log_level": "WARN"},
            tags=args.tags,
            # The first run must find its permissions and log group in place.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[runtime, failures, log_group, *grants, *network]),
        )

        scheduler_role = service_role(
            f"{name}-schedule-role",
            parent=self,
            role_name=resource_name(m.name_prefix, m.stack, m.model, "drift-schedule", limit=64),
            service="scheduler.amazonaws.com",
            description=f"EventBridge Scheduler: run the drift job of model {m.model} ({m.stack})",
            tags=args.tags,
            source_account=m.account_id,
            permissions_boundary=m.permissions_boundary_arn,
        )
        invoke = aws.iam.RolePolicy(
            f"{name}-schedule-invoke",
            role=scheduler_role.id,
            policy=function.arn.apply(lambda arn: json.dumps(schedule_policy(arn))),
            opts=child,
        )
        schedule = aws.scheduler.Schedule(
            f"{name}-schedule",
            name=physical,
            description=f"Drift job of model {m.model}",
            schedule_expression=cfg.schedule,
            schedule_expression_timezone="UTC",
            flexible_time_window={"mode": "OFF"},
            target={
                "arn": function.arn,
                "role_arn": scheduler_role.arn,
                # The job scores the window ending at the scheduled time, whenever the invocation lands.
                "input": json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>"}),
                "retry_policy": {"maximum_retry_attempts": 2, "maximum_event_age_in_seconds": min(cfg.period_seconds, 86400)},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[invoke]),
        )

        definitions = alarm_definitions(m.name_prefix, m.stack, m.model, m.metric_namespace, cfg)
        definitions.append(job_error_alarm(m.name_prefix, m.stack, m.model, physical))
        for d in definitions:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{d.name.removeprefix(m.job_prefix + '-')}-alarm", tags=args.tags, opts=child, **d.pulumi_args(args.topic_arn)
            )

        self.function_name = function.name
        self.function_arn = function.arn
        self.role_arn = role.arn
        self.log_group_name = log_group.name
        self.schedule_arn = schedule.arn
        self.alarm_names = [d.name for d in definitions]
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "log_group_name": self.log_group_name,
                "schedule_arn": self.schedule_arn,
                "alarm_names": self.alarm_names,
                "report_prefix": self.report_prefix,
            }
        )
