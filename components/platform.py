"""The platform layer every model of a stack shares: key, buckets, notification topic."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi

from components.kms import StackKey, StackKeyArgs
from components.naming import bucket_name, resource_name
from components.notifications import NotificationTopic, NotificationTopicArgs
from components.secure_bucket import ObjectLock, SecureBucket, SecureBucketArgs


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
    protect: bool = False

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

        self.logs_bucket = None
        log_target = None
        if args.access_logs:
            self.logs_bucket = self._bucket(
                name, "logs", physical("logs"), kms=None, receives_access_logs=True, expire_current_days=args.access_log_days
            )
            log_target = self.logs_bucket.bucket_name
        self.data_bucket = self._bucket(name, "data", physical("data"), log_target=log_target, eventbridge=True)
        self.models_bucket = self._bucket(name, "models", physical("models"), log_target=log_target, lock=args.model_object_lock)
        self.capture_bucket = self._bucket(name, "capture", physical("capture"), log_target=log_target)

        self.topic = NotificationTopic(
            f"{name}-notifications",
            NotificationTopicArgs(
                topic_name=resource_name(args.name_prefix, args.stack, "notifications", limit=256),
                kms_key_arn=self.kms_key_arn,
                account_id=args.account_id,
                emails=args.emails,
                tags=args.tags,
                protect=args.protect,
            ),
            parent,
        )
        self.register_outputs(
            {
                "kms_key_arn": self.kms_key_arn,
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
                eventbridge_notifications=eventbridge,
                object_lock=lock,
                force_destroy=a.force_destroy and lock is None,
                tags={**a.tags, "mlops:bucket": role},
                protect=a.protect,
            ),
            pulumi.ResourceOptions(parent=self),
        )
