"""The stack's notification topic: pipeline failures, alarms and deployments reach people here."""

from __future__ import annotations

from dataclasses import dataclass, field

import json

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.naming import short_hash


@dataclass(frozen=True)
class NotificationTopicArgs:
    topic_name: str
    kms_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    region: str = "us-east-1"
    stem: str | None = None
    """Only alarms and rules whose names start with ``<stem>-`` may publish (``None``: any of the account's)."""
    emails: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False


class NotificationTopic(pulumi.ComponentResource):
    """A KMS-encrypted SNS topic that the account's alarms and rules may publish to, with email subscriptions."""

    topic_arn: pulumi.Output[str]
    topic_name: pulumi.Output[str]

    def __init__(self, name: str, args: NotificationTopicArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:notifications:NotificationTopic", name, None, opts)
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=args.topic_name,
            kms_master_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.sns.TopicPolicy(
            f"{name}-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, args.account_id, args.partition).apply(
                lambda a: json.dumps(iam.topic_policy(a[0], a[1], a[2], args.region, args.stem))
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        for email in args.emails:
            # Named by a hash of the address: reordering the list replaces no subscription.
            aws.sns.TopicSubscription(
                f"{name}-email-{short_hash(email)}",
                topic=topic.arn,
                protocol="email",
                endpoint=email,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.topic_arn = topic.arn
        self.topic_name = topic.name
        self.register_outputs({"topic_arn": self.topic_arn, "topic_name": self.topic_name})
