"""Monitoring: drift, live model quality and the stack dashboard.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.monitoring.dashboard import DashboardModel, StackDashboard
    from components.monitoring.drift import DriftCode, DriftCodeArgs, DriftMonitor, DriftMonitorArgs
    from components.monitoring.drift_config import DriftConfig
    from components.monitoring.quality import QualityMonitor, QualityMonitorArgs
    from components.monitoring.quality_config import QualityConfig

_EXPORTS = {
    "DashboardModel": "dashboard",
    "StackDashboard": "dashboard",
    "DriftCode": "drift",
    "DriftCodeArgs": "drift",
    "DriftMonitor": "drift",
    "DriftMonitorArgs": "drift",
    "DriftConfig": "drift_config",
    "QualityMonitor": "quality",
    "QualityMonitorArgs": "quality",
    "QualityConfig": "quality_config",
}

__all__ = [
    "DashboardModel",
    "DriftCode",
    "DriftCodeArgs",
    "DriftConfig",
    "DriftMonitor",
    "DriftMonitorArgs",
    "QualityConfig",
    "QualityMonitor",
    "QualityMonitorArgs",
    "StackDashboard",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
