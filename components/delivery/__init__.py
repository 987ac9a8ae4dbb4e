"""Delivery: the CI deploy and preview identities.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.delivery.identity import DeployIdentity, DeployIdentityArgs

_EXPORTS = {
    "DeployIdentity": "identity",
    "DeployIdentityArgs": "identity",
}

__all__ = [
    "DeployIdentity",
    "DeployIdentityArgs",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
