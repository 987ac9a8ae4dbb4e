"""The platform: the stack key, buckets, topic and boundary every model shares.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.platform.platform import Platform, PlatformArgs
    from components.platform.ref import PlatformRef

_EXPORTS = {
    "Platform": "platform",
    "PlatformArgs": "platform",
    "PlatformRef": "ref",
}

__all__ = [
    "Platform",
    "PlatformArgs",
    "PlatformRef",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
