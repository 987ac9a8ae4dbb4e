"""A model's continuous-training flow on Step Functions, with its triggers (see ``components.pipeline.definition``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence, cast

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.security.roles import service_role
from components.serving.endpoint import bootstrap_config_prefix, data_capture, flow_deployment_configs, production_variant
from components.serving.config import EndpointConfig
from components.context import StackContext
from components.naming import ModelNames
from components.platform.ref import PlatformRef
from components.network.vpc import in_vpc
from components.pipeline.config import PipelineConfig
from components.pipeline.spec import DEPLOY_ALIAS, TRAINING_ALIAS, Gate, JobResources, ModelCode, PipelineSpec
from components.pipeline.definition import TRAINED_METRIC, build_definition
from components.pipeline.permissions import state_machine_statements
from components.pipeline.triggers import (
    RuleSpec,
    approval_rule,
    drift_rule,
    quality_rule,
    new_data_rule,
    schedule_target_input,
    start_execution_statement,
)
from training.contract import METRICS, Hyperparameters

SCHEDULER_TARGET = "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
# AWS/States execution metrics that mean a run ended without finishing its own work: the safety net for
# whatever the flow's own catches miss (States.Runtime cannot be caught).
EXECUTION_ALARMS = {
    "ExecutionsFailed": "failed",
    "ExecutionsTimedOut": "timed-out",
    "ExecutionsAborted": "aborted",
}
# Triggers that cannot start a run: EventBridge and Scheduler retry for an hour, then park the event here.
TRIGGER_RETRY: Any = {"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 10}


@dataclass(frozen=True)
class TrainingPipelineArgs:
    model: str
    """The model's name: part of every physical name of the flow."""
    context: StackContext
    """The stack (names, tags, environment, ``protect`` of the log group)."""
    platform: PlatformRef
    """Data and models buckets (grants), capture bucket, key, topic, log-group prefix and boundary."""
    config: PipelineConfig
    """Triggers, approval, processing resources, log retention of the flow."""
    training: JobResources
    """The training job's instances, volume and time limit."""
    contract_json: str
    """The model's data contract as JSON (stored next to the runs, read by every job)."""
    role_arn: pulumi.Input[str]
    """The model's SageMaker execution role."""
    model_package_group_name: pulumi.Input[str]
    """The model's registry group (the flow registers every trained version there)."""
    code_uri: pulumi.Input[str]
    """``s3://.../sourcedir.tar.gz``: the code package the jobs run."""
    code_sha256: str
    """The package's SHA-256 (a changed package changes the definition, so a new version is published)."""
    training_image: str
    """Image of the training and processing jobs."""
    inference_image: str
    """Image of the models the flow deploys."""
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    """The training job's hyperparameters. Default: the recipe's defaults."""
    evaluation_args: tuple[str, ...] = ()
    """The model's evaluation rule as evaluate.py arguments (``EvaluationRule.to_cli_args()``). Default: none."""
    metric_definitions: tuple[Mapping[str, str], ...] = ()
    """Regexes SageMaker extracts training metrics with. Default: none."""
    spot: bool = False
    """Managed spot training. Default off."""
    max_wait_seconds: int = 0
    """With ``spot``: how long to wait for capacity plus training. Default 0 (no spot)."""
    endpoint: EndpointConfig | None = None
    """The model's serving config; None (no endpoint) or a pinned model package: runs end after registration."""
    capture_uri: pulumi.Input[str] | None = None
    """Where the endpoint captures requests (the serving component's ``capture_uri``). Default: none."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """The jobs' subnets: strings, or a created network's Output. Default: no VPC."""
    security_group_ids: pulumi.Input[Sequence[str]] = ()
    """The jobs' security groups (with ``subnet_ids``). Default: none."""
    quality_alarm_name: str | None = None
    """The model's live-quality alarm; when given, its ALARM state starts a training run (``quality.retrain_on_alarm``).
    Default: none."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of this model's resources besides the stack's. Default: none."""

    model_code: ModelCode | None = None
    """The model's own code (entry points, hyperparameters; its ``code_uri`` is taken from ``model_code_uri``);
    None: the built-in recipe from the platform's package (``code_uri``)."""
    model_code_uri: pulumi.Input[str] | None = None
    """S3 URI of the model's own package (a CodePackage's ``s3_uri``), with ``model_code``."""
    platform_image: str = ""
    """Image of the platform's steps (validation, baseline, the built-in evaluate); default: ``training_image``."""
    step_instance_types: Mapping[str, str] = field(default_factory=dict)
    """Instance type per processing step (validate, preprocess, baseline, evaluate). Default: the training job's."""
    metrics: tuple[str, ...] | None = None
    """Metrics the model's evaluation.json reports (default: the built-in recipe's binary metrics)."""
    gate: Gate | None = None
    """The gate's metric, direction and threshold (GateVerdict checks it on the report). Default: the evaluation rule."""

    @property
    def names(self) -> ModelNames:
        return self.context.names(self.model)

    @property
    def environment(self) -> str:
        return self.context.environment

    @property
    def job_prefix(self) -> str:
        return self.names.job_prefix

    @property
    def endpoint_name(self) -> str:
        return self.names.endpoint

    @property
    def drift_alarm_name(self) -> str:
        return self.names.drift_alarm

    @property
    def all_tags(self) -> dict[str, str]:
        return self.context.model_tags(self.model, self.tags)

    @property
    def deploy_enabled(self) -> bool:
        return self.endpoint is not None and self.endpoint.enabled and self.endpoint.model_package is None

    @property
    def contract_key(self) -> str:
        return f"{self.model}/contract/{hashlib.sha256(self.contract_json.encode()).hexdigest()}.json"

    @property
    def state_machine_name(self) -> str:
        return self.names.state_machine


def validate_args(args: TrainingPipelineArgs) -> None:
    """The flow's plain-value checks, run before any resource (``PipelineSpec`` repeats them for direct use)."""
    if in_vpc(args.subnet_ids) != in_vpc(args.security_group_ids):
        raise ValueError(
            f"TrainingPipeline {args.model!r}: subnet_ids and security_group_ids go together; a VPC job needs both (or neither)"
        )
    if args.deploy_enabled and args.capture_uri is None:
        raise ValueError(f"TrainingPipeline {args.model!r}: a flow that deploys needs the endpoint's capture_uri")


class TrainingPipeline(pulumi.ComponentResource):
    """The state machine (published versions behind aliases), its role, log group and trigger rules."""

    state_machine_arn: pulumi.Output[str]
    state_machine_name: pulumi.Output[str]
    alias_arn: pulumi.Output[str]
    deploy_alias_arn: pulumi.Output[str] | None
    log_group_name: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None):
        validate_args(args)  # before anything is registered, the component itself included
        super().__init__("mlops:pipeline:TrainingPipeline", name, None, opts)
        self.args = args
        cfg, c, p = args.config, args.context, args.platform
        tags = args.all_tags
        child = pulumi.ResourceOptions(parent=self)
        sm_name = args.state_machine_name

        contract = aws.s3.BucketObjectv2(
            f"{name}-contract",
            bucket=p.models.bucket_name,
            key=args.contract_key,
            content=args.contract_json,
            content_type="application/json",
            server_side_encryption="aws:kms",
            kms_key_id=p.key.key_arn,
            # Named by content: every contract a registered model was validated against stays readable.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True),
        )

        self.spec: pulumi.Output[PipelineSpec] = pulumi.Output.all(
            c.account_id,
            c.partition,
            p.key.key_arn,
            p.topic.topic_arn,
            args.role_arn,
            args.model_package_group_name,
            p.data.bucket_name,
            p.models.bucket_name,
            p.capture.bucket_name,
            args.code_uri,
            contract.key,
            args.model_code_uri,
            args.capture_uri,
            args.subnet_ids,
            args.security_group_ids,
        ).apply(lambda v: self._spec(*v))

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"{p.log_group_prefix}states/{sm_name}",
            retention_in_days=cfg.log_retention_days,
            kms_key_id=p.key.key_arn,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=c.protect),
        )

        role = service_role(
            f"{name}-role",
            parent=self,
            role_name=args.names.flow_role,
            service="states.amazonaws.com",
            description=f"Continuous-training flow of model {args.model} ({c.stack})",
            tags=tags,
            source_account=c.account_id,
            permissions_boundary=p.boundary_arn,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=self.spec.apply(lambda s: json.dumps(iam.document(*state_machine_statements(s)))),
            opts=child,
        )
        grants = [
            p.data.grant_read(role, f"{args.model}/train/"),  # list the data, read its version id
            p.data.grant_read(role, f"{args.model}/test/"),  # is there a holdout?
            p.models.grant_read(role, f"{args.model}/runs/"),  # the QualityGate reads evaluation.json
        ]

        state_machine = aws.sfn.StateMachine(
            f"{name}-state-machine",
            name=sm_name,
            type="STANDARD",
            role_arn=role.arn,
            definition=self.spec.apply(lambda s: json.dumps(build_definition(s), indent=2)),
            publish=True,
            logging_configuration={
                "log_destination": pulumi.Output.concat(log_group.arn, ":*"),
                "include_execution_data": True,
                "level": "ALL",
            },
            tracing_configuration={"enabled": True},
            tags=tags,
            # Step Functions checks the role can deliver logs when the state machine is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, *grants]),
        )

        # Every definition change publishes a new version; the aliases follow the newest unless pinned,
        # and pinning an earlier version (pipeline.pin_version) rolls the flow back.
        if cfg.pin_version is not None:
            version_arn = self.spec.apply(lambda s: f"{s.state_machine_arn}:{cfg.pin_version}")
        else:
            version_arn = state_machine.state_machine_version_arn
        alias = aws.sfn.Alias(
            f"{name}-alias",
            name=TRAINING_ALIAS,
            description=f"Training runs of {args.model}: triggers and `mlops retrain` start here",
            routing_configurations=[{"state_machine_version_arn": version_arn, "weight": 100}],
            opts=child,
        )
        self.deploy_alias_arn = None
        # (suffix, rule, alias its target starts): suffixes are static so resource names never wait on Outputs.
        rules: list[tuple[str, pulumi.Output[RuleSpec], aws.sfn.Alias]] = []
        if cfg.triggers.on_new_data:
            rules.append(("new-data", self.spec.apply(new_data_rule), alias))
        if cfg.triggers.on_drift:
            rules.append(("drift", self.spec.apply(lambda s: drift_rule(s, args.drift_alarm_name)), alias))
        if args.quality_alarm_name:
            quality_alarm = args.quality_alarm_name
            rules.append(("quality", self.spec.apply(lambda s: quality_rule(s, quality_alarm)), alias))
        if self._deploy_mode:
            deploy_alias = aws.sfn.Alias(
                f"{name}-deploy-alias",
                name=DEPLOY_ALIAS,
                description=f"Deploy-only runs of {args.model}, started when a package is approved",
                routing_configurations=[{"state_machine_version_arn": version_arn, "weight": 100}],
                opts=child,
            )
            self.deploy_alias_arn = deploy_alias.arn
            rules.append(("approved", self.spec.apply(approval_rule), deploy_alias))

        dlq = None
        if rules or cfg.triggers.schedule is not None:
            # Encrypted with SQS-managed keys: EventBridge may write to it without a grant on the stack key.
            dlq = aws.sqs.Queue(
                f"{name}-trigger-dlq",
                name=args.names.trigger_dlq,
                sqs_managed_sse_enabled=True,
                message_retention_seconds=cfg.dead_letter_retention_days * 86400,
                tags=tags,
                opts=child,
            )
        if rules:
            assert dlq is not None
            aliases = sorted({TRAINING_ALIAS if target is alias else DEPLOY_ALIAS for *_, target in rules})
            events_role = self._starter_role(name, "events", "events.amazonaws.com", aliases)
            rule_arns = []
            for suffix, rule_spec, target_alias in rules:
                rule_arns.append(self._rule(name, suffix, rule_spec, events_role, target_alias, dlq))
            aws.sqs.QueuePolicy(
                f"{name}-trigger-dlq-policy",
                queue_url=dlq.url,
                policy=pulumi.Output.all(dlq.arn, *rule_arns).apply(
                    lambda v: json.dumps(iam.document({
                        "Sid": "OwnRulesParkUndeliveredTriggers",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": v[0],
                        "Condition": {"ArnEquals": {"aws:SourceArn": sorted(v[1:])}},
                    }))
                ),
                opts=child,
            )
        if cfg.triggers.schedule is not None:
            assert dlq is not None
            scheduler_role = self._starter_role(name, "scheduler", "scheduler.amazonaws.com", [TRAINING_ALIAS], dlq_arn=dlq.arn)
            aws.scheduler.Schedule(
                f"{name}-schedule",
                name=args.names.retrain_schedule,
                description=f"Retrain {args.model} on {cfg.triggers.schedule} (UTC)",
                schedule_expression=cfg.triggers.schedule,
                flexible_time_window={"mode": "OFF"},
                target=cast(Any, {
                    "arn": SCHEDULER_TARGET,
                    "role_arn": scheduler_role.arn,
                    "input": self.spec.apply(schedule_target_input),
                    "retry_policy": TRIGGER_RETRY,
                    "dead_letter_config": {"arn": dlq.arn},
                }),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[alias]),
            )

        self._alarms(name, state_machine)

        self.state_machine_arn = state_machine.arn
        self.state_machine_name = state_machine.name
        self.alias_arn = alias.arn
        self.log_group_name = log_group.name
        self.role_arn = role.arn
        self.register_outputs(
            {
                "state_machine_arn": self.state_machine_arn,
                "state_machine_name": self.state_machine_name,
                "alias_arn": self.alias_arn,
                "deploy_alias_arn": self.deploy_alias_arn,
                "log_group_name": self.log_group_name,
                "role_arn": self.role_arn,
            }
        )

    @property
    def _deploy_mode(self) -> bool:
        """Approvals start deploy-only runs: manual approval of a model the flow deploys."""
        a = self.args
        return a.deploy_enabled and a.config.approval_for(a.environment) == "manual"

    def _spec(self, account_id: str, partition: str, kms_key_arn: str, topic_arn: str, role_arn: str, group: str,
              data_bucket: str, models_bucket: str, capture_bucket: str, code_uri: str, contract_key: str,
              model_code_uri: str | None, capture_uri: str | None, subnet_ids: list[str], security_group_ids: list[str]) -> PipelineSpec:
        a, cfg = self.args, self.args.config
        serving: dict[str, Any] = {}
        if a.deploy_enabled:
            assert a.endpoint is not None and capture_uri is not None, "a deploying flow needs the endpoint's capture_uri"
            # The same variant and capture the serving component gives the endpoint's own configurations.
            serving = {
                "endpoint_variant": production_variant(a.endpoint, a.environment, "per-run"),
                "data_capture": data_capture(a.endpoint, capture_uri, kms_key_arn),
                "deployment_configs": flow_deployment_configs(a.endpoint_name, a.endpoint),
                "bootstrap_config_prefix": bootstrap_config_prefix(a.endpoint_name),
                # Wait out the guardrails' longest deployment (traffic shifting, then the bake) and a margin.
                "deploy_timeout_seconds": a.endpoint.deployment.max_execution_seconds + a.endpoint.deployment.bake_seconds + 900,
            }
        return PipelineSpec(
            model=a.model,
            stack=a.context.stack,
            partition=partition,
            region=a.context.region,
            account_id=account_id,
            state_machine_name=a.state_machine_name,
            job_prefix=a.job_prefix,
            endpoint_name=a.endpoint_name,
            role_arn=role_arn,
            model_package_group=group,
            data_bucket=data_bucket,
            models_bucket=models_bucket,
            capture_bucket=capture_bucket,
            kms_key_arn=kms_key_arn,
            topic_arn=topic_arn,
            code_uri=code_uri,
            code_sha256=a.code_sha256,
            contract_key=contract_key,
            training_image=a.training_image,
            inference_image=a.inference_image,
            training=a.training,
            processing=JobResources(
                instance_type=cfg.processing_instance_type,
                instance_count=cfg.processing_instance_count,
                volume_size_gb=cfg.processing_volume_size_gb,
                max_runtime_seconds=cfg.processing_max_runtime_seconds,
            ),
            hyperparameters=a.hyperparameters,
            evaluation_args=a.evaluation_args,
            metric_definitions=a.metric_definitions,
            spot=a.spot,
            max_wait_seconds=a.max_wait_seconds,
            approval=cfg.approval_for(a.environment),
            deploy_enabled=a.deploy_enabled,
            **serving,
            subnet_ids=tuple(subnet_ids or ()),
            security_group_ids=tuple(security_group_ids or ()),
            settle_seconds=cfg.triggers.settle_seconds,
            tags=a.all_tags,
            model_code=dataclasses.replace(a.model_code, code_uri=model_code_uri or "") if a.model_code is not None else None,
            platform_image=a.platform_image,
            step_instance_types=dict(a.step_instance_types),
            metrics=a.metrics if a.metrics is not None else METRICS,
            gate=a.gate,
        )

    def _alarms(self, name: str, state_machine: aws.sfn.StateMachine) -> None:
        """Runs that end failed, timed out or aborted, and a model that has not been retrained for too long."""
        a, cfg = self.args, self.args.config
        for metric, what in EXECUTION_ALARMS.items():
            aws.cloudwatch.MetricAlarm(
                f"{name}-{what}-alarm",
                name=a.names.ct_alarm(f"runs-{what}"),
                alarm_description=f"{a.model}: a continuous-training run {what.replace('-', ' ')} (see the execution in the Step Functions console)",
                namespace="AWS/States",
                metric_name=metric,
                dimensions={"StateMachineArn": state_machine.arn},
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                datapoints_to_alarm=1,
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                treat_missing_data="notBreaching",
                alarm_actions=[a.platform.topic.topic_arn],
                tags=a.all_tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
        days = cfg.effective_staleness_days
        if days is not None:
            namespace, metric = TRAINED_METRIC
            aws.cloudwatch.MetricAlarm(
                f"{name}-stale-alarm",
                name=a.names.ct_alarm("stale"),
                alarm_description=f"{a.model}: no run has trained and registered a model for {days} days",
                namespace=namespace,
                metric_name=metric,
                dimensions={"StateMachine": a.state_machine_name},
                statistic="Sum",
                period=86400,
                evaluation_periods=days,
                datapoints_to_alarm=days,
                comparison_operator="LessThanThreshold",
                threshold=1,
                # No datapoint is no training: missing data breaches.
                treat_missing_data="breaching",
                alarm_actions=[a.platform.topic.topic_arn],
                ok_actions=[a.platform.topic.topic_arn],
                tags=a.all_tags,
                opts=pulumi.ResourceOptions(parent=self),
            )

    def _starter_role(self, name: str, kind: str, service: str, aliases: list[str], dlq_arn: pulumi.Output[str] | None = None) -> aws.iam.Role:
        """A role an AWS service assumes to start runs, only through the given aliases (Scheduler: and park failures)."""
        a = self.args
        role = service_role(
            f"{name}-{kind}-role",
            parent=self,
            role_name=a.names.starter_role(kind),
            service=service,
            description=f"Lets {service} start runs of the {a.model} flow ({a.context.stack})",
            tags=a.all_tags,
            source_account=a.context.account_id,
            permissions_boundary=a.platform.boundary_arn,
        )
        def document(v: list[Any]) -> str:
            statements = [start_execution_statement(v[0], tuple(aliases))]
            if len(v) > 1:
                # Scheduler writes undeliverable invocations to the DLQ as this role.
                statements.append({"Sid": "ParkUndeliveredTriggers", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": v[1]})
            return json.dumps(iam.document(*statements))

        aws.iam.RolePolicy(
            f"{name}-{kind}-start",
            role=role.id,
            policy=pulumi.Output.all(self.spec, *([dlq_arn] if dlq_arn is not None else [])).apply(document),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role

    def _rule(self, name: str, suffix: str, rule_spec: pulumi.Output[RuleSpec], role: aws.iam.Role, alias: aws.sfn.Alias,
              dlq: aws.sqs.Queue) -> pulumi.Output[str]:
        a = self.args
        rule = aws.cloudwatch.EventRule(
            f"{name}-{suffix}",
            name=a.names.trigger_rule(suffix),
            description=rule_spec.apply(lambda r: r.description),
            event_pattern=rule_spec.apply(lambda r: r.pattern_json),
            tags=a.all_tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.cloudwatch.EventTarget(
            f"{name}-{suffix}-target",
            rule=rule.name,
            target_id="start-run",
            arn=alias.arn,
            role_arn=role.arn,
            input_transformer=cast(Any, {
                "input_paths": rule_spec.apply(lambda r: r.input_paths),
                "input_template": rule_spec.apply(lambda r: r.input_template),
            }),
            retry_policy=TRIGGER_RETRY,
            dead_letter_config={"arn": dlq.arn},
            opts=pulumi.ResourceOptions(parent=self),
        )
        return rule.arn
