"""Serving config of a model (``mlops:models.<name>.endpoint``), also the args model of ModelEndpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.validation import StrictModel



class AutoscalingConfig(StrictModel):
    """Target tracking on the variant's instance count."""

    min_capacity: int | None = Field(None, ge=1, le=100, description="Fewest instances (default: the initial count).")
    max_capacity: int = Field(4, ge=1, le=100, description="Most instances.")
    target_invocations_per_instance: float = Field(
        100.0, gt=0, description="Target of SageMakerVariantInvocationsPerInstance (per minute) for target tracking."
    )
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600, description="Wait after a scale-in before another.")
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600, description="Wait after a scale-out before another.")

    @model_validator(mode="after")
    def _bounds(self) -> "AutoscalingConfig":
        if self.min_capacity is not None and self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity ({self.min_capacity}) must be <= max_capacity ({self.max_capacity})")
        return self


class RealtimeConfig(StrictModel):
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.", description="Instance type of the endpoint variant.")
    initial_instance_count: int | None = Field(
        None, ge=1, le=100, description="Instances at start. Default: 2 in prod (two AZs), 1 elsewhere."
    )
    autoscaling: AutoscalingConfig | None = Field(
        default_factory=AutoscalingConfig, description="Target tracking on invocations per instance; null turns it off."
    )
    # The scikit-learn image's server installs the code directory, then each worker imports pandas, scipy and
    # scikit-learn: first /ping 200 came after 46-120 s on a loaded 2-core instance before the import was cut, ~16-22 s
    # after (README, "Serving"). 600 s is five times the worst start seen, and a broken model still fails its
    # deployment within ten minutes instead of SageMaker's own bound.
    startup_health_check_seconds: int = Field(
        600, ge=60, le=3600,
        description="ContainerStartupHealthCheckTimeoutInSeconds: how long a new instance may take to answer /ping.",
    )

    def instances(self, environment: str) -> int:
        if self.initial_instance_count is not None:
            return self.initial_instance_count
        return 2 if environment == "prod" else 1

    def capacity(self, environment: str) -> tuple[int, int]:
        """(min, max) of the scalable target; the max never drops below the min."""
        assert self.autoscaling is not None, "capacity() is only asked when autoscaling is configured"
        low = self.autoscaling.min_capacity or self.instances(environment)
        return low, max(low, self.autoscaling.max_capacity)


class ServerlessConfig(StrictModel):
    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(2048, description="Memory of each serverless worker.")
    max_concurrency: int = Field(5, ge=1, le=200, description="Concurrent invocations before throttling.")


class CaptureConfig(StrictModel):
    enabled: bool = Field(True, description="Capture requests and responses to the capture bucket (drift reads them).")
    sampling_percent: int = Field(100, ge=1, le=100, description="Share of requests captured.")


class DeploymentGuardrails(StrictModel):
    strategy: Literal["all_at_once", "canary", "linear"] = Field("canary", description="Blue/green traffic shifting.")
    canary_percent: int = Field(10, ge=1, le=50, description="With canary: share of capacity that gets the new model first.")
    linear_step_percent: int = Field(25, ge=5, le=50, description="With linear: share of capacity shifted per step.")
    wait_interval_seconds: int = Field(300, ge=0, le=3600, description="Wait between traffic-shifting steps (alarms watched).")
    bake_seconds: int = Field(600, ge=0, le=3600, description="Watch the full new fleet this long before the old one is gone.")
    max_execution_seconds: int = Field(3600, ge=600, le=14400, description="Give up (and roll back) after this long.")


class EndpointAlarms(StrictModel):
    error_5xx_percent: float = Field(1.0, gt=0, le=100, description="5xx share of invocations that alarms (and rolls back).")
    error_4xx_percent: float = Field(10.0, gt=0, le=100, description="4xx share of invocations that alarms (notify only).")
    latency_p99_ms: float = Field(1000.0, gt=0, description="p99 model latency that alarms (and rolls back).")
    cpu_percent: float = Field(
        80.0, gt=0, description="Per-instance CPUUtilization (100 per vCPU, so 4 vCPUs peak at 400). Real-time only."
    )
    memory_percent: float = Field(85.0, gt=0, le=100, description="MemoryUtilization that alarms. Real-time only.")
    period_seconds: Literal[60, 300] = Field(60, description="Alarm period.")
    evaluation_periods: int = Field(3, ge=1, le=30, description="Periods over the threshold before ALARM.")


class EndpointConfig(StrictModel):
    enabled: bool = Field(True, description="Serve the model from a SageMaker endpoint.")
    realtime: RealtimeConfig | None = Field(None, description="A real-time endpoint on instances (the default kind).")
    serverless: ServerlessConfig | None = Field(None, description="A serverless endpoint instead of instances.")
    capture: CaptureConfig = Field(default_factory=CaptureConfig, description="Data capture for drift monitoring.")
    deployment: DeploymentGuardrails = Field(
        default_factory=DeploymentGuardrails, description="How a new model replaces the live one."
    )
    alarms: EndpointAlarms = Field(default_factory=EndpointAlarms, description="Health alarm thresholds.")
    model_package: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9-]+/\d+$",
        description="Pin the live model to this approved model package (promotion by reviewed config change).",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> "EndpointConfig":
        if self.realtime is not None and self.serverless is not None:
            raise ValueError("endpoint.realtime and endpoint.serverless are exclusive; keep the one you want")
        return self

    @property
    def kind(self) -> Literal["realtime", "serverless"]:
        return "serverless" if self.serverless is not None else "realtime"

    @property
    def realtime_config(self) -> RealtimeConfig:
        return self.realtime or RealtimeConfig()
