"""Pulumi components of mlops-stack. Each is a ComponentResource with a typed args model next to it."""

from components.kms import StackKey, StackKeyArgs
from components.notifications import NotificationTopic, NotificationTopicArgs
from components.platform import Platform, PlatformArgs
from components.secure_bucket import ObjectLock, SecureBucket, SecureBucketArgs

__all__ = [
    "NotificationTopic",
    "NotificationTopicArgs",
    "ObjectLock",
    "Platform",
    "PlatformArgs",
    "SecureBucket",
    "SecureBucketArgs",
    "StackKey",
    "StackKeyArgs",
]
