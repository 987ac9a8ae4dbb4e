"""Live model quality of one model: the scheduled quality job (``training/quality.py``) and its alarms.

The job runs in the same Lambda package as the drift job (``DriftCode``: the job modules and numpy) on an
EventBridge Scheduler schedule. Each run joins the captured predictions of its window with the ground-truth
labels delivered to ``s3://<data bucket>/<model>/ground-truth/`` since, publishes the task's metrics
(``Quality_<metric>``) and the counts (``QualityJoinedRecords``, ``QualityLabelsReceived``,
``QualityUnmatchedLabels``) in the model's namespace with a ``Model`` dimension, and writes a report under
``<model>/quality-reports/`` in the capture bucket, next to the drift reports.

Alarms, actions to the stack topic:
- quality: ``Quality_<metric>`` below the model's production standard (above it for a lower-is-better
  metric) in ``evaluation_periods``; missing data is not breaching (too few labels is not bad quality).
  With ``retrain_on_alarm`` the CT flow's alarm rule starts retraining on its ALARM state change.
- labels stopped: ``QualityLabelsReceived`` below 1 for ``labels_stopped_periods``, missing data breaching
  (no labels delivered, or the job itself not running).
- job errors: the function's own ``Errors`` (as the drift job's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.monitoring.drift import AlarmDefinition, DriftCode, job_error_alarm, score_alarm, stopped_alarm
from components.model.registry import Model
from components.naming import model_alarm_name
from components.monitoring.quality_config import QualityConfig
from components.monitoring.jobs import MonitoredModel, job_function, job_network, job_role, job_schedule
from training.monitoring_contract import GROUND_TRUTH_PREFIX, METRIC_LABELS, QUALITY_METRIC_PREFIX, QualityJob

HANDLER = "training.quality.handler"


def quality_alarm_name(prefix: str, stack: str, model: str) -> str:
    return model_alarm_name(prefix, stack, model, "quality")


def labels_stopped_alarm_name(prefix: str, stack: str, model: str) -> str:
    return model_alarm_name(prefix, stack, model, "labels-stopped")


def alarm_definitions(
    prefix: str, stack: str, model: str, namespace: str, cfg: QualityConfig, metric: str, threshold: float, direction: str
) -> list[AlarmDefinition]:
    """The quality alarm and the labels-stopped alarm of a model (see the module docstring)."""
    below = direction == "higher"
    return [
        score_alarm(
            quality_alarm_name(prefix, stack, model),
            f"{model}: live {metric} from ground truth is {'below' if below else 'above'} the production standard "
            f"{threshold:g}{'; starts retraining' if cfg.retrain_on_alarm else ''}",
            namespace, QUALITY_METRIC_PREFIX + metric, model, cfg.period_seconds, threshold, cfg.evaluation_periods, cfg.evaluation_periods,
            higher_is_worse=not below,
        ),
        stopped_alarm(
            labels_stopped_alarm_name(prefix, stack, model),
            f"{model}: no ground-truth label delivered (labels stopped arriving, or the quality job is not running)",
            namespace, METRIC_LABELS, model, cfg.period_seconds, cfg.labels_stopped_periods,
        ),
    ]


def job_statements(*, partition: str, region: str, account_id: str, log_group_name: str, metric_namespace: str) -> list[iam.Statement]:
    """What the quality function needs besides its bucket grants: its own logs, metrics in the model's namespace."""
    return [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group_name}:*",
        },
        {
            "Sid": "PublishOwnMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",  # PutMetricData has no resource type; the namespace condition scopes it
            "Condition": {"StringEquals": {"cloudwatch:namespace": metric_namespace}},
        },
    ]


@dataclass(frozen=True)
class QualityMonitorArgs(MonitoredModel):
    model: Model
    """The model's platform component (names, buckets, key, metric namespace)."""
    config: QualityConfig
    """Schedule, window, label delay and alarm settings of the quality job."""
    task: str
    """``binary``, ``multiclass`` or ``regression`` (training.metrics.TASK_METRICS)."""
    metric: str
    """The metric judged (one of the task's)."""
    threshold: float
    """The production standard."""
    direction: str
    """The production standard (:meth:`QualityConfig.standard`): metric, threshold, ``higher``/``lower`` is better."""
    code: DriftCode
    """The monitoring jobs' Lambda package (one per stack, shared by every model's monitors)."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """The stack's subnets (strings, or a created network's Output): the function runs in them. Default: no VPC."""
    security_group_ids: pulumi.Input[Sequence[str]] = ()
    """The function's security groups (with ``subnet_ids``). Default: none."""


class QualityMonitor(pulumi.ComponentResource):
    """The scheduled model-quality job of one model and its alarms (see the module docstring)."""

    function_name: pulumi.Output[str]
    function_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    schedule_arn: pulumi.Output[str]
    alarm_names: list[str]
    quality_alarm_name: str
    report_prefix: str

    def __init__(self, name: str, args: QualityMonitorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:monitoring:QualityMonitor", name, None, opts)
        cfg, m = args.config, args.model.args
        child = pulumi.ResourceOptions(parent=self)
        physical = m.names.monitor("quality")
        settings = dict(
            model=m.model, task=args.task, endpoint_name=args.endpoint_name, metric_namespace=m.metric_namespace,
            window_hours=cfg.window_hours, label_delay_hours=cfg.label_delay_hours, min_records=cfg.min_records,
        )
        self.report_prefix = QualityJob(capture_bucket="", data_bucket="", **settings).report_prefix  # type: ignore[arg-type]

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=m.names.monitor_log_group("quality"),
            retention_in_days=cfg.log_retention_days,
            kms_key_id=m.kms_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        role = job_role(f"{name}-role", self, m, physical, f"Model-quality job of model {m.model} ({m.stack})", args.tags)
        # Reads predictions and labels of this model only; writes only its reports. The read grants carry
        # kms:Decrypt on the stack key, which also decrypts the function's environment.
        grants = [
            m.capture_bucket.grant_read(role, f"{m.model}/"),
            m.capture_bucket.grant_write(role, self.report_prefix),
            m.data_bucket.grant_read(role, f"{m.model}/{GROUND_TRUTH_PREFIX}/"),
        ]
        runtime = aws.iam.RolePolicy(
            f"{name}-runtime",
            role=role.id,
            policy=pulumi.Output.all(m.partition, m.account_id, log_group.name).apply(
                lambda a: json.dumps(
                    iam.document(
                        *job_statements(partition=a[0], region=m.region, account_id=a[1], log_group_name=a[2], metric_namespace=m.metric_namespace)
                    )
                )
            ),
            opts=child,
        )
        network, vpc_config = job_network(name, self, m=m, role=role, subnet_ids=args.subnet_ids, security_group_ids=args.security_group_ids)
        function = job_function(
            name, self, m=m, job="quality", physical=physical, role=role, log_group=log_group, code=args.code, handler=HANDLER,
            description=f"Live quality of model {m.model}: captured predictions joined with ground truth",
            memory_mb=cfg.lambda_memory_mb, timeout_seconds=cfg.lambda_timeout_seconds, reserved_concurrency=cfg.lambda_reserved_concurrency,
            ephemeral_storage_mb=cfg.lambda_ephemeral_storage_mb,
            environment=pulumi.Output.all(m.capture_bucket.bucket_name, m.data_bucket.bucket_name).apply(
                lambda a: {"variables": QualityJob(capture_bucket=a[0], data_bucket=a[1], **settings).to_env()}  # type: ignore[arg-type]
            ),
            depends_on=[runtime, *grants, *network], vpc_config=vpc_config, topic_arn=args.topic_arn, tags=args.tags,
        )
        schedule = job_schedule(
            name, self, m=m, job="quality", physical=physical, function=function, expression=cfg.schedule, period_seconds=cfg.period_seconds,
            tags=args.tags,
        )
        definitions = alarm_definitions(m.name_prefix, m.stack, m.model, m.metric_namespace, cfg, args.metric, args.threshold, args.direction)
        definitions.append(job_error_alarm(m.name_prefix, m.stack, m.model, physical, job="quality"))
        for d in definitions:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{d.name.removeprefix(m.job_prefix + '-')}-alarm", tags=args.tags, opts=child, **d.pulumi_args(args.topic_arn)
            )

        self.function_name = function.name
        self.function_arn = function.arn
        self.role_arn = role.arn
        self.schedule_arn = schedule.arn
        self.alarm_names = [d.name for d in definitions]
        self.quality_alarm_name = definitions[0].name
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "role_arn": self.role_arn,
                "schedule_arn": self.schedule_arn,
                "alarm_names": self.alarm_names,
                "quality_alarm_name": self.quality_alarm_name,
                "report_prefix": self.report_prefix,
            }
        )

