"""Serving: the model endpoint and its config.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.serving.config import EndpointConfig
    from components.serving.endpoint import ModelEndpoint, ModelEndpointArgs

_EXPORTS = {
    "EndpointConfig": "config",
    "ModelEndpoint": "endpoint",
    "ModelEndpointArgs": "endpoint",
}

__all__ = [
    "EndpointConfig",
    "ModelEndpoint",
    "ModelEndpointArgs",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
