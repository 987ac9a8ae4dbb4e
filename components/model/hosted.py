"""One model on the platform: its registry and role, CT flow, endpoint, drift and quality monitoring, under one
parent, from the platform (or a reference to another stack's) and the model's config.

    platform = Platform("platform", PlatformArgs(context=ctx, models=("churn",)))
    code = CodePackage("code", CodePackageArgs(...))
    HostedModel("churn", HostedModelArgs(context=ctx, platform=platform.ref, code=code, images=..., contract_json=...))

The stack tree shows one ``mlops:model:HostedModel`` per model, with the pieces as its children.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pulumi

from components.code.package import CodePackage
from components.context import StackContext
from components.model.registry import Model, ModelArgs
from components.monitoring.drift import DriftCode, DriftCodeArgs, DriftMonitor, DriftMonitorArgs
from components.monitoring.drift_config import DriftConfig
from components.monitoring.quality import QualityMonitor, QualityMonitorArgs
from components.monitoring.quality_config import QualityConfig
from components.pipeline.config import PipelineConfig
from components.pipeline.pipeline import TrainingPipeline, TrainingPipelineArgs
from components.pipeline.spec import Gate, JobResources, ModelCode
from components.platform.ref import PlatformRef
from components.serving.config import EndpointConfig
from components.serving.endpoint import ModelEndpoint, ModelEndpointArgs
from training.contract import METRIC_DEFINITIONS, Hyperparameters

TOKEN = "mlops:model:HostedModel"


@dataclass(frozen=True)
class ModelImages:
    """The container images of a model."""

    training: str
    """Image of the training and processing jobs (and of drift's ``processing`` engine)."""
    inference: str
    """Image of the endpoint's model."""
    platform: str = ""
    """Image of the platform's own steps (validation, baseline statistics, the built-in evaluate, drift's ``processing``
    engine) when the model brings its own code or framework. Default: ``training``."""
    platform_inference: str = ""
    """The platform's serving image (the endpoint's bootstrap placeholder runs the platform's code). Default: ``inference``."""

    @property
    def all(self) -> list[str]:
        """Every image the model's role pulls (each repository once)."""
        return list(dict.fromkeys(i for i in (self.training, self.inference, self.platform, self.platform_inference) if i))


@dataclass(frozen=True)
class QualityStandard:
    """Live-quality monitoring: captured predictions joined with ground truth, judged against a standard."""

    config: QualityConfig
    """Schedule, window, label delay and alarm settings."""
    task: str
    """``binary``, ``multiclass`` or ``regression`` (``training.metric_names.TASK_METRICS``)."""
    metric: str
    """The metric judged (one of the task's)."""
    threshold: float
    """The production standard."""
    direction: str
    """``higher`` or ``lower`` is better."""


@dataclass(frozen=True)
class HostedModelArgs:
    context: StackContext
    """The stack the model belongs to: names, tags, environment, ``protect``."""
    platform: PlatformRef
    """Buckets, key, topic and boundary (``Platform.ref``, or ``PlatformRef.from_stack`` for another stack's)."""
    code: CodePackage
    """The code package the model's jobs run (``CodePackage``)."""
    images: ModelImages
    """Training and inference images."""
    contract_json: str
    """The model's data contract as JSON (``training.contract.DataContract.model_dump_json()``)."""
    source_dir: Path
    """The model's code directory (the endpoint's bootstrap model ships it)."""
    build_dir: Path
    """Where build artifacts are written (e.g. ``Path.cwd() / ".mlops" / "build"``)."""
    description: str = ""
    """What the model predicts, for people. Default: ``Versions of model <name>``."""
    training: JobResources = field(default_factory=lambda: JobResources("ml.m5.large", 1, 30, 3600))
    """Training instances, volume, time limit. Default one ``ml.m5.large``, 30 GB, one hour."""
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    """The training job's hyperparameters. Default: the built-in recipe's."""
    evaluation_args: tuple[str, ...] = ()
    """The gate's rule as evaluate.py arguments (``EvaluationRule.to_cli_args()``). Default: the recipe's defaults."""
    metric_definitions: tuple[Mapping[str, str], ...] = tuple(METRIC_DEFINITIONS)
    """Regexes SageMaker extracts training metrics with. Default: the built-in recipe's."""
    spot: bool = False
    """Managed spot training. Default off."""
    max_wait_seconds: int = 0
    """With ``spot``: capacity wait plus training time. Default 0."""
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    """Triggers, approval, processing resources of the CT flow. Default: ``PipelineConfig()``."""
    endpoint: EndpointConfig | None = field(default_factory=EndpointConfig)
    """How the model is served; ``None`` (or ``enabled=False``): no endpoint, runs end after registration.
    Default: ``EndpointConfig()``."""
    drift: DriftConfig | None = field(default_factory=DriftConfig)
    """Drift monitoring of captured requests; ``None``: off. Needs an endpoint that captures, and
    ``monitor_code``; without capture it is dropped (logged). Default: ``DriftConfig()``."""
    quality: QualityStandard | None = None
    """Live-quality monitoring; ``None``: off. Needs capture and ``monitor_code``. Default: off."""
    monitor_code: DriftCode | None = None
    """The monitoring jobs' Lambda package, shared by a stack's models. Default: the model makes its own (a
    ``DriftCode`` child, from ``source_dir`` into the platform's models bucket) when drift or quality is on."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """The stack's subnets (strings, or a created network's Output). Default: no VPC."""
    security_group_ids: pulumi.Input[Sequence[str]] = ()
    """Their security groups (with ``subnet_ids``). Default: none."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of this model's resources besides the stack's. Default: none."""
    model_code: ModelCode | None = None
    """The model's own code: entry points and free-form hyperparameters (its package is ``model_code_package``).
    Default: none, the built-in recipe from ``code``."""
    model_code_package: CodePackage | None = None
    """The package of the model's own code (a ``CodePackage`` with ``model_code=True``), with ``model_code``."""
    step_instance_types: Mapping[str, str] = field(default_factory=dict)
    """Instance type per processing step (validate, preprocess, baseline, evaluate). Default: the pipeline config's."""
    metrics: tuple[str, ...] | None = None
    """Metrics the model's evaluation reports. Default: the built-in recipe's binary metrics."""
    gate: Gate | None = None
    """The gate's metric, direction and threshold. Default: the rule in ``evaluation_args``."""

    @property
    def serves(self) -> bool:
        return self.endpoint is not None and self.endpoint.enabled

    @property
    def captures(self) -> bool:
        return self.serves and self.endpoint is not None and self.endpoint.capture.enabled


def validate(name: str, args: HostedModelArgs) -> None:
    """Plain-value checks, before anything is registered."""
    if (args.model_code is None) != (args.model_code_package is None):
        raise ValueError(f"HostedModel {name!r}: model_code and model_code_package go together (a model's own code and its package)")
    if args.quality is not None and not args.captures:
        raise ValueError(
            f"HostedModel {name!r}: quality monitoring joins captured predictions with labels; it needs an endpoint "
            "with capture on (endpoint.capture.enabled) or quality=None"
        )


class HostedModel(pulumi.ComponentResource):
    """A model: registry and role (``Model``), endpoint, CT flow, drift and quality monitors as children.

    Its ``name`` is the model's name (part of every physical name: ``<prefix>-<stack>-<name>-...``)."""

    role_arn: pulumi.Output[str]
    model_package_group_name: pulumi.Output[str]
    state_machine_arn: pulumi.Output[str]
    pipeline_alias_arn: pulumi.Output[str]
    endpoint_name: pulumi.Output[str] | None
    drift_function_name: pulumi.Output[str] | None
    quality_function_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: HostedModelArgs, opts: pulumi.ResourceOptions | None = None):
        validate(name, args)
        super().__init__(TOKEN, name, None, opts)
        c, p = args.context, args.platform
        self.names = c.names(name)
        network = dict(subnet_ids=args.subnet_ids, security_group_ids=args.security_group_ids)

        def child() -> pulumi.ResourceOptions:
            # The pieces keep the names they had at the stack's root (``<kind>-<model>``: construct ids are part of
            # the contract, and grants hash their grantee's name), and answer to their old parent, the root.
            return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)])

        self.registry = Model(
            f"model-{name}",
            ModelArgs(
                model=name, context=c, platform=p, image_uris=args.images.all,
                code_prefix=args.code.prefix, description=args.description, tags=args.tags, **network,
            ),
            child(),
        )
        self.endpoint: ModelEndpoint | None = None
        if args.serves:
            assert args.endpoint is not None
            self.endpoint = ModelEndpoint(
                f"endpoint-{name}",
                ModelEndpointArgs(
                    model=name, context=c, platform=p, config=args.endpoint, role_arn=self.registry.role_arn,
                    # The placeholder before the first model runs the platform's code (its bootstrap answer).
                    inference_image=args.images.platform_inference or args.images.inference, training_source=args.source_dir, build_dir=args.build_dir,
                    tags=args.tags, **network,
                ),
                child(),
            )
        elif args.endpoint is None or not args.endpoint.enabled:
            pulumi.log.info(f"model {name}: no endpoint; CT runs end after registering a version", self)

        monitor_code = args.monitor_code
        wants_monitor = (args.drift is not None and args.drift.enabled and args.captures) or args.quality is not None
        if wants_monitor and monitor_code is None:
            monitor_code = DriftCode(
                f"{name}-monitor-code",
                DriftCodeArgs(source_dir=args.source_dir, bucket_name=p.models.bucket_name, kms_key_arn=p.key.key_arn,
                              build_dir=args.build_dir, prefix=args.code.prefix, tags=c.stack_tags),
                pulumi.ResourceOptions(parent=self),
            )
        self.drift: DriftMonitor | None = None
        if args.drift is not None and args.drift.enabled:
            if not args.captures:
                pulumi.log.info(
                    f"model {name}: drift monitoring is off because its endpoint does not capture requests "
                    "(endpoint.capture.enabled, or no endpoint)", self,
                )
            else:
                assert monitor_code is not None
                self.drift = DriftMonitor(
                    f"drift-{name}",
                    DriftMonitorArgs(
                        model=self.registry, config=args.drift, code=monitor_code, processing_image=args.images.platform or args.images.training,
                        code_package_uri=args.code.s3_uri, **network,
                    ),
                    child(),
                )
        self.quality: QualityMonitor | None = None
        if args.quality is not None:
            assert monitor_code is not None
            q = args.quality
            self.quality = QualityMonitor(
                f"quality-{name}",
                QualityMonitorArgs(
                    model=self.registry, config=q.config, task=q.task, metric=q.metric, threshold=q.threshold,
                    direction=q.direction, code=monitor_code, **network,
                ),
                child(),
            )
        self.pipeline = TrainingPipeline(
            f"pipeline-{name}",
            TrainingPipelineArgs(
                model=name,
                context=c,
                platform=p,
                config=args.pipeline,
                training=args.training,
                contract_json=args.contract_json,
                role_arn=self.registry.role_arn,
                model_package_group_name=self.registry.model_package_group_name,
                code_uri=args.code.s3_uri,
                code_sha256=args.code.sha256,
                training_image=args.images.training,
                inference_image=args.images.inference,
                hyperparameters=args.hyperparameters,
                evaluation_args=args.evaluation_args,
                metric_definitions=args.metric_definitions,
                spot=args.spot,
                max_wait_seconds=args.max_wait_seconds,
                endpoint=args.endpoint if self.endpoint is not None else None,
                capture_uri=self.endpoint.capture_uri if self.endpoint is not None else None,
                quality_alarm_name=self.quality.quality_alarm_name if self.quality is not None and args.quality is not None
                and args.quality.config.retrain_on_alarm else None,
                tags=args.tags,
                model_code=args.model_code,
                model_code_uri=args.model_code_package.s3_uri if args.model_code_package is not None else None,
                platform_image=args.images.platform,
                step_instance_types=dict(args.step_instance_types),
                metrics=args.metrics,
                gate=args.gate,
                **network,
            ),
            child(),
        )

        self.role_arn = self.registry.role_arn
        self.model_package_group_name = self.registry.model_package_group_name
        self.state_machine_arn = self.pipeline.state_machine_arn
        self.pipeline_alias_arn = self.pipeline.alias_arn
        self.endpoint_name = self.endpoint.endpoint_name if self.endpoint is not None else None
        self.drift_function_name = self.drift.function_name if self.drift is not None else None
        self.quality_function_name = self.quality.function_name if self.quality is not None else None
        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "model_package_group_name": self.model_package_group_name,
                "state_machine_arn": self.state_machine_arn,
                "pipeline_alias_arn": self.pipeline_alias_arn,
                "endpoint_name": self.endpoint_name,
                "drift_function_name": self.drift_function_name,
                "quality_function_name": self.quality_function_name,
            }
        )

    def passed_roles(self) -> tuple[tuple[str, str], ...]:
        """(service, role name) of every role of this model a service is handed (the deploy role may pass each
        only to its own service)."""
        n = self.names
        out = [("sagemaker.amazonaws.com", n.role), ("states.amazonaws.com", n.flow_role)]
        args = self.pipeline.args
        t = args.config.triggers
        if t.on_new_data or t.on_drift or args.quality_alarm_name or self.pipeline.deploy_alias_arn is not None:
            out.append(("events.amazonaws.com", n.starter_role("events")))
        if t.schedule is not None:
            out.append(("scheduler.amazonaws.com", n.starter_role("scheduler")))
        for job, monitor in (("drift", self.drift), ("quality", self.quality)):
            if monitor is not None:
                out += [("lambda.amazonaws.com", n.monitor(job)), ("scheduler.amazonaws.com", n.monitor_schedule_role(job))]
        return tuple(out)
