"""The parts every scheduled monitoring job of a model shares (the drift job, the model-quality job).

Each job is a Lambda from the stack's job package, run by an EventBridge Scheduler schedule: a bounded,
source-guarded service role; failed asynchronous runs to an encrypted dead-letter queue with an alarm;
X-Ray tracing and reserved concurrency (a retry storm cannot starve the account). The children keep the
names and parent a job component gave them before these builders existed (``<name>-dlq``, ``<name>-function``,
``<name>-schedule`` ...), so moving a component onto them changes no URN.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.security.roles import service_role

if TYPE_CHECKING:
    from components.model.registry import Model


class MonitoredModel:
    """What a model's monitor (drift, quality) derives from the model (its context and platform), never restated by
    the caller. Mixed into the monitors' args classes, which have a ``model`` field."""

    model: Model

    @property
    def endpoint_name(self) -> str:
        return self.model.args.names.endpoint

    @property
    def topic_arn(self) -> pulumi.Input[str]:
        return self.model.args.platform.topic.topic_arn

    @property
    def log_group_prefix(self) -> str:
        return self.model.args.platform.log_group_prefix

    @property
    def tags(self) -> dict[str, str]:
        return self.model.args.all_tags

    @property
    def protect(self) -> bool:
        return self.model.args.context.protect

RUNTIME = "python3.12"
ARCHITECTURE = "arm64"  # Graviton: cheaper per GB-second, and numpy ships aarch64 wheels


def failure_statements(queue_arn: str, kms_key_arn: str, region: str) -> list[iam.Statement]:
    """A job function's dead-letter queue (encrypted with the stack key) and its X-Ray traces."""
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


def job_role(name: str, parent: pulumi.Resource, m: Any, physical: str, description: str, tags: dict[str, str]) -> aws.iam.Role:
    """The function's role: trusted by Lambda of this account only, within the stack's permissions boundary."""
    return service_role(
        name,
        parent=parent,
        role_name=physical,
        service="lambda.amazonaws.com",
        description=description,
        tags=tags,
        # Lambda sends no aws:SourceArn before the function exists; the account guard still applies.
        source_account=m.account_id,
        permissions_boundary=m.permissions_boundary_arn,
    )


def job_network(
    name: str, parent: pulumi.Resource, *, m: Any, role: aws.iam.Role, subnet_ids: Any, security_group_ids: Any,
) -> tuple[list[pulumi.Resource], dict[str, Any] | None]:
    """In the stack's VPC (when it has one): the function's ENI permissions, only in those subnets and groups, and
    its ``vpc_config``. Returns (resources the function must wait for, vpc_config or None)."""
    from components.network.vpc import as_input_list, in_vpc, lambda_vpc_statements

    if not in_vpc(subnet_ids):
        return [], None
    if not in_vpc(security_group_ids):
        raise ValueError(f"{name!r}: subnet_ids need security_group_ids (the function's ENIs carry them)")
    policy = aws.iam.RolePolicy(
        f"{name}-network",
        role=role.id,
        policy=pulumi.Output.all(m.partition, m.account_id, subnet_ids, security_group_ids).apply(
            lambda a: json.dumps(iam.document(*lambda_vpc_statements(a[0], m.region, a[1], a[2], a[3])))
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return [policy], {"subnet_ids": as_input_list(subnet_ids), "security_group_ids": as_input_list(security_group_ids)}


def job_function(
    name: str,
    parent: pulumi.Resource,
    *,
    m: Any,
    job: str,
    physical: str,
    role: aws.iam.Role,
    log_group: aws.cloudwatch.LogGroup,
    code: Any,
    handler: str,
    description: str,
    memory_mb: int,
    timeout_seconds: int,
    reserved_concurrency: int,
    environment: Any,  # {"variables": {...}}, or an Output of it
    depends_on: list[pulumi.Resource],
    topic_arn: pulumi.Input[str],
    tags: dict[str, str],
    vpc_config: Any = None,
    ephemeral_storage_mb: int | None = None,
) -> aws.lambda_.Function:
    """The job's function, its dead-letter queue and the alarm on it (see the module docstring); ``/tmp`` is
    ``ephemeral_storage_mb`` when given, else Lambda's default (512 MB)."""
    child = pulumi.ResourceOptions(parent=parent)
    dlq = aws.sqs.Queue(
        f"{name}-dlq", name=f"{physical}-dlq"[:80], kms_master_key_id=m.kms_key_arn, message_retention_seconds=1209600, tags=tags, opts=child
    )
    failures = aws.iam.RolePolicy(
        f"{name}-failures-and-traces",
        role=role.id,
        policy=pulumi.Output.all(dlq.arn, m.kms_key_arn).apply(lambda a: json.dumps(iam.document(*failure_statements(a[0], a[1], m.region)))),
        opts=child,
    )
    aws.cloudwatch.MetricAlarm(
        f"{name}-dlq-alarm",
        name=f"{m.job_prefix}-{job}-failed",
        alarm_description=f"A {job} run of {m.model} failed after its retries (messages in {physical}-dlq)",
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": dlq.name},
        statistic="Maximum",
        period=300,
        evaluation_periods=1,
        threshold=0,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        tags=tags,
        opts=child,
    )
    return aws.lambda_.Function(
        f"{name}-function",
        name=physical,
        description=description,
        role=role.arn,
        runtime=RUNTIME,
        architectures=[ARCHITECTURE],
        handler=handler,
        s3_bucket=code.bucket_name,
        s3_key=code.key,
        code_sha256=code.code_sha256,
        memory_size=memory_mb,
        timeout=timeout_seconds,
        ephemeral_storage={"size": ephemeral_storage_mb} if ephemeral_storage_mb else None,
        environment=environment,
        kms_key_arn=m.kms_key_arn,
        dead_letter_config={"target_arn": dlq.arn},
        tracing_config={"mode": "Active"},
        vpc_config=vpc_config,
        reserved_concurrent_executions=reserved_concurrency,
        logging_config={"log_format": "JSON", "log_group": log_group.name, "application_log_level": "INFO", "system_log_level": "WARN"},
        tags=tags,
        # The first run must find its permissions and log group in place.
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[failures, log_group, *depends_on]),
    )


def job_schedule(
    name: str, parent: pulumi.Resource, *, m: Any, job: str, physical: str, function: aws.lambda_.Function, expression: str,
    period_seconds: int, tags: dict[str, str],
) -> aws.scheduler.Schedule:
    """The schedule that invokes the function with the scheduled time, and the role it runs as."""

    scheduler_role = service_role(
        f"{name}-schedule-role",
        parent=parent,
        role_name=m.names.monitor_schedule_role(job),
        service="scheduler.amazonaws.com",
        description=f"EventBridge Scheduler: run the {job} job of model {m.model} ({m.stack})",
        tags=tags,
        source_account=m.account_id,
        permissions_boundary=m.permissions_boundary_arn,
    )
    invoke = aws.iam.RolePolicy(
        f"{name}-schedule-invoke",
        role=scheduler_role.id,
        policy=function.arn.apply(lambda arn: json.dumps(schedule_policy(arn))),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return aws.scheduler.Schedule(
        f"{name}-schedule",
        name=physical,
        description=f"{job.capitalize()} job of model {m.model}",
        schedule_expression=expression,
        schedule_expression_timezone="UTC",
        flexible_time_window={"mode": "OFF"},
        target={
            "arn": function.arn,
            "role_arn": scheduler_role.arn,
            # The job scores the window ending at the scheduled time, whenever the invocation lands.
            "input": json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>"}),
            "retry_policy": {"maximum_retry_attempts": 2, "maximum_event_age_in_seconds": min(period_seconds, 86400)},
        },
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[invoke]),
    )
