"""A model's SageMaker endpoint: network-isolated model, KMS, data capture, blue/green guardrails, alarms,
autoscaling.

Ownership split between Pulumi and the continuous-training flow (see README, "Serving"):

- Pulumi owns the endpoint (its stable name, deployment guardrails and rollback alarms), the alarms,
  the autoscaling, and the *first* endpoint configuration: a bootstrap placeholder (answers 503 "no
  model trained yet") or, when the config pins ``endpoint.model_package``, that package.
- Unpinned, the CT flow owns model and endpoint-configuration versions: it creates new ones per run
  and calls UpdateEndpoint with the DeploymentConfig built here (``flow_deployment_configs``: every rollback
  alarm, or, leaving the bootstrap placeholder, all but the 5xx one its 503s may trip). Pulumi ignores the endpoint's live
  ``endpointConfigName`` so a later ``pulumi up`` never rolls the endpoint back, and its own models
  and configurations are retained on delete so it never deletes one that is live.
- Pinned (promotion by reviewed config change), Pulumi owns the live configuration too.
"""

from __future__ import annotations

import json
import re
from functools import partial
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.code.package import (
    SOURCEDIR_EXTRA,
    cached_artifact,
    deterministic_targz,
    inputs_digest,
    sourcedir_entries,
    sourcedir_files,
    stored_artifact,
)
from components.code.paths import package_source, work_dir
from components.context import StackContext
from components.naming import short_hash
from components.platform.ref import PlatformRef
from components.network.vpc import as_input_list, in_vpc
from components.serving.config import EndpointConfig
from training.container_contract import SERVING_ENVIRONMENT

VARIANT = "primary"  # blue/green deployments require the same variant name in every configuration
ENDPOINT_NAMESPACE = "AWS/SageMaker"
INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
BOOTSTRAP_MARKER = "bootstrap.json"


# ---------------------------------------------------------------------------------------------------------------
# Pure builders, shared with the CT flow's Deploy state (SageMaker API shapes).


def production_variant(cfg: EndpointConfig, environment: str, model_name: str) -> dict[str, Any]:
    """The ProductionVariant every configuration of this endpoint uses (API shape)."""
    variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": model_name}
    if cfg.kind == "serverless":
        assert cfg.serverless is not None
        variant["ServerlessConfig"] = {"MemorySizeInMB": cfg.serverless.memory_mb, "MaxConcurrency": cfg.serverless.max_concurrency}
    else:
        rt = cfg.realtime_config
        variant.update(
            InstanceType=rt.instance_type,
            InitialInstanceCount=rt.instances(environment),
            InitialVariantWeight=1.0,
            ContainerStartupHealthCheckTimeoutInSeconds=rt.startup_health_check_seconds,
        )
    return variant


def data_capture(cfg: EndpointConfig, capture_uri: str, kms_key_arn: str) -> dict[str, Any]:
    """DataCaptureConfig (API shape): requests and responses, CSV and JSON, encrypted with the stack key."""
    return {
        "EnableCapture": cfg.capture.enabled,
        "InitialSamplingPercentage": cfg.capture.sampling_percent,
        "DestinationS3Uri": capture_uri,
        "KmsKeyId": kms_key_arn,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
    }


def bootstrap_config_prefix(endpoint_name: str) -> str:
    """Name prefix of the endpoint configurations Pulumi makes for the bootstrap placeholder (the CT flow tells
    a first deployment by it). Endpoint names are job prefixes, at most 32 characters: this fits name_prefix's 40."""
    return f"{endpoint_name}-boot-"


def rollback_alarm_names(endpoint_name: str, cfg: EndpointConfig) -> list[str]:
    return [f"{endpoint_name}-{s.suffix}" for s in alarm_specs(cfg) if s.rolls_back]


def flow_deployment_configs(endpoint_name: str, cfg: EndpointConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(every deployment, the first one away from the placeholder) as the CT flow passes them to UpdateEndpoint.

    The placeholder answers 503 by design, so the 5xx-rate alarm may be in ALARM from its own answers when the
    first trained model goes in: that deployment rolls back only on the latency alarm. Both are passed
    explicitly (never RetainDeploymentConfig), so the reduced one is never retained for a later deployment.
    """
    alarms = rollback_alarm_names(endpoint_name, cfg)
    five_xx = f"{endpoint_name}-5xx-rate"
    return deployment_config(cfg, alarms), deployment_config(cfg, [a for a in alarms if a != five_xx])


def deployment_config(cfg: EndpointConfig, rollback_alarms: list[str]) -> dict[str, Any]:
    """DeploymentConfig (API shape): blue/green with the configured traffic shifting, auto-rollback on alarms."""
    d = cfg.deployment
    routing: dict[str, Any] = {"Type": d.strategy.upper(), "WaitIntervalInSeconds": d.wait_interval_seconds}
    if d.strategy == "canary":
        routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": d.canary_percent}
    elif d.strategy == "linear":
        routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": d.linear_step_percent}
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": d.bake_seconds,
            "MaximumExecutionTimeoutInSeconds": d.max_execution_seconds,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in rollback_alarms]},
    }


@dataclass(frozen=True)
class AlarmSpec:
    """One endpoint alarm: enough to declare it in Pulumi and to reason about it in tests."""

    suffix: str
    description: str
    threshold: float
    metric: dict[str, Any] | None = None
    """A single-metric alarm: namespace, metric_name, statistic or extended_statistic."""
    rate_of: tuple[str, str] | None = None
    """A metric-math alarm: 100 * numerator / Invocations."""
    rolls_back: bool = False


def alarm_specs(cfg: EndpointConfig) -> list[AlarmSpec]:
    a = cfg.alarms
    specs = [
        AlarmSpec("5xx-rate", f"5xx errors above {a.error_5xx_percent}% of invocations", a.error_5xx_percent,
                  rate_of=("Invocation5XXErrors", "Invocations"), rolls_back=True),
        AlarmSpec("4xx-rate", f"4xx errors above {a.error_4xx_percent}% of invocations", a.error_4xx_percent,
                  rate_of=("Invocation4XXErrors", "Invocations")),
        AlarmSpec("latency-p99", f"p99 model latency above {a.latency_p99_ms} ms", a.latency_p99_ms * 1000,  # µs
                  metric={"namespace": ENDPOINT_NAMESPACE, "metric_name": "ModelLatency", "extended_statistic": "p99"},
                  rolls_back=True),
    ]
    if cfg.kind == "realtime":
        specs += [
            AlarmSpec("cpu", f"CPU utilization above {a.cpu_percent}%", a.cpu_percent,
                      metric={"namespace": INSTANCE_NAMESPACE, "metric_name": "CPUUtilization", "statistic": "Average"}),
            AlarmSpec("memory", f"memory utilization above {a.memory_percent}%", a.memory_percent,
                      metric={"namespace": INSTANCE_NAMESPACE, "metric_name": "MemoryUtilization", "statistic": "Average"}),
        ]
    return specs


def bootstrap_model_archive(training_source: Path) -> bytes:
    """The placeholder ``model.tar.gz``: the inference code under ``code/`` and a marker instead of a model.

    The serving container loads it like any model; ``training.inference.model_fn`` sees the marker and
    answers every request with 503 "no model has been trained yet", so a fresh stack has a real,
    monitored endpoint from the first ``pulumi up``.
    """
    return deterministic_targz(bootstrap_model_entries(training_source))


def bootstrap_model_entries(training_source: Path) -> list[tuple[str, bytes]]:
    """The placeholder archive's entries (see :func:`bootstrap_model_archive`)."""
    entries = [(f"code/{name}", data) for name, data in sourcedir_entries(training_source)]
    return [*entries, BOOTSTRAP_ENTRY]


BOOTSTRAP_ENTRY = (BOOTSTRAP_MARKER, json.dumps({"bootstrap": True, "reason": "no model has been trained and deployed yet"},
                                                 sort_keys=True).encode())


def bootstrap_model_inputs(training_source: Path, build_dir: Path) -> str:
    """The digest of :func:`bootstrap_model_entries` (``entries_digest``), by the files' stat when recorded."""
    files = [(f"code/{name}", path) for name, path in sourcedir_files(training_source)]
    extra = [*((f"code/{name}", data) for name, data in SOURCEDIR_EXTRA), BOOTSTRAP_ENTRY]
    return inputs_digest(files, extra, "model.tar.gz", build_dir)


def pulumi_args(d: Any) -> Any:
    """API-shape dicts (``MemorySizeInMB``) → pulumi-aws input names (``memory_size_in_mb``): one source for both."""
    if isinstance(d, dict):
        return {re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", k).lower(): pulumi_args(v) for k, v in d.items()}
    if isinstance(d, list):
        return [pulumi_args(v) for v in d]
    return d


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEndpointArgs:
    model: str
    """The model's name (the endpoint is ``components.naming.endpoint_name``)."""
    context: StackContext
    """The stack (names, tags, environment: capacity and instance defaults depend on it)."""
    platform: PlatformRef
    """Models bucket (the bootstrap model), capture bucket, key and topic (alarms)."""
    config: EndpointConfig
    """Kind, capacity, capture, deployment guardrails and alarms of the endpoint."""
    role_arn: pulumi.Input[str]
    """The model's SageMaker execution role."""
    inference_image: str
    """The serving image."""
    training_source: Path = field(default_factory=lambda: package_source("training"))
    """The model code directory the bootstrap model archive ships (default: the installed ``training``)."""
    build_dir: Path = field(default_factory=lambda: work_dir() / "build")
    """Where the bootstrap archive is written before upload (default ``.mlops/build`` in the working directory)."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """The model's subnets: strings, or a created network's Output. Default: no VPC."""
    security_group_ids: pulumi.Input[Sequence[str]] = ()
    """Its security groups (with ``subnet_ids``). Default: none."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of this model's resources besides the stack's. Default: none."""

    @property
    def environment(self) -> str:
        return self.context.environment

    @property
    def endpoint_name(self) -> str:
        return self.context.names(self.model).endpoint

    @property
    def kms_key_arn(self) -> pulumi.Input[str]:
        return self.platform.key.key_arn

    @property
    def models_bucket_name(self) -> pulumi.Input[str]:
        return self.platform.models.bucket_name

    @property
    def capture_bucket_name(self) -> pulumi.Input[str]:
        return self.platform.capture.bucket_name

    @property
    def topic_arn(self) -> pulumi.Input[str]:
        return self.platform.topic.topic_arn

    @property
    def all_tags(self) -> dict[str, str]:
        return self.context.model_tags(self.model, self.tags)


class ModelEndpoint(pulumi.ComponentResource):
    """One endpoint per model; see the module docstring for who owns what."""

    endpoint_name: pulumi.Output[str]
    endpoint_arn: pulumi.Output[str]
    capture_uri: pulumi.Output[str]
    rollback_alarm_names: list[str]
    alarm_names: list[str]

    def __init__(self, name: str, args: ModelEndpointArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:serving:ModelEndpoint", name, None, opts)
        cfg, tags = args.config, args.all_tags
        child = pulumi.ResourceOptions(parent=self)
        pinned = cfg.model_package is not None
        self.capture_uri = pulumi.Output.concat("s3://", args.capture_bucket_name, f"/{args.model}/")

        container: Any  # ModelPrimaryContainerArgsDict
        if pinned:
            assert cfg.model_package is not None
            container = {"model_package_name": cfg.model_package}
            model_tag = short_hash(cfg.model_package)
        else:
            path, sha = cached_artifact(bootstrap_model_inputs(args.training_source, args.build_dir), args.build_dir,
                                        "bootstrap-model", ".tar.gz", lambda: bootstrap_model_archive(args.training_source))
            artifact = stored_artifact(
                f"{name}-bootstrap-artifact", self, bucket_name=args.models_bucket_name, kms_key_arn=args.kms_key_arn,
                tags=tags, key=f"{args.model}/bootstrap/{sha}/model.tar.gz", path=path, sha256=sha,
                content_type="application/gzip",
            )
            container = {
                "image": args.inference_image,
                "model_data_url": pulumi.Output.concat("s3://", artifact.bucket, "/", artifact.key),
                # With network isolation the container cannot fetch code: it ships inside the model archive.
                "environment": dict(SERVING_ENVIRONMENT),  # see training.container_contract: pip must not need the index
            }
            model_tag = sha[:8]

        vpc: Any = {"subnets": as_input_list(args.subnet_ids), "security_group_ids": as_input_list(args.security_group_ids)} if in_vpc(args.subnet_ids) else None
        model_name: pulumi.Input[str] = f"{args.endpoint_name}-{'pin' if pinned else 'boot'}-{model_tag}"[:63]
        if vpc is not None:
            # A model's VpcConfig cannot change in place: its name follows the network, so a replacement is a new
            # model beside the retained one (a fixed name would collide with it).
            model_name = pulumi.Output.all(vpc["subnets"], vpc["security_group_ids"]).apply(partial(_vpc_model_name, str(model_name)))
        model = aws.sagemaker.Model(
            f"{name}-model",
            name=model_name,
            execution_role_arn=args.role_arn,
            primary_container=container,
            enable_network_isolation=True,
            vpc_config=vpc,
            tags=tags,
            # Never delete a model that may still be live behind the endpoint.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        variant = pulumi_args(production_variant(cfg, args.environment, "MODEL"))
        variant["model_name"] = model.name
        endpoint_config = aws.sagemaker.EndpointConfiguration(
            f"{name}-config",
            # Auto-named (a change makes a new configuration) under a prefix the CT flow recognises.
            # (A pinned endpoint keeps its old prefix: Pulumi owns its live configuration, a new one would redeploy.)
            name_prefix=f"{args.endpoint_name}-" if pinned else bootstrap_config_prefix(args.endpoint_name),
            kms_key_arn=args.kms_key_arn,
            production_variants=[variant],
            data_capture_config=pulumi.Output.all(self.capture_uri, args.kms_key_arn).apply(
                lambda a: pulumi_args(data_capture(cfg, a[0], a[1]))
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        specs = alarm_specs(cfg)
        self.alarm_names = [f"{args.endpoint_name}-{s.suffix}" for s in specs]
        self.rollback_alarm_names = rollback_alarm_names(args.endpoint_name, cfg)
        alarms = [self._alarm(name, args, s) for s in specs]

        endpoint = aws.sagemaker.Endpoint(
            f"{name}-endpoint",
            name=args.endpoint_name,
            endpoint_config_name=endpoint_config.name,
            deployment_config=pulumi_args(deployment_config(cfg, self.rollback_alarm_names)),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=alarms,  # rollback alarms must exist before a deployment can watch them
                # Unpinned, the CT flow moves the live configuration; pulumi up must not move it back.
                ignore_changes=[] if pinned else ["endpointConfigName"],
            ),
        )

        if cfg.kind == "realtime" and cfg.realtime_config.autoscaling is not None:
            low, high = cfg.realtime_config.capacity(args.environment)
            scaling = cfg.realtime_config.autoscaling
            target = aws.appautoscaling.Target(
                f"{name}-scaling-target",
                service_namespace="sagemaker",
                resource_id=f"endpoint/{args.endpoint_name}/variant/{VARIANT}",
                scalable_dimension="sagemaker:variant:DesiredInstanceCount",
                min_capacity=low,
                max_capacity=high,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[endpoint]),
            )
            aws.appautoscaling.Policy(
                f"{name}-scaling-policy",
                name=f"{args.endpoint_name}-invocations",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                target_tracking_scaling_policy_configuration={
                    "predefined_metric_specification": {"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"},
                    "target_value": scaling.target_invocations_per_instance,
                    "scale_in_cooldown": scaling.scale_in_cooldown_seconds,
                    "scale_out_cooldown": scaling.scale_out_cooldown_seconds,
                },
                opts=child,
            )

        self.endpoint_name = endpoint.name
        self.endpoint_arn = endpoint.arn
        self.register_outputs(
            {
                "endpoint_name": self.endpoint_name,
                "endpoint_arn": self.endpoint_arn,
                "capture_uri": self.capture_uri,
                "alarm_names": self.alarm_names,
                "rollback_alarm_names": self.rollback_alarm_names,
            }
        )

    def _alarm(self, name: str, args: ModelEndpointArgs, spec: AlarmSpec) -> aws.cloudwatch.MetricAlarm:
        a = args.config.alarms
        dims = {"EndpointName": args.endpoint_name, "VariantName": VARIANT}
        common: Any = dict(
            name=f"{args.endpoint_name}-{spec.suffix}",
            alarm_description=f"{args.model}: {spec.description}",
            comparison_operator="GreaterThanThreshold",
            threshold=spec.threshold,
            evaluation_periods=a.evaluation_periods,
            datapoints_to_alarm=a.evaluation_periods,
            treat_missing_data="notBreaching",  # no traffic is not an outage
            alarm_actions=[args.topic_arn],
            ok_actions=[args.topic_arn],
            tags=args.all_tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        if spec.rate_of is not None:
            numerator, denominator = spec.rate_of

            def metric(metric_id: str, metric_name: str) -> Any:  # MetricAlarmMetricQueryArgsDict
                return {
                    "id": metric_id,
                    "return_data": False,
                    "metric": {
                        "namespace": ENDPOINT_NAMESPACE,
                        "metric_name": metric_name,
                        "dimensions": dims,
                        "period": a.period_seconds,
                        "stat": "Sum",
                    },
                }

            return aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.suffix}",
                metric_queries=[
                    metric("errors", numerator),
                    metric("invocations", denominator),
                    {"id": "rate", "expression": "IF(invocations > 0, 100 * errors / invocations, 0)", "label": f"{numerator} %", "return_data": True},
                ],
                **common,
            )
        assert spec.metric is not None
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.suffix}", dimensions=dims, period=a.period_seconds, **spec.metric, **common
        )


def _vpc_model_name(base: str, network: list[Any]) -> str:
    """A VPC model's name follows its network (subnets and groups), so a new network is a new model."""
    return f"{base[:56]}-{short_hash(json.dumps(network))[:6]}"
