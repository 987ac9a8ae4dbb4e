"""Notifications: the stack's encrypted SNS topic.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.notifications.ref import TopicRef
    from components.notifications.topic import NotificationTopic, NotificationTopicArgs

_EXPORTS = {
    "TopicRef": "ref",
    "NotificationTopic": "topic",
    "NotificationTopicArgs": "topic",
}

__all__ = [
    "NotificationTopic",
    "NotificationTopicArgs",
    "TopicRef",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
