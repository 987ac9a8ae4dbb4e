"""Networking: the private VPC a stack can create.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.network.vpc import PrivateNetwork, PrivateNetworkArgs

_EXPORTS = {
    "PrivateNetwork": "vpc",
    "PrivateNetworkArgs": "vpc",
}

__all__ = [
    "PrivateNetwork",
    "PrivateNetworkArgs",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
