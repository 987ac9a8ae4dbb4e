"""A reference to an SNS topic: the stack's own (``NotificationTopic``) or one another stack owns (by name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi

if TYPE_CHECKING:
    from components.notifications.topic import NotificationTopic


@dataclass(frozen=True)
class TopicRef:
    """What a publisher needs: the topic's ARN (alarm actions, failure notices)."""

    topic_arn: pulumi.Input[str]
    """The topic's ARN."""

    @classmethod
    def from_topic(cls, topic: "NotificationTopic") -> "TopicRef":
        """The reference of a topic this program creates."""
        return cls(topic.topic_arn)

    @classmethod
    def from_name(cls, name: str, *, region: str, account_id: pulumi.Input[str], partition: pulumi.Input[str] = "aws") -> "TopicRef":
        """A topic another stack owns, by its name (e.g. ``components.naming.topic_name(prefix, stack)``)."""
        return cls(pulumi.Output.concat("arn:", partition, ":sns:", region, ":", account_id, ":", name))
