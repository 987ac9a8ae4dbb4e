"""The stack's customer-managed KMS key."""

from __future__ import annotations

from dataclasses import dataclass, field

import json

import pulumi
import pulumi_aws as aws

from components.security import iam


@dataclass(frozen=True)
class StackKeyArgs:
    alias: str
    """Alias name without the ``alias/`` prefix."""
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    region: str
    log_group_prefix: str
    """CloudWatch Logs may use the key only for log groups whose names start with this."""
    topic_arn: pulumi.Input[str]
    """The stack topic: alarms and rules may use the key only in its encryption context."""
    stem: str
    """Every physical name of the stack starts with this (the alarms and rules that may publish)."""
    break_glass_arn: pulumi.Input[str]
    """The only principal that may schedule the key's deletion, disable it or replace its policy."""
    deletion_window_days: int = 30
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False


class StackKey(pulumi.ComponentResource):
    """A KMS key with rotation on, a policy without wildcard principals, and an alias."""

    key_arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    alias_name: pulumi.Output[str]

    def __init__(self, name: str, args: StackKeyArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:security:StackKey", name, None, opts)
        policy = pulumi.Output.all(args.account_id, args.partition, args.topic_arn, args.break_glass_arn).apply(
            lambda a: json.dumps(
                iam.key_policy(a[0], a[1], args.region, args.log_group_prefix, topic_arn=a[2], stem=args.stem, break_glass_arn=a[3])
            )
        )
        self._key = aws.kms.Key(
            f"{name}-key",
            description=f"mlops-stack key for {args.alias}: buckets, topic, logs, SageMaker volumes",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=policy,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        alias = aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args.alias}",
            target_key_id=self._key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = self._key.arn
        self.key_id = self._key.key_id
        self.alias_name = alias.name
        self.register_outputs({"key_arn": self.key_arn, "key_id": self.key_id, "alias_name": self.alias_name})
