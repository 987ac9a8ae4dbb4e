"""The CT flow: spec, state-machine definition, permissions and triggers.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.pipeline.config import PipelineConfig
    from components.pipeline.pipeline import TrainingPipeline, TrainingPipelineArgs
    from components.pipeline.spec import JobResources

_EXPORTS = {
    "PipelineConfig": "config",
    "TrainingPipeline": "pipeline",
    "TrainingPipelineArgs": "pipeline",
    "JobResources": "spec",
}

__all__ = [
    "JobResources",
    "PipelineConfig",
    "TrainingPipeline",
    "TrainingPipelineArgs",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
