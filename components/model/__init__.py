"""A model: its registry, role and (composed) CT flow, endpoint and monitoring.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

if TYPE_CHECKING:
    from components.model.hosted import HostedModel, HostedModelArgs, ModelImages, QualityStandard
    from components.model.registry import Model, ModelArgs

_EXPORTS = {
    "HostedModel": "hosted",
    "HostedModelArgs": "hosted",
    "ModelImages": "hosted",
    "QualityStandard": "hosted",
    "Model": "registry",
    "ModelArgs": "registry",
}

__all__ = [
    "HostedModel",
    "HostedModelArgs",
    "Model",
    "ModelArgs",
    "ModelImages",
    "QualityStandard",
]


__getattr__ = lazy_getattr(__name__, _EXPORTS)
