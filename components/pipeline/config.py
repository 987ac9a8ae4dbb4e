"""Continuous-training config of a model (``mlops:models.<name>.pipeline``) and the stack's VPC (``mlops:vpc``).

Kept apart from ``components/pipeline/pipeline.py`` so reading a stack's config never imports Pulumi.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from components.monitoring.drift_config import LogRetentionDays
from components.validation import ScheduleExpression, StrictModel, check_schedule

__all__ = ["check_schedule", "CreateVpcConfig", "PipelineConfig", "TriggersConfig", "VpcConfig"]

Approval = Literal["auto", "manual"]




class TriggersConfig(StrictModel):
    schedule: ScheduleExpression | None = Field(
        None, description="Retrain on this EventBridge Scheduler expression, rate(...) or cron(...) in UTC; null: no schedule."
    )
    on_new_data: bool = Field(False, description="Retrain when an object is created under <model>/train/ in the data bucket.")
    on_drift: bool = Field(False, description="Retrain when the model's drift alarm enters ALARM.")
    settle_seconds: int = Field(
        60, ge=0, le=3600, description="With on_new_data: wait this long before reading the data, so a multi-file upload lands."
    )


class PipelineConfig(StrictModel):
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


class CreateVpcConfig(StrictModel):
    """A private VPC the stack creates (``mlops:vpc.create``): see ``components/network/vpc.py``."""

    cidr: str = Field("10.42.0.0/16", description="IPv4 CIDR of the VPC, /16 to /24; split evenly into one private subnet per AZ.")
    azs: int | list[str] = Field(
        2,
        description="Availability zones of the private subnets: a count (2-6; the region's first available zones, "
        "in name order) or their names (e.g. [us-east-1a, us-east-1b]).",
    )
    flow_log_days: LogRetentionDays = Field(365, description="Retention of the VPC flow logs, in days (a CloudWatch Logs value).")

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            net = ipaddress.IPv4Network(v)
        except ValueError as e:
            raise ValueError(f"cidr {v!r} is not an IPv4 network ({e}); expected e.g. 10.42.0.0/16") from None
        if not 16 <= net.prefixlen <= 24:
            raise ValueError(f"cidr {v!r} is /{net.prefixlen}; AWS VPCs here are /16 to /24 (e.g. 10.42.0.0/16)")
        if not net.is_private:
            raise ValueError(f"cidr {v!r} is not a private range; use one of 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16")
        return str(net)

    @field_validator("azs")
    @classmethod
    def _azs(cls, v: int | list[str]) -> int | list[str]:
        if isinstance(v, int):
            if not 2 <= v <= 6:
                raise ValueError(f"azs: {v} zones; expected 2 to 6 (endpoints need two or more)")
            return v
        bad = [z for z in v if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d[a-z]", z)]
        if bad:
            raise ValueError(f"azs {bad} are not availability zone names; expected e.g. us-east-1a")
        if len(set(v)) != len(v) or not 2 <= len(v) <= 6:
            raise ValueError(f"azs {v}: expected 2 to 6 distinct zone names")
        return v

    @property
    def zone_count(self) -> int:
        return self.azs if isinstance(self.azs, int) else len(self.azs)

    def subnet_cidrs(self) -> list[str]:
        """One CIDR per zone: the VPC split into the fewest equal parts that give each zone one (a /24 in six
        zones gives /27s, within AWS's /28 minimum)."""
        net = ipaddress.IPv4Network(self.cidr)
        bits = max(1, (self.zone_count - 1).bit_length())
        return [str(s) for s in list(net.subnets(prefixlen_diff=bits))[: self.zone_count]]


class VpcConfig(StrictModel):
    """Either existing subnets and security groups (``subnet_ids`` + ``security_group_ids``) or ``create``."""

    subnet_ids: list[str] | None = Field(
        None, min_length=1, description="Existing private subnets of the stack's SageMaker jobs and models (two or more AZs for endpoints)."
    )
    security_group_ids: list[str] | None = Field(None, min_length=1, description="Security groups of those jobs and models.")
    create: CreateVpcConfig | None = Field(
        None, description="Create a private VPC (no internet gateway, no NAT, VPC endpoints, flow logs) instead of naming subnets."
    )

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, v: list[str] | None) -> list[str] | None:
        return v if v is None else _ids(v, "subnet")

    @field_validator("security_group_ids")
    @classmethod
    def _groups(cls, v: list[str] | None) -> list[str] | None:
        return v if v is None else _ids(v, "sg")

    @model_validator(mode="after")
    def _one_mode(self) -> "VpcConfig":
        existing = self.subnet_ids is not None or self.security_group_ids is not None
        if self.create is not None and existing:
            raise ValueError(
                "vpc: give either create (the stack makes a private VPC) or subnet_ids + security_group_ids "
                "(existing network), not both"
            )
        if self.create is None and (self.subnet_ids is None or self.security_group_ids is None):
            raise ValueError(
                "vpc: existing network needs both subnet_ids and security_group_ids; or give create: {cidr: 10.42.0.0/16, azs: 2}"
            )
        return self


def _ids(values: list[str], kind: str) -> list[str]:
    bad = [v for v in values if not re.fullmatch(rf"{kind}-[0-9a-f]{{8}}([0-9a-f]{{9}})?", v)]
    if bad:
        raise ValueError(f"{bad} are not {kind} ids; expected {kind}- followed by 8 or 17 hex digits, e.g. {kind}-0123456789abcdef0")
    dupes = sorted({v for v in values if values.count(v) > 1})
    if dupes:
        raise ValueError(f"duplicate ids {dupes}; list each once")
    return values
