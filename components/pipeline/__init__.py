"""The CT flow: spec, state-machine definition, permissions and triggers.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from components._lazy import lazy_getattr

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


__getattr__ = lazy_getattr(__name__, _EXPORTS)
