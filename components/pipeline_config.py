"""Continuous-training config of a model (``mlops:models.<name>.pipeline``) and the stack's VPC (``mlops:vpc``).

Kept apart from ``components/pipeline.py`` so reading a stack's config never imports Pulumi.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.drift_config import LogRetentionDays, check_schedule

__all__ = ["check_schedule", "PipelineConfig", "TriggersConfig", "VpcConfig"]

Approval = Literal["auto", "manual"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TriggersConfig(_Strict):
    schedule: str | None = Field(
        None, description="Retrain on this EventBridge Scheduler expression, rate(...) or cron(...) in UTC; null: no schedule."
    )
    on_new_data: bool = Field(False, description="Retrain when an object is created under <model>/train/ in the data bucket.")
    on_drift: bool = Field(False, description="Retrain when the model's drift alarm enters ALARM.")
    settle_seconds: int = Field(
        60, ge=0, le=3600, description="With on_new_data: wait this long before reading the data, so a multi-file upload lands."
    )

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        return None if v is None else check_schedule(v)


class PipelineConfig(_Strict):
    processing_instance_type: str = Field(
        "ml.m5.large", pattern=r"^ml\.", description="Instance of the data-validation and evaluation processing jobs."
    )
    processing_instance_count: int = Field(1, ge=1, le=20, description="Instances of each processing job.")
    processing_volume_size_gb: int = Field(30, ge=1, le=16384, description="EBS volume of each processing instance.")
    processing_max_runtime_seconds: int = Field(
        3600, ge=60, le=432000, description="Stop a validation or evaluation job after this long."
    )
    approval: Approval | None = Field(
        None, description="Register new models as approved (auto) or pending review (manual). Default: auto in dev, manual elsewhere."
    )
    log_retention_days: LogRetentionDays = Field(90, description="Days the flow's execution logs are kept.")
    triggers: TriggersConfig = Field(default_factory=TriggersConfig, description="What starts a retraining run (besides `mlops retrain`).")
    pin_version: int | None = Field(
        None, ge=1, description="Route the flow's aliases to this published version instead of the newest (roll the flow back)."
    )
    staleness_days: int | None = Field(
        None, ge=1, le=7,
        description="Alarm when no run has trained and registered a model for this many days (CloudWatch looks back at most 7). "
        "Default: 7 with a schedule, no alarm without one.",
    )
    dead_letter_retention_days: int = Field(
        14, ge=1, le=14, description="Days a trigger that could not start a run is kept in the flow's dead-letter queue."
    )

    @property
    def effective_staleness_days(self) -> int | None:
        if self.staleness_days is not None:
            return self.staleness_days
        return 7 if self.triggers.schedule is not None else None

    def approval_for(self, environment: str) -> Approval:
        """The effective approval mode: explicit, else automatic in dev and manual in staging and prod."""
        if self.approval is not None:
            return self.approval
        return "auto" if environment == "dev" else "manual"


class VpcConfig(_Strict):
    subnet_ids: list[str] = Field(
        ..., min_length=1, description="Private subnets of the stack's SageMaker jobs and models (two or more AZs for endpoints)."
    )
    security_group_ids: list[str] = Field(..., min_length=1, description="Security groups of those jobs and models.")

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, v: list[str]) -> list[str]:
        return _ids(v, "subnet")

    @field_validator("security_group_ids")
    @classmethod
    def _groups(cls, v: list[str]) -> list[str]:
        return _ids(v, "sg")


def _ids(values: list[str], kind: str) -> list[str]:
    bad = [v for v in values if not re.fullmatch(rf"{kind}-[0-9a-f]{{8}}([0-9a-f]{{9}})?", v)]
    if bad:
        raise ValueError(f"{bad} are not {kind} ids; expected {kind}- followed by 8 or 17 hex digits, e.g. {kind}-0123456789abcdef0")
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"duplicate ids {dupes}; list each once")
    return values
