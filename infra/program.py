"""Compose the stack from its typed config. Called by ``infra/__main__.py`` under the real or the mock engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from components.code.package import CodePackage, CodePackageArgs
from components.serving.endpoint import ModelEndpoint, ModelEndpointArgs
from components.model.registry import Model, ModelArgs
from components.monitoring.dashboard import DashboardModel, StackDashboard
from components.delivery.identity import DeployIdentity, DeployIdentityArgs
from components.monitoring.drift import DriftCode, DriftCodeArgs, DriftMonitor, DriftMonitorArgs, monitored
from components.naming import (
    deploy_role_name, drift_alarm_name, endpoint_name, flow_role_name, job_prefix, model_role_name, overlapping_stems, resource_name, stem,
)
from components.naming import tags as make_tags
from components.pipeline.pipeline import TrainingPipeline, TrainingPipelineArgs
from components.pipeline.spec import Gate, JobResources, ModelCode
from components.network.vpc import PrivateNetwork, PrivateNetworkArgs
from components.platform.platform import Platform, PlatformArgs
from components.monitoring.quality import QualityMonitor, QualityMonitorArgs
from components.storage.bucket import ObjectLock
from infra import images as image_registry
from infra.config import PROJECT_ROOT, STACKS_DIR, ConfigError, StackConfig, config_from_pulumi, pinned_package_problems
from training.contract import METRIC_DEFINITIONS, Hyperparameters

TRAINING_SOURCE = PROJECT_ROOT / "training"
BUILD_DIR = PROJECT_ROOT / ".mlops" / "build"
CODE_PREFIX = "code"

# Services the stack touches; the local stack points each at LocalStack.
LOCALSTACK_SERVICES = (
    "s3", "sts", "iam", "kms", "sns", "sqs", "cloudwatch", "logs", "events", "scheduler",
    "lambda_", "sfn", "sagemaker", "ssm", "applicationautoscaling",
)


def provider_args(cfg: StackConfig) -> dict:
    """Arguments of the stack's explicit AWS provider: region, profile, LocalStack wiring."""
    args: dict = {"region": cfg.region}
    if cfg.aws_profile:
        args["profile"] = cfg.aws_profile
    if cfg.localstack is not None:
        url = cfg.localstack.endpoint
        args.update(
            access_key="test",
            secret_key="test",
            s3_use_path_style=True,
            skip_credentials_validation=True,
            skip_metadata_api_check=True,
            skip_requesting_account_id=True,
            # Typed: a raw dict would send the key "lambda_" (pulumi-aws #4004); the args class maps it to "lambda".
            endpoints=[aws.ProviderEndpointArgs(**{svc: url for svc in LOCALSTACK_SERVICES})],
        )
    return args


def check_pinned_account(pinned: dict[str, str], account: str) -> None:
    """A pinned model package must live in the account the stack deploys to (fails the update when it does not)."""
    foreign = {n: arn for n, arn in pinned.items() if arn.split(":")[4] != account}
    if foreign:
        raise ValueError(
            "; ".join(f"mlops:models.{n}.endpoint.model_package {arn} is in another account than this stack's ({account})" for n, arn in foreign.items())
        )


def build(cfg: StackConfig) -> dict[str, pulumi.Output]:
    """Register every resource of the stack and return its outputs."""
    stack = pulumi.get_stack()
    problems = pinned_package_problems(cfg, stack)
    if problems:
        raise ConfigError(f"stacks/Pulumi.{stack}.yaml", problems)
    refuse_overlapping_scopes(cfg, stack)
    images = image_registry.resolve(cfg, f"stacks/Pulumi.{stack}.yaml")  # may refuse config: before any resource
    provider = aws.Provider("aws", **provider_args(cfg))
    providers = pulumi.ResourceOptions(providers={"aws": provider})
    invoke = pulumi.InvokeOptions(provider=provider)
    identity = aws.get_caller_identity_output(opts=invoke)
    partition = aws.get_partition_output(opts=invoke)
    pinned = {n: m.endpoint.model_package for n, m in cfg.models.items() if m.endpoint.model_package}
    if pinned:
        identity.account_id.apply(lambda account: check_pinned_account(pinned, account))
    base_tags = make_tags(stack, cfg.environment.value, cfg.tags)

    # A created network needs the platform's key and buckets, and the platform's boundary names the network's
    # subnets: the boundary takes them through a deferred Output, resolved right after the network exists.
    created = cfg.vpc.create if cfg.vpc is not None else None
    boundary_subnets, resolve_boundary_subnets = pulumi.deferred_output() if created else (None, None)
    net = StackNetwork.existing(cfg)
    platform = Platform(
        "platform",
        PlatformArgs(
            name_prefix=cfg.name_prefix,
            stack=stack,
            region=cfg.region,
            account_id=identity.account_id,
            partition=partition.partition,
            tags=base_tags,
            existing_key_arn=cfg.keys.key_arn,
            key_deletion_window_days=cfg.keys.deletion_window_days,
            noncurrent_version_days=cfg.storage.noncurrent_version_days,
            abort_incomplete_upload_days=cfg.storage.abort_incomplete_upload_days,
            model_object_lock=ObjectLock(**cfg.storage.model_object_lock.model_dump()) if cfg.storage.model_object_lock else None,
            access_logs=cfg.storage.access_logs,
            access_log_days=cfg.storage.access_log_days,
            force_destroy=cfg.storage.force_destroy,
            emails=list(cfg.notifications.emails),
            break_glass_arn=cfg.keys.break_glass_principal_arn,
            capture_expiration_days=cfg.storage.capture_expiration_days,
            code_writers=(deploy_role_name(cfg.name_prefix, stack),) if cfg.deploy is not None else (),
            run_writers={name: model_role_name(cfg.name_prefix, stack, name) for name in cfg.models},
            flow_writers={name: flow_role_name(cfg.name_prefix, stack, name) for name in cfg.models},
            subnet_ids=boundary_subnets if created else net.subnet_ids,
            sagemaker_log_groups=sagemaker_log_groups(cfg, stack),
            sagemaker_log_days=cfg.storage.sagemaker_log_days,
            protect=cfg.protected,
        ),
        providers,
    )
    network = None
    if created is not None:
        try:
            network = create_network(cfg, stack, created, identity, partition, platform, base_tags, providers)
        except Exception as e:
            # The boundary waits on the subnets: fail it too, rather than leave the program waiting or write it without them.
            resolve_boundary_subnets(pulumi.Output.from_input(None).apply(lambda _, err=e: _raise(err)))
            raise
        resolve_boundary_subnets(network.subnet_ids)
        net = StackNetwork(network.subnet_ids, network.security_group_id.apply(lambda g: [g]))
    code_args = CodePackageArgs(
        source_dir=TRAINING_SOURCE,
        bucket_name=platform.models_bucket.bucket_name,
        kms_key_arn=platform.kms_key_arn,
        build_dir=BUILD_DIR,
        prefix=CODE_PREFIX,
        tags=base_tags,
    )
    code = CodePackage("code", code_args, providers)
    model_codes = model_packages(cfg, code_args, providers)
    models = {}
    endpoints: dict[str, ModelEndpoint] = {}
    pipelines: dict[str, TrainingPipeline] = {}
    monitors: dict[str, DriftMonitor] = {}
    quality: dict[str, QualityMonitor] = {}
    drift_code: DriftCode | None = None  # one Lambda package per stack, made when a model first needs it
    for name, model_cfg in cfg.models.items():
        model_tags = make_tags(stack, cfg.environment.value, {**cfg.tags, **model_cfg.tags}, model=name)
        models[name] = Model(
            f"model-{name}",
            ModelArgs(
                model=name,
                name_prefix=cfg.name_prefix,
                stack=stack,
                region=cfg.region,
                account_id=identity.account_id,
                partition=partition.partition,
                data_bucket=platform.data_bucket,
                models_bucket=platform.models_bucket,
                capture_bucket=platform.capture_bucket,
                kms_key_arn=platform.kms_key_arn,
                code_prefix=CODE_PREFIX,
                image_uris=images[name].all,
                subnet_ids=net.subnet_ids,
                security_group_ids=net.security_group_ids,
                permissions_boundary_arn=platform.boundary_arn,
                description=model_cfg.description,
                tags=model_tags,
                protect=cfg.protected,
            ),
            providers,
        )
        if model_cfg.endpoint.enabled:
            endpoints[name] = ModelEndpoint(
                f"endpoint-{name}",
                ModelEndpointArgs(
                    model=name,
                    environment=cfg.environment.value,
                    endpoint_name=endpoint_name(cfg.name_prefix, stack, name),
                    config=model_cfg.serving,
                    role_arn=models[name].role_arn,
                    # The placeholder before the first model runs the platform's code (its bootstrap answer).
                    inference_image=images[name].platform_inference or images[name].inference,
                    kms_key_arn=platform.kms_key_arn,
                    models_bucket_name=platform.models_bucket.bucket_name,
                    capture_bucket_name=platform.capture_bucket.bucket_name,
                    topic_arn=platform.topic.topic_arn,
                    training_source=TRAINING_SOURCE,
                    build_dir=BUILD_DIR,
                    subnet_ids=net.subnet_ids,
                    security_group_ids=net.security_group_ids,
                    tags=model_tags,
                ),
                providers,
            )
        if name in endpoints and monitored(model_cfg.endpoint, model_cfg.drift):
            drift_code = drift_code or DriftCode("drift-code", DriftCodeArgs(**vars(code_args)), providers)
            monitors[name] = DriftMonitor(
                f"drift-{name}",
                DriftMonitorArgs(
                    model=models[name],
                    config=model_cfg.drift,
                    endpoint_name=endpoint_name(cfg.name_prefix, stack, name),
                    code=drift_code,
                    topic_arn=platform.topic.topic_arn,
                    log_group_prefix=platform.args.log_group_prefix,
                    processing_image=images[name].platform or images[name].training,
                    code_package_uri=code.s3_uri,
                    subnet_ids=net.subnet_ids,
                    security_group_ids=net.security_group_ids,
                    tags=model_tags,
                    protect=cfg.protected,
                ),
                providers,
            )
        if name in endpoints and model_cfg.quality_monitored:
            drift_code = drift_code or DriftCode("drift-code", DriftCodeArgs(**vars(code_args)), providers)
            metric, threshold, direction = model_cfg.quality_standard
            quality[name] = QualityMonitor(
                f"quality-{name}",
                QualityMonitorArgs(
                    model=models[name],
                    config=model_cfg.quality,
                    task=model_cfg.task,
                    metric=metric,
                    threshold=threshold,
                    direction=direction,
                    endpoint_name=endpoint_name(cfg.name_prefix, stack, name),
                    code=drift_code,
                    topic_arn=platform.topic.topic_arn,
                    log_group_prefix=platform.args.log_group_prefix,
                    subnet_ids=net.subnet_ids,
                    security_group_ids=net.security_group_ids,
                    tags=model_tags,
                    protect=cfg.protected,
                ),
                providers,
            )
        t = model_cfg.training
        pipelines[name] = TrainingPipeline(
            f"pipeline-{name}",
            TrainingPipelineArgs(
                model=name,
                name_prefix=cfg.name_prefix,
                stack=stack,
                environment=cfg.environment.value,
                region=cfg.region,
                account_id=identity.account_id,
                partition=partition.partition,
                config=model_cfg.pipeline,
                training=JobResources(model_cfg.step_instance_types["train"], t.instance_count, t.volume_size_gb, t.max_runtime_seconds),
                contract_json=model_cfg.data_contract.model_dump_json(),
                data_bucket=platform.data_bucket,
                models_bucket=platform.models_bucket,
                capture_bucket_name=platform.capture_bucket.bucket_name,
                kms_key_arn=platform.kms_key_arn,
                topic_arn=platform.topic.topic_arn,
                role_arn=models[name].role_arn,
                model_package_group_name=models[name].model_package_group_name,
                code_uri=code.s3_uri,
                code_sha256=code.sha256,
                training_image=images[name].training,
                inference_image=images[name].inference,
                job_prefix=job_prefix(cfg.name_prefix, stack, name),
                endpoint_name=endpoint_name(cfg.name_prefix, stack, name),
                drift_alarm_name=drift_alarm_name(cfg.name_prefix, stack, name),
                quality_alarm_name=quality[name].quality_alarm_name if name in quality and model_cfg.quality.retrain_on_alarm else None,
                log_group_prefix=platform.args.log_group_prefix,
                hyperparameters=t.hyperparameters if model_cfg.builtin else Hyperparameters(),
                evaluation_args=tuple(model_cfg.evaluation_args()),
                metric_definitions=tuple(metric_definitions(model_cfg)),
                spot=t.spot,
                max_wait_seconds=t.max_wait_seconds,
                endpoint=model_cfg.serving if name in endpoints else None,
                capture_uri=endpoints[name].capture_uri if name in endpoints else None,
                subnet_ids=net.subnet_ids,
                security_group_ids=net.security_group_ids,
                permissions_boundary_arn=platform.boundary_arn,
                tags=model_tags,
                protect=cfg.protected,
                **pipeline_model_args(model_cfg, model_codes.get(name), images[name]),
            ),
            providers,
        )
    StackDashboard(
        "dashboard",
        resource_name(cfg.name_prefix, stack),
        cfg.region,
        [
            DashboardModel(
                model=name,
                endpoint_name=endpoint_name(cfg.name_prefix, stack, name) if name in endpoints else None,
                metric_namespace=m.args.metric_namespace,
                state_machine_arn=pipelines[name].state_machine_arn,
                quality=cfg.models[name].quality_standard[:2] if name in quality else None,
            )
            for name, m in models.items()
        ],
        providers,
    )
    deploy = None
    if cfg.deploy is not None:
        deploy = DeployIdentity(
            "deploy",
            DeployIdentityArgs(
                github_repository=cfg.deploy.github_repository,
                environment=cfg.deploy.environment_name or cfg.environment.value,
                name_prefix=cfg.name_prefix,
                stack=stack,
                region=cfg.region,
                account_id=identity.account_id,
                partition=partition.partition,
                oidc_provider_arn=cfg.deploy.oidc_provider_arn,
                key_arn=platform.kms_key_arn,
                boundary_arn=platform.boundary_arn,
                environment_kind=cfg.environment.value,
                models=tuple(cfg.models),
                passed_roles=passed_roles(cfg, stack, pipelines, monitors, quality),
                subnet_ids=net.subnet_ids,
                state_bucket=cfg.deploy.state_bucket,
                pulumi_project=pulumi.get_project(),
                tags=base_tags,
            ),
            providers,
        )
    return {
        "deploy_role_arn": deploy.role_arn if deploy is not None else None,
        "environment": pulumi.Output.from_input(cfg.environment.value),
        "region": pulumi.Output.from_input(cfg.region),
        "kms_key_arn": platform.kms_key_arn,
        "data_bucket_name": platform.data_bucket.bucket_name,
        "models_bucket_name": platform.models_bucket.bucket_name,
        "capture_bucket_name": platform.capture_bucket.bucket_name,
        "topic_arn": platform.topic.topic_arn,
        "code_package_uri": code.s3_uri,
        "network": (
            {"vpc_id": network.vpc_id, "subnet_ids": network.subnet_ids, "security_group_id": network.security_group_id,
             "flow_log_group_name": network.flow_log_group_name}
            if network is not None
            else None
        ),
        "code_sha256": pulumi.Output.from_input(code.sha256),
        "models": {
            name: {
                "role_arn": m.role_arn,
                "model_package_group_name": m.model_package_group_name,
                "training_image": images[name].training,
                "inference_image": images[name].inference,
                "endpoint_name": endpoints[name].endpoint_name if name in endpoints else None,
                "state_machine_arn": pipelines[name].state_machine_arn,
                "pipeline_alias_arn": pipelines[name].alias_arn,
                "drift_function_name": monitors[name].function_name if name in monitors else None,
                "quality_function_name": quality[name].function_name if name in quality else None,
            }
            for name, m in models.items()
        },
    }


def model_packages(cfg: StackConfig, platform_code: CodePackageArgs, providers: pulumi.ResourceOptions) -> dict[str, CodePackage]:
    """One content-hashed package per distinct model source (the built-in recipe's is the platform's ``code``), each
    with the wheels of its own requirements.txt: changing one model's code changes only its package and jobs."""
    by_source: dict[str, CodePackage] = {}
    out: dict[str, CodePackage] = {}
    for name, m in cfg.models.items():
        if m.builtin:
            continue
        path = m.source_dir.resolve()
        rel = path.relative_to(PROJECT_ROOT).as_posix() if path.is_relative_to(PROJECT_ROOT) else path.as_posix()
        if rel not in by_source:
            slug = "".join(c if c.isalnum() else "-" for c in rel).strip("-")
            by_source[rel] = CodePackage(
                f"code-{slug}",
                CodePackageArgs(**{**vars(platform_code), "source_dir": m.source_dir, "model_code": True,
                                   "image_packages": tuple(m.image_packages)}),
                providers,
            )
        out[name] = by_source[rel]
    return out


def metric_definitions(m) -> list[dict[str, str]]:
    """The training job's MetricDefinitions: the built-in recipe's, or ``<split>:<gate metric>=<value>`` lines."""
    if m.builtin and m.task == "binary":
        return list(METRIC_DEFINITIONS)
    names = m.reported_metrics
    number = METRIC_DEFINITIONS[0]["Regex"].split("=", 1)[1]
    return [{"Name": f"{split}:{n}", "Regex": f"{split}:{n}={number}"} for split in ("train", "validation") for n in names]


def pipeline_model_args(m, package: CodePackage | None, images) -> dict:
    """The per-model values of the CT flow beyond the built-in recipe's: the model's code, images, steps and gate."""
    metric, direction, threshold, _ = m.gate_rule
    types = m.step_instance_types
    args: dict = {
        "platform_image": images.platform,
        "step_instance_types": {"validate": types["validate"], "preprocess": types["preprocess"], "evaluate": types["evaluate"],
                                "baseline": types["validate"]},
        "metrics": tuple(m.reported_metrics),
        # GateVerdict checks the threshold itself with a gate, and always for a model's own code (whose evaluate
        # may write the verdict): the deprecated evaluation of the built-in recipe keeps its flow as it was.
        "gate": Gate(metric, direction, threshold) if m.gate is not None or not m.builtin else None,
    }
    if package is not None:
        e = m.entry
        args["model_code"] = ModelCode(code_uri="", code_sha256=package.sha256, train=e.train, hyperparameters=m.hyperparameter_map,
                                       preprocess=e.preprocess, evaluate=e.evaluate, inference=e.inference, own_image=images.own)
        args["model_code_uri"] = package.s3_uri
    return args


def create_network(cfg: StackConfig, stack: str, created, identity, partition, platform: Platform, tags: dict[str, str],
                   providers: pulumi.ResourceOptions) -> PrivateNetwork:
    """The private VPC of ``mlops:vpc.create``: flow logs under the stack's log-group prefix with the stack key,
    the S3 gateway endpoint limited to the stack's buckets."""
    return PrivateNetwork(
        "network",
        PrivateNetworkArgs(
            name_prefix=cfg.name_prefix,
            stack=stack,
            region=cfg.region,
            account_id=identity.account_id,
            partition=partition.partition,
            cidr=created.cidr,
            subnet_cidrs=tuple(created.subnet_cidrs()),
            zones=None if isinstance(created.azs, int) else tuple(created.azs),
            bucket_arns=[platform.data_bucket.bucket_arn, platform.models_bucket.bucket_arn, platform.capture_bucket.bucket_arn],
            kms_key_arn=platform.kms_key_arn,
            log_group_name=f"{platform.args.log_group_prefix}vpc-flow-logs",
            flow_log_days=created.flow_log_days,
            permissions_boundary_arn=platform.boundary_arn,
            tags=tags,
            protect=cfg.protected,
        ),
        providers,
    )


def _raise(error: Exception):
    raise error


@dataclass(frozen=True)
class StackNetwork:
    """What every VPC consumer takes: existing subnets as strings, or a created network's Outputs (empty: no VPC)."""

    subnet_ids: pulumi.Input[Sequence[str]] = ()
    security_group_ids: pulumi.Input[Sequence[str]] = ()

    @classmethod
    def existing(cls, cfg: StackConfig) -> "StackNetwork":
        if cfg.vpc is None or cfg.vpc.create is not None:
            return cls()
        return cls(tuple(cfg.vpc.subnet_ids or ()), tuple(cfg.vpc.security_group_ids or ()))


def passed_roles(cfg: StackConfig, stack: str, pipelines: dict, monitors: dict, quality: dict) -> tuple[tuple[str, str], ...]:
    """(service, role name) of every role the stack hands to a service: the deploy role may pass each only to its own."""
    p = cfg.name_prefix
    out = []
    for name, m in cfg.models.items():
        out += [("sagemaker.amazonaws.com", model_role_name(p, stack, name)),
                ("states.amazonaws.com", resource_name(p, stack, name, "states", limit=64))]
        t = m.pipeline.triggers
        quality_rule = name in quality and m.quality.retrain_on_alarm
        if t.on_new_data or t.on_drift or quality_rule or pipelines[name].deploy_alias_arn is not None:
            out.append(("events.amazonaws.com", resource_name(p, stack, name, "events-start", limit=64)))
        if t.schedule is not None:
            out.append(("scheduler.amazonaws.com", resource_name(p, stack, name, "scheduler-start", limit=64)))
        if name in monitors:
            out += [("lambda.amazonaws.com", resource_name(p, stack, name, "drift", limit=64)),
                    ("scheduler.amazonaws.com", resource_name(p, stack, name, "drift-schedule", limit=64))]
        if name in quality:
            out += [("lambda.amazonaws.com", resource_name(p, stack, name, "quality", limit=64)),
                    ("scheduler.amazonaws.com", resource_name(p, stack, name, "quality-schedule", limit=64))]
    return tuple(out)


def sagemaker_log_groups(cfg: StackConfig, stack: str) -> tuple[str, ...]:
    """The SageMaker log groups this stack creates before SageMaker does: its endpoints', and (when the stack owns
    them) the account's training and processing job groups."""
    groups = [f"/aws/sagemaker/Endpoints/{endpoint_name(cfg.name_prefix, stack, n)}" for n, m in cfg.models.items() if m.endpoint.enabled]
    if cfg.storage.sagemaker_job_log_groups:
        groups += ["/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"]
    return tuple(groups)


def refuse_overlapping_scopes(cfg: StackConfig, stack: str, stacks_dir=STACKS_DIR) -> None:
    """IAM and resource policies scope by ``<prefix>-<stack>-*``: a stack whose stem prefixes another's
    (``prod`` and ``prod-eu``) would reach the other's resources. Refused, naming both stack files."""
    import yaml

    if not (stacks_dir / f"Pulumi.{stack}.yaml").exists():
        return  # a stack file from elsewhere (tests, another project): its siblings are not this project's
    stems = {stack: stem(cfg.name_prefix, stack)}
    for path in sorted(stacks_dir.glob("Pulumi.*.yaml")):
        other = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        if other == stack:
            continue
        try:
            keys = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        except (OSError, yaml.YAMLError):
            continue  # that stack's own synth reports its file
        stems[other] = stem(str(keys.get("mlops:name_prefix", "mlops")), other)
    clashes = [(a, b) for a, b in overlapping_stems(stems) if stack in (a, b)]
    if clashes:
        a, b = clashes[0]
        raise ConfigError(
            str(stacks_dir / f"Pulumi.{stack}.yaml"),
            [f"stack {a!r} (names {stems[a]}-*) prefixes stack {b!r} ({stems[b]}-*): their IAM scopes would overlap; "
             "rename one stack or give it another mlops:name_prefix"],
        )


def main() -> None:
    try:
        cfg = config_from_pulumi()
        outputs = build(cfg)
    except ConfigError as e:
        # RunError ends the program with the message alone: a config error is the user's, not a crash.
        raise pulumi.RunError(str(e)) from None
    for key, value in outputs.items():
        pulumi.export(key, value)
