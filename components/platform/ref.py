"""A reference to a platform: what a model needs of it (buckets, key, topic, boundary), whoever owns it.

``Platform.ref`` gives the one this program creates; ``PlatformRef.from_stack`` names the platform of another
stack from that stack's prefix, name, region and account alone (the names are ``components.naming``'s).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import naming
from components.notifications.ref import TopicRef
from components.security.ref import KeyRef
from components.storage.ref import BucketRef


@dataclass(frozen=True)
class PlatformRef:
    """The shared layer a model builds on."""

    data: BucketRef
    """Training data, ground truth (``<model>/train/``, ``<model>/test/``, ``<model>/ground-truth/``)."""
    models: BucketRef
    """Code packages, contracts, runs and artifacts."""
    capture: BucketRef
    """Captured endpoint requests and monitoring reports."""
    key: KeyRef
    """The stack key every bucket, log group and queue of the stack is encrypted with."""
    topic: TopicRef
    """Where alarms and CT failures are notified."""
    log_group_prefix: str
    """Every log group of the stack starts with this (the key policy lets CloudWatch Logs use the key only there)."""
    boundary_arn: pulumi.Input[str] | None = None
    """The permissions boundary every role of the stack carries. Default: none."""

    @classmethod
    def from_stack(cls, *, prefix: str, stack: str, region: str, account_id: str, key_arn: pulumi.Input[str],
                   partition: str = "aws") -> "PlatformRef":
        """The platform of another stack (``prefix``/``stack`` are that stack's), by the names it derives.

        ``account_id`` is a plain string: bucket names contain it, and a reference never waits on a lookup.
        """
        key = KeyRef.from_arn(key_arn)

        def bucket(role: str) -> BucketRef:
            return BucketRef.from_name(naming.bucket_name(prefix, stack, role, account_id, region), key=key,
                                       partition=partition, label=role)

        return cls(
            data=bucket("data"),
            models=bucket("models"),
            capture=bucket("capture"),
            key=key,
            topic=TopicRef.from_name(naming.topic_name(prefix, stack), region=region, account_id=account_id, partition=partition),
            log_group_prefix=naming.log_group_prefix(prefix, stack),
            boundary_arn=f"arn:{partition}:iam::{account_id}:policy/{naming.boundary_name(prefix, stack)}",
        )
