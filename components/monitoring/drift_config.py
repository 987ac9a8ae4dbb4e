"""Drift-monitoring config of a model (``mlops:models.<name>.drift``), also the args model of DriftMonitor.

Kept apart from ``components/monitoring/drift.py`` so reading a stack's config never imports Pulumi.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.validation import ScheduleExpression, StrictModel, check_schedule, rate_seconds

# CloudWatch Logs accepts only these retention periods.
LogRetentionDays = Literal[1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]


def check_alarm_window(schedule: str, alarm_period_seconds: int | None, **periods: int) -> int:
    """The alarm period of a scheduled monitoring job (one run per period), checked against what CloudWatch and
    hourly capture allow; ``periods`` are the job's alarm look-backs, each at most 7 days long."""
    if alarm_period_seconds is None and rate_seconds(schedule) is None:
        raise ValueError(f"alarm_period_seconds is required with a cron schedule ({schedule}); set it to the time between runs")
    period = alarm_period_seconds or rate_seconds(schedule)
    assert period is not None
    if period % 60 or not 3600 <= period <= 86400:
        raise ValueError(
            f"runs are {period} s apart; they must be whole minutes apart, at least an hour (capture is stored by the hour) "
            "and at most a day (CloudWatch's longest alarm period)"
        )
    for name, count in periods.items():
        if period * count > 604800:
            raise ValueError(f"{name} ({count}) x the alarm period ({period} s) exceeds the 7 days CloudWatch alarms look back; use fewer periods")
    return period


class DriftConfig(StrictModel):

    enabled: bool = Field(True, description="Score captured requests against the training baseline on a schedule (needs endpoint capture).")
    engine: Literal["lambda", "processing"] = Field(
        "lambda",
        description="Where the drift job runs: a Lambda for ordinary volumes, a SageMaker processing job for more than a Lambda scores in its timeout.",
    )
    schedule: ScheduleExpression = Field(
        "rate(1 hour)", description="EventBridge Scheduler expression of the runs: rate(N minutes|hours|days) or cron(6 fields)."
    )
    alarm_period_seconds: int | None = Field(
        None, ge=3600, le=86400, description="Period of the drift alarms; default: the schedule's rate (required with a cron schedule)."
    )
    window_hours: int = Field(24, ge=1, le=168, description="Hours of capture each run scores, ending at the scheduled time.")
    threshold: float = Field(0.2, gt=0, le=10, description="PSI above which a feature counts as drifted and the model's MaxDriftScore alarms.")
    min_records: int = Field(
        200, ge=1, description="Fewest scored records for drift scores to be published; below it only the record counts are."
    )
    evaluation_periods: int = Field(3, ge=1, le=100, description="Periods the drift alarm looks back over.")
    datapoints_to_alarm: int | None = Field(
        None, ge=1, le=100, description="Breaching periods among evaluation_periods that raise the alarm; default: all of them."
    )
    capture_stopped_periods: int = Field(
        3, ge=1, le=100, description="Periods without scored records (or without a run) before the capture-stopped alarm."
    )
    processing_instance_type: str = Field(
        "ml.m5.large", pattern=r"^ml\.", description="Instance of the processing engine's job (engine: processing)."
    )
    processing_instance_count: int = Field(
        1,
        ge=1,
        le=100,
        description="Instances of the processing engine's job (engine: processing); each scores a share of the capture "
        "objects (ShardedByS3Key) and the last one to finish merges their counts exactly into the report.",
    )
    processing_max_runtime_seconds: int = Field(
        3600, ge=300, le=86400, description="Stop a processing run after this long (engine: processing)."
    )
    lambda_memory_mb: int = Field(
        2048, ge=256, le=10240, description="Memory of the drift Lambda; its CPU grows with it (1769 MB is one vCPU). Use stays flat: it streams."
    )
    lambda_timeout_seconds: int = Field(900, ge=30, le=900, description="Timeout of the drift Lambda.")
    lambda_reserved_concurrency: int = Field(
        2, ge=1, le=100, description="Concurrent runs the drift Lambda may have (reserved: a retry storm cannot starve the account)."
    )
    log_retention_days: LogRetentionDays = Field(30, description="Days the drift job's logs are kept.")

    @model_validator(mode="after")
    def _alarm_window(self) -> "DriftConfig":
        check_alarm_window(self.schedule, self.alarm_period_seconds, evaluation_periods=self.evaluation_periods, capture_stopped_periods=self.capture_stopped_periods)
        if self.processing_instance_count > 1 and self.engine != "processing":
            raise ValueError(
                f"processing_instance_count ({self.processing_instance_count}) applies to engine 'processing' only; "
                "set engine: processing, or leave the count at 1"
            )
        if self.datapoints_to_alarm is not None and self.datapoints_to_alarm > self.evaluation_periods:
            raise ValueError(f"datapoints_to_alarm ({self.datapoints_to_alarm}) must be <= evaluation_periods ({self.evaluation_periods})")
        return self

    @property
    def period_seconds(self) -> int:
        """The alarm period: one run of the job per period."""
        return self.alarm_period_seconds or rate_seconds(self.schedule)  # type: ignore[return-value]


__all__ = ["DriftConfig", "LogRetentionDays", "check_alarm_window", "check_schedule", "rate_seconds"]
