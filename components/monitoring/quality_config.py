"""Live model-quality config of a model (``mlops:models.<name>.quality``), also the args model of QualityMonitor.

Kept apart from ``components/monitoring/quality.py`` so reading a stack's config never imports Pulumi.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.monitoring.drift_config import LogRetentionDays, check_alarm_window
from components.validation import ScheduleExpression, StrictModel, rate_seconds
from training.metric_names import HIGHER_IS_BETTER


class QualityConfig(StrictModel):

    enabled: bool = Field(
        False,
        description="Join captured predictions with delivered ground-truth labels on a schedule and alarm when quality falls "
        "(needs endpoint capture, and a producer of labels: `mlops labels push` or Model Monitor's ground-truth format).",
    )
    schedule: ScheduleExpression = Field("rate(1 day)", description="EventBridge Scheduler expression of the runs: rate(N hours|days) or cron(6 fields).")
    alarm_period_seconds: int | None = Field(
        None, ge=3600, le=86400, description="Period of the quality alarms; default: the schedule's rate (required with a cron schedule)."
    )
    window_hours: int = Field(24, ge=1, le=168, description="Hours of captured predictions each run scores.")
    label_delay_hours: int = Field(
        24, ge=0, le=720, description="How long labels take to arrive: the window ends this many hours before the run (late labels)."
    )
    min_records: int = Field(100, ge=1, description="Fewest joined (prediction, label) pairs for quality metrics to be published.")
    metric: str | None = Field(None, description="The metric the quality alarm watches; default: the gate's primary metric.")
    threshold: float | None = Field(
        None, description="The production standard: the alarm fires below it (above it for a lower-is-better metric); default: the gate's minimum."
    )
    evaluation_periods: int = Field(1, ge=1, le=100, description="Periods the quality alarm looks back over.")
    labels_stopped_periods: int = Field(3, ge=1, le=100, description="Periods without a delivered label (or a run) before the labels-stopped alarm.")
    retrain_on_alarm: bool = Field(False, description="Start a training run when the quality alarm enters ALARM, like the drift alarm.")
    lambda_memory_mb: int = Field(1024, ge=256, le=10240, description="Memory of the quality Lambda.")
    lambda_timeout_seconds: int = Field(900, ge=30, le=900, description="Timeout of the quality Lambda.")
    lambda_ephemeral_storage_mb: int = Field(
        512, ge=512, le=10240,
        description="The quality Lambda's /tmp, where a run's join spills (~51 bytes per captured request at its peak: 512 MB holds ~10 million a window).",
    )
    lambda_reserved_concurrency: int = Field(
        2, ge=1, le=100, description="Concurrent runs the quality Lambda may have (reserved: a retry storm cannot starve the account)."
    )
    log_retention_days: LogRetentionDays = Field(30, description="Days the quality job's logs are kept.")

    @field_validator("metric")
    @classmethod
    def _metric(cls, v: str | None) -> str | None:
        if v is not None and v not in HIGHER_IS_BETTER:
            raise ValueError(f"unknown metric {v!r}; accepted: {', '.join(sorted(HIGHER_IS_BETTER))}")
        return v

    @model_validator(mode="after")
    def _alarm_window(self) -> "QualityConfig":
        check_alarm_window(self.schedule, self.alarm_period_seconds, evaluation_periods=self.evaluation_periods, labels_stopped_periods=self.labels_stopped_periods)
        return self

    @property
    def period_seconds(self) -> int:
        return self.alarm_period_seconds or rate_seconds(self.schedule)  # type: ignore[return-value]

    def standard(self, primary_metric: str, minimum: float) -> tuple[str, float, Literal["higher", "lower"]]:
        """(metric, threshold, direction) of the quality alarm, defaulting to the gate's rule."""
        metric = self.metric or primary_metric
        threshold = self.threshold if self.threshold is not None else minimum
        return metric, threshold, "higher" if HIGHER_IS_BETTER[metric] else "lower"
