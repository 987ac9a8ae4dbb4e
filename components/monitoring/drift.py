"""Drift monitoring of one model: the scheduled drift job, its alarms, and the job's code package.

The job (``training/drift.py``) runs as a Lambda on an EventBridge Scheduler schedule. With
``engine: processing`` the same Lambda resolves the live model and starts a SageMaker processing job
that runs the same code from the code package, for volumes a Lambda cannot score in 15 minutes.

Each capture object is scored once: a run scores only what no stored hour partial covers yet (exact bin counts
per feature and capture hour, next to the reports) and reports the window as the sum of its hours' partials.
The processing job runs on ``processing_instance_count`` instances, the run's manifest of new capture objects
shared out by key (``ShardedByS3Key``); each instance stores its counts and the last to finish merges them into
the partials and the report (no extra trigger or role: it sees every shard in S3 once its own is written).

Why a Lambda starts the processing job rather than a Scheduler universal target
(``sagemaker:createProcessingJob``): every run needs a unique job name and the live model's artifact
(DescribeEndpoint -> config -> model), which a static target input cannot carry; and a starter that
finds the bootstrap placeholder (no ``baseline.json`` and no baseline registered on the model package,
``DriftCheckBaselines``) starts nothing, instead of paying for an instance to find out.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.monitoring.jobs import MonitoredModel, job_function, job_network, job_role, job_schedule
from components.code.package import CodePackageArgs, builder_digest, cached_artifact, deterministic_zip, exclusive, pip_download, stored_artifact
from components.monitoring.drift_config import DriftConfig
from components.serving.config import EndpointConfig
from components.model.registry import Model
from components.naming import drift_alarm_name, model_alarm_name
from training.monitoring_contract import DRIFT_REPORTS_PREFIX as REPORTS_PREFIX
from training.monitoring_contract import METRIC_MAX, METRIC_PREDICTION, METRIC_RECORDS, JobSettings

HANDLER = "training.drift.handler"
LAMBDA_MODULES = ("__init__.py", "capture.py", "code_check.py", "drift.py", "metric_names.py", "metrics.py", "monitoring_contract.py", "quality.py", "spill_metrics.py")
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
    return model_alarm_name(prefix, stack, model, "capture-stopped")


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
    with exclusive(cache / f"{wheel.filename}.lock"):  # concurrent synths download it once
        if path.is_file() and _sha256(path.read_bytes()) == wheel.sha256:
            return path
        return _download_wheel(wheel, cache, path)


def _download_wheel(wheel: PinnedWheel, cache: Path, path: Path) -> Path:
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
    inputs = _sha256(json.dumps([[n, _sha256((source / n).read_bytes())] for n in LAMBDA_MODULES] + [NUMPY.sha256]).encode())[:16]
    # The pinned wheel's hash is an input: a hit needs neither the wheel nor its (re-)hashing.
    return cached_artifact(f"{inputs}-{builder_digest()}", build_dir, f"drift-lambda-{inputs}", ".zip",
                           lambda: deterministic_zip(lambda_entries(source, fetch_wheel(NUMPY, wheel_cache or build_dir / "wheels"))))


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


def score_alarm(
    name: str, description: str, namespace: str, metric_name: str, model: str, period: int, threshold: float,
    evaluation_periods: int, datapoints_to_alarm: int, higher_is_worse: bool = True,
) -> AlarmDefinition:
    """A model score past its threshold (the worst datapoint of each period); no data is not breaching: no
    traffic, or too few records to score, is not a bad model."""
    return AlarmDefinition(
        name=name, description=description, namespace=namespace, metric_name=metric_name, dimensions={"Model": model},
        statistic="Maximum" if higher_is_worse else "Minimum", period=period,
        comparison_operator="GreaterThanThreshold" if higher_is_worse else "LessThanThreshold", threshold=threshold,
        evaluation_periods=evaluation_periods, datapoints_to_alarm=datapoints_to_alarm, treat_missing_data="notBreaching",
    )


def stopped_alarm(name: str, description: str, namespace: str, metric_name: str, model: str, period: int, periods: int) -> AlarmDefinition:
    """A count a job publishes every run (0 included) below 1 for ``periods``; missing data breaches, so the
    alarm also fires when the job itself stops publishing."""
    return AlarmDefinition(
        name=name, description=description, namespace=namespace, metric_name=metric_name, dimensions={"Model": model},
        statistic="Sum", period=period, comparison_operator="LessThanThreshold", threshold=1.0,
        evaluation_periods=periods, datapoints_to_alarm=periods, treat_missing_data="breaching",
    )


def alarm_definitions(prefix: str, stack: str, model: str, namespace: str, cfg: DriftConfig) -> list[AlarmDefinition]:
    """The drift, capture-stopped and prediction-drift alarms of a model (see the module docstring)."""
    period, datapoints = cfg.period_seconds, cfg.datapoints_to_alarm or cfg.evaluation_periods
    return [
        score_alarm(
            drift_alarm_name(prefix, stack, model), f"{model}: the largest feature PSI is above {cfg.threshold:g} (input drift); starts retraining",
            namespace, METRIC_MAX, model, period, cfg.threshold, cfg.evaluation_periods, datapoints,
        ),
        stopped_alarm(
            capture_stopped_alarm_name(prefix, stack, model),
            f"{model}: no captured request scored for drift (capture stopped, or the drift job is not running)",
            namespace, METRIC_RECORDS, model, period, cfg.capture_stopped_periods,
        ),
        score_alarm(
            prediction_drift_alarm_name(prefix, stack, model),
            f"{model}: the PSI of the model's answers against its validation split is above {cfg.threshold:g} (prediction drift)",
            namespace, METRIC_PREDICTION, model, period, cfg.threshold, cfg.evaluation_periods, datapoints,
        ),
    ]


def prediction_drift_alarm_name(prefix: str, stack: str, model: str) -> str:
    """The alarm on the model's answers drifting (notifies; retraining follows the input-drift alarm)."""
    return model_alarm_name(prefix, stack, model, "prediction-drift")


def job_error_alarm(prefix: str, stack: str, model: str, function_name: str, job: str = "drift") -> AlarmDefinition:
    """A monitoring job itself failing (an error in its Lambda; the drift one also starts the processing engine's job)."""
    return AlarmDefinition(
        name=model_alarm_name(prefix, stack, model, f"{job}-job-errors"),
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
    only (to find the live artifact, and the baseline registered on the live package when it has none); PutMetricData in the model's namespace (it scores, or reports from the
    stored partials when nothing is new); with the processing engine, starting this model's drift processing
    jobs with the model's SageMaker role (it delegates the new capture).
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
    stmts.append(
        {
            "Sid": "PublishOwnMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",  # PutMetricData has no resource type; the namespace condition scopes it
            "Condition": {"StringEquals": {"cloudwatch:namespace": metric_namespace}},
        }
    )
    if engine != "lambda":
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


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftMonitorArgs(MonitoredModel):
    model: Model
    """The model's platform component (names, buckets, key, metric namespace, SageMaker role)."""
    config: DriftConfig
    """Schedule, window, thresholds and engine of the drift job."""
    code: DriftCode
    """The monitoring jobs' Lambda package (one per stack, shared by every model's monitors)."""
    processing_image: str | None = None
    """Engine ``processing``: the framework image the job runs in. Default: none (required by that engine)."""
    code_package_uri: pulumi.Input[str] | None = None
    """Engine ``processing``: ``s3://.../sourcedir.tar.gz`` with ``training/`` at its root. Default: none."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """Run the function in these subnets (strings, or a created network's Output). Default: outside any VPC."""
    security_group_ids: pulumi.Input[Sequence[str]] = ()
    """The function's security groups (with ``subnet_ids``). Default: none."""


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
        physical = m.names.monitor("drift")
        self.report_prefix = f"{m.model}/{REPORTS_PREFIX}/"

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=m.names.monitor_log_group("drift"),
            retention_in_days=cfg.log_retention_days,
            kms_key_id=m.kms_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        role = job_role(f"{name}-role", self, m, physical, f"Drift job of model {m.model} ({m.stack})", args.tags)
        # The read grants carry kms:Decrypt on the stack key, which also decrypts the function's environment.
        # Either engine lists the capture and reads and writes the hour partials next to the reports (it plans what
        # is new; with nothing new it reports from the partials itself); the processing job's instances write their
        # shards and the merged partials and report with the model's role.
        grants = [
            m.models_bucket.grant_read(role, f"{m.model}/"),
            m.capture_bucket.grant_read(role, f"{m.model}/"),
            m.capture_bucket.grant_write(role, self.report_prefix),
        ]
        if processing:
            m.capture_bucket.grant_write(args.model.role, self.report_prefix)
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

        network, vpc_config = job_network(name, self, m=m, role=role, subnet_ids=args.subnet_ids, security_group_ids=args.security_group_ids)

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
                        processing_instance_count=cfg.processing_instance_count,
                        processing_max_runtime_seconds=cfg.processing_max_runtime_seconds,
                        code_uri=a[2],
                        kms_key_arn=a[3],
                        # In the stack's subnets, where the VPC endpoints give it S3 and CloudWatch without internet.
                        subnet_ids=",".join(a[4] or ()),
                        security_group_ids=",".join(a[5] or ()),
                    )
                    if processing
                    else {}
                ),
            )
            return {"variables": settings.to_env()}

        function = job_function(
            name, self, m=m, job="drift", physical=physical, role=role, log_group=log_group, code=args.code, handler=HANDLER,
            description=f"Drift of model {m.model}'s captured requests against its training baseline ({cfg.engine} engine)",
            memory_mb=cfg.lambda_memory_mb, timeout_seconds=cfg.lambda_timeout_seconds, reserved_concurrency=cfg.lambda_reserved_concurrency,
            environment=pulumi.Output.all(
                m.capture_bucket.bucket_name, args.model.role_arn, args.code_package_uri or "", m.kms_key_arn, args.subnet_ids, args.security_group_ids
            ).apply(environment),
            depends_on=[runtime, *grants, *network], vpc_config=vpc_config, topic_arn=args.topic_arn, tags=args.tags,
        )
        schedule = job_schedule(
            name, self, m=m, job="drift", physical=physical, function=function, expression=cfg.schedule, period_seconds=cfg.period_seconds,
            tags=args.tags,
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
