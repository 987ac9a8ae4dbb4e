"""A private, encrypted, versioned S3 bucket with one child resource per concern."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.naming import short_hash


@dataclass(frozen=True)
class ObjectLock:
    mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    days: int = 30


@dataclass(frozen=True)
class SecureBucketArgs:
    bucket_name: pulumi.Input[str]
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str] | None = None
    """SSE-KMS with this key. ``None`` means SSE-S3, which only an access-log target bucket should use:
    S3 server access logging cannot deliver to a bucket whose default encryption is SSE-KMS."""
    noncurrent_version_days: int = 90
    abort_incomplete_upload_days: int = 7
    expire_current_days: int | None = None
    """Expire current objects after this many days (for log buckets); ``None`` keeps them."""
    access_log_bucket: pulumi.Input[str] | None = None
    """Deliver server access logs to this bucket under ``<component name>/``; ``None`` turns logging off."""
    receives_access_logs: bool = False
    """Allow the S3 logging service of this account to write here."""
    access_log_sources: tuple[pulumi.Input[str], ...] = ()
    """With ``receives_access_logs``: the buckets (names) whose logs may be delivered here; empty: any of the account's."""
    writers: pulumi.Input[dict[str, list[str]]] | None = None
    """Key prefix → the only principal ARNs that may put objects under it (bucket policy)."""
    eventbridge_notifications: bool = False
    object_lock: ObjectLock | None = None
    force_destroy: bool = False
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False


class SecureBucket(pulumi.ComponentResource):
    """All four public-access blocks, BucketOwnerEnforced, default encryption, TLS-only policy, versioning,
    lifecycle, access logging, optional EventBridge notifications and object lock.

    Sub-resources are chained with ``depends_on`` so S3 never sees two configuration writes at once
    ("A conflicting conditional operation is currently in progress").
    """

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]

    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:storage:SecureBucket", name, None, opts)
        if args.receives_access_logs and args.kms_key_arn is not None:
            raise ValueError(
                f"SecureBucket {name!r}: receives_access_logs=True conflicts with kms_key_arn; S3 access-log "
                "delivery needs SSE-S3 on the target bucket (set kms_key_arn=None)"
            )
        if args.object_lock is not None and args.force_destroy:
            raise ValueError(
                f"SecureBucket {name!r}: object_lock conflicts with force_destroy; locked versions cannot be deleted"
            )

        def child(extra: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, depends_on=extra or [])

        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            force_destroy=args.force_destroy,
            object_lock_enabled=args.object_lock is not None,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=child(),
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child([ownership]),
        )
        sse = {"sse_algorithm": "aws:kms", "kms_master_key_id": args.kms_key_arn} if args.kms_key_arn is not None else {"sse_algorithm": "AES256"}
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": sse, "bucket_key_enabled": args.kms_key_arn is not None}],
            opts=child([public_access]),
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child([encryption]),
        )
        rules = [
            {
                "id": "expire-noncurrent-versions",
                "status": "Enabled",
                "filter": {},
                "noncurrent_version_expiration": {"noncurrent_days": args.noncurrent_version_days},
            },
            {
                "id": "abort-incomplete-multipart-uploads",
                "status": "Enabled",
                "filter": {},
                "abort_incomplete_multipart_upload": {"days_after_initiation": args.abort_incomplete_upload_days},
            },
        ]
        if args.expire_current_days is not None:
            rules.append(
                {"id": "expire-current-objects", "status": "Enabled", "filter": {}, "expiration": {"days": args.expire_current_days}}
            )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id, rules=rules, opts=child([versioning])
        )

        def policy_doc(a: list) -> str:
            bucket_arn, account_id, key_arn, partition, writers, *sources = a
            stmts = [iam.deny_insecure_transport(bucket_arn)]
            if key_arn is not None:
                stmts += iam.deny_foreign_encryption(bucket_arn, key_arn)
            if writers:
                stmts += iam.restrict_writers(bucket_arn, writers)
            if args.receives_access_logs:
                source_arns = [f"arn:{partition}:s3:::{b}" for b in sources] or None
                stmts.append(iam.allow_access_log_delivery(bucket_arn, account_id, source_arns))
            return json.dumps(iam.document(*stmts))

        policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(
                bucket.arn, args.account_id, args.kms_key_arn, bucket.arn.apply(lambda arn: arn.split(":")[1]), args.writers,
                *args.access_log_sources
            ).apply(policy_doc),
            opts=child([lifecycle]),
        )
        last: pulumi.Resource = policy
        if args.access_log_bucket is not None:
            last = aws.s3.BucketLogging(
                f"{name}-logging",
                bucket=bucket.id,
                target_bucket=args.access_log_bucket,
                target_prefix=f"{name}/",
                opts=child([last]),
            )
        if args.eventbridge_notifications:
            last = aws.s3.BucketNotification(
                f"{name}-notifications", bucket=bucket.id, eventbridge=True, opts=child([last])
            )
        if args.object_lock is not None:
            aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock",
                bucket=bucket.id,
                rule={"default_retention": {"mode": args.object_lock.mode, "days": args.object_lock.days}},
                opts=child([last]),
            )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = args.kms_key_arn
        self.register_outputs({"bucket_name": self.bucket_name, "bucket_arn": self.bucket_arn})

    # ------------------------------------------------------------------------------------------------------
    # Grants (CDK style): the bucket knows its ARN and key, so call sites never hand-write S3/KMS policies.

    def read_statements(self, prefix: str = "") -> pulumi.Output[list[dict]]:
        return pulumi.Output.all(self.bucket_arn, self.kms_key_arn).apply(
            lambda a: iam.bucket_read_statements(a[0], prefix, a[1])
        )

    def write_statements(self, prefix: str = "") -> pulumi.Output[list[dict]]:
        return pulumi.Output.all(self.bucket_arn, self.kms_key_arn).apply(
            lambda a: iam.bucket_write_statements(a[0], prefix, a[1])
        )

    def grant_read(self, role: aws.iam.Role, prefix: str = "") -> aws.iam.RolePolicy:
        """Let ``role`` read (and list) objects under ``prefix``, including the KMS decrypt it needs."""
        return self._grant("read", role, prefix, self.read_statements(prefix))

    def grant_write(self, role: aws.iam.Role, prefix: str = "") -> aws.iam.RolePolicy:
        """Let ``role`` write objects under ``prefix``, including the KMS data-key permissions it needs."""
        return self._grant("write", role, prefix, self.write_statements(prefix))

    def _grant(self, verb: str, role: aws.iam.Role, prefix: str, statements: pulumi.Output[list[dict]]) -> aws.iam.RolePolicy:
        suffix = short_hash(f"{role.pulumi_resource_name}/{prefix}")
        return aws.iam.RolePolicy(
            f"{self.pulumi_resource_name}-{verb}-{suffix}",
            role=role.id,
            policy=statements.apply(lambda s: json.dumps(iam.document(*s))),
            opts=pulumi.ResourceOptions(parent=self),
        )

