"""The platform layer every model of a stack shares: key, buckets, notification topic."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import json

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.security.key import StackKey, StackKeyArgs
from components.naming import boundary_name, bucket_name, resource_name, stem, topic_name
from components.notifications.topic import NotificationTopic, NotificationTopicArgs
from components.storage.bucket import ObjectLock, SecureBucket, SecureBucketArgs


@dataclass(frozen=True)
class PlatformArgs:
    name_prefix: str
    stack: str
    region: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    tags: dict[str, str] = field(default_factory=dict)
    existing_key_arn: str | None = None
    """Use this KMS key instead of creating one."""
    key_deletion_window_days: int = 30
    noncurrent_version_days: int = 90
    abort_incomplete_upload_days: int = 7
    model_object_lock: ObjectLock | None = None
    access_logs: bool = True
    access_log_days: int = 365
    force_destroy: bool = False
    emails: list[str] = field(default_factory=list)
    break_glass_arn: str | None = None
    """The only principal that may delete, disable or re-policy the stack key. Default: role ``<prefix>-break-glass``."""
    capture_expiration_days: int = 30
    """Captured request/response payloads are deleted this many days after capture."""
    code_writers: tuple[str, ...] = ()
    """Role names that may write code packages, bootstrap artifacts and contracts (the deploy role); empty: unrestricted."""
    run_writers: dict[str, str] = field(default_factory=dict)
    """Model → the role name that writes its run outputs (``<model>/runs/``: the model's SageMaker role)."""
    flow_writers: dict[str, str] = field(default_factory=dict)
    """Model → its CT flow's role: it alone writes the data snapshots (``<model>/snapshots/``) and may write the
    run markers under ``<model>/runs/`` (the pending new-data trigger)."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """The stack's subnets (strings, or a created network's Output): the boundary denies SageMaker workloads outside them."""
    sagemaker_log_groups: tuple[str, ...] = ()
    """SageMaker log groups to create before SageMaker does (stack key, retention): endpoints', jobs'."""
    sagemaker_log_days: int = 365
    protect: bool = False

    @property
    def stem(self) -> str:
        return stem(self.name_prefix, self.stack)

    @property
    def log_group_prefix(self) -> str:
        """Every log group of the stack starts with this (the key policy scopes CloudWatch Logs to it)."""
        return f"/mlops/{self.name_prefix}-{self.stack}/"


class Platform(pulumi.ComponentResource):
    """KMS key, the data/models/capture buckets (plus the access-logs bucket) and the SNS topic."""

    kms_key_arn: pulumi.Output[str]
    data_bucket: SecureBucket
    models_bucket: SecureBucket
    capture_bucket: SecureBucket
    logs_bucket: SecureBucket | None
    topic: NotificationTopic

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:platform:Platform", name, None, opts)
        self.args = args
        parent = pulumi.ResourceOptions(parent=self)

        break_glass = pulumi.Output.all(args.partition, args.account_id).apply(
            lambda a: args.break_glass_arn or f"arn:{a[0]}:iam::{a[1]}:role/{args.name_prefix}-break-glass"
        )
        self.break_glass_arn = break_glass
        topic_physical = topic_name(args.name_prefix, args.stack)
        topic_arn = pulumi.Output.all(args.partition, args.account_id).apply(
            lambda a: f"arn:{a[0]}:sns:{args.region}:{a[1]}:{topic_physical}"
        )
        if args.existing_key_arn:
            self.key = None
            self.kms_key_arn = pulumi.Output.from_input(args.existing_key_arn)
        else:
            self.key = StackKey(
                f"{name}-key",
                StackKeyArgs(
                    alias=resource_name(args.name_prefix, args.stack),
                    account_id=args.account_id,
                    partition=args.partition,
                    region=args.region,
                    log_group_prefix=args.log_group_prefix,
                    topic_arn=topic_arn,
                    stem=args.stem,
                    break_glass_arn=break_glass,
                    deletion_window_days=args.key_deletion_window_days,
                    tags=args.tags,
                    protect=args.protect,
                ),
                parent,
            )
            self.kms_key_arn = self.key.key_arn

        def physical(role: str) -> pulumi.Output[str]:
            return pulumi.Output.from_input(args.account_id).apply(
                lambda acct: bucket_name(args.name_prefix, args.stack, role, acct, args.region)
            )

        # The permissions boundary of every role the stack creates (the deploy identity's own roles excepted).
        self.boundary = aws.iam.Policy(
            f"{name}-boundary",
            name=boundary_name(args.name_prefix, args.stack),
            description=f"Permissions boundary of every role of stack {args.stack}: no IAM writes, no role assumption, isolated jobs",
            policy=pulumi.Output.all(args.partition, args.account_id, args.subnet_ids).apply(
                lambda a: json.dumps(iam.permissions_boundary(a[0], args.region, a[1], list(a[2] or [])))
            ),
            tags=args.tags,
            opts=parent,
        )
        self.boundary_arn = self.boundary.arn

        def writer_map(a: list[str]) -> dict[str, list[str]]:
            partition, account, glass = a
            role_arn = lambda role: f"arn:{partition}:iam::{account}:role/{role}"  # noqa: E731
            out: dict[str, list[str]] = {}
            if args.code_writers:
                code = [role_arn(r) for r in args.code_writers] + [glass]
                out["code/"] = code
                for model in args.run_writers:
                    out[f"{model}/bootstrap/"] = code
                    out[f"{model}/contract/"] = code
            for model, role in args.run_writers.items():
                flow = [role_arn(args.flow_writers[model])] if model in args.flow_writers else []
                out[f"{model}/runs/"] = [role_arn(role), *flow]
                if flow:
                    out[f"{model}/snapshots/"] = flow
            return out

        writers = pulumi.Output.all(args.partition, args.account_id, break_glass).apply(writer_map)

        self.logs_bucket = None
        log_target = None
        if args.access_logs:
            self.logs_bucket = self._bucket(
                name, "logs", physical("logs"), kms=None, receives_access_logs=True, expire_current_days=args.access_log_days,
                access_log_sources=tuple(physical(r) for r in ("data", "models", "capture")), eventbridge=True,
            )
            log_target = self.logs_bucket.bucket_name
        self.data_bucket = self._bucket(name, "data", physical("data"), log_target=log_target, eventbridge=True)
        self.models_bucket = self._bucket(
            name, "models", physical("models"), log_target=log_target, lock=args.model_object_lock, eventbridge=True, writers=writers
        )
        self.capture_bucket = self._bucket(
            name, "capture", physical("capture"), log_target=log_target, eventbridge=True,
            expire_current_days=args.capture_expiration_days,
        )

        self.topic = NotificationTopic(
            f"{name}-notifications",
            NotificationTopicArgs(
                topic_name=topic_physical,
                kms_key_arn=self.kms_key_arn,
                account_id=args.account_id,
                partition=args.partition,
                region=args.region,
                stem=args.stem,
                emails=args.emails,
                tags=args.tags,
                protect=args.protect,
            ),
            parent,
        )
        self._key_events(name)
        for group in args.sagemaker_log_groups:
            # Created before SageMaker would (unencrypted, kept forever): the stack key and a retention.
            aws.cloudwatch.LogGroup(
                f"{name}-log-{group.rsplit('/', 1)[-1]}",
                name=group,
                retention_in_days=args.sagemaker_log_days,
                kms_key_id=self.kms_key_arn,
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
        self.register_outputs(
            {
                "kms_key_arn": self.kms_key_arn,
                "boundary_arn": self.boundary_arn,
                "data_bucket_name": self.data_bucket.bucket_name,
                "models_bucket_name": self.models_bucket.bucket_name,
                "capture_bucket_name": self.capture_bucket.bucket_name,
                "logs_bucket_name": self.logs_bucket.bucket_name if self.logs_bucket else None,
                "topic_arn": self.topic.topic_arn,
            }
        )

    def _bucket(
        self,
        name: str,
        role: str,
        physical: pulumi.Output[str],
        *,
        kms: object = "stack",
        log_target: pulumi.Input[str] | None = None,
        eventbridge: bool = False,
        lock: ObjectLock | None = None,
        receives_access_logs: bool = False,
        expire_current_days: int | None = None,
        access_log_sources: tuple = (),
        writers: pulumi.Input[dict] | None = None,
    ) -> SecureBucket:
        a = self.args
        return SecureBucket(
            f"{name}-{role}",
            SecureBucketArgs(
                bucket_name=physical,
                account_id=a.account_id,
                kms_key_arn=self.kms_key_arn if kms == "stack" else None,
                noncurrent_version_days=a.noncurrent_version_days,
                abort_incomplete_upload_days=a.abort_incomplete_upload_days,
                expire_current_days=expire_current_days,
                access_log_bucket=log_target,
                receives_access_logs=receives_access_logs,
                access_log_sources=access_log_sources,
                writers=writers,
                eventbridge_notifications=eventbridge,
                object_lock=lock,
                force_destroy=a.force_destroy and lock is None,
                tags={**a.tags, "mlops:bucket": role},
                protect=a.protect,
            ),
            pulumi.ResourceOptions(parent=self),
        )

    def _key_events(self, name: str) -> None:
        """Tell the stack topic when anyone schedules the key's deletion, disables it or replaces its policy
        (CloudTrail management events, delivered to EventBridge), and when AWS deletes it."""
        a = self.args
        patterns = {
            "key-changes": self.kms_key_arn.apply(
                lambda arn: json.dumps(
                    {
                        "source": ["aws.kms"],
                        "detail-type": ["AWS API Call via CloudTrail"],
                        "detail": {
                            "eventSource": ["kms.amazonaws.com"],
                            "eventName": list(KEY_EVENTS),
                            "resources": {"ARN": [arn]},
                        },
                    }
                )
            ),
            "key-deleted": self.kms_key_arn.apply(
                lambda arn: json.dumps({"source": ["aws.kms"], "detail-type": ["KMS CMK Deletion"], "resources": [arn]})
            ),
        }
        for suffix, pattern in patterns.items():
            rule = aws.cloudwatch.EventRule(
                f"{name}-{suffix}",
                name=resource_name(a.name_prefix, a.stack, suffix, limit=64),
                description=f"Stack key of {a.stack}: {suffix.replace('-', ' ')}",
                event_pattern=pattern,
                tags=a.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{suffix}-target",
                rule=rule.name,
                target_id="stack-topic",
                arn=self.topic.topic_arn,
                opts=pulumi.ResourceOptions(parent=self),
            )


KEY_EVENTS = ("ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy", "DisableKeyRotation")
