"""Security primitives: the IAM policy model, the stack key and service roles.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.security.key import StackKey, StackKeyArgs
    from components.security.ref import KeyRef

_EXPORTS = {
    "StackKey": "key",
    "StackKeyArgs": "key",
    "KeyRef": "ref",
}

__all__ = [
    "KeyRef",
    "StackKey",
    "StackKeyArgs",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
