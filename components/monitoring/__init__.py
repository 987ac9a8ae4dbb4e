"""Monitoring: drift, live model quality and the stack dashboard.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS)
