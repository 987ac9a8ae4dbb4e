"""Compose the stack from its typed config. Called by ``infra/__main__.py`` under the real or the mock engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_aws as aws

from components.code.package import CodePackage, CodePackageArgs
from components.code.paths import package_source, work_dir
from components.context import StackContext
from components.delivery.identity import DeployIdentity, DeployIdentityArgs
from components.model.hosted import HostedModel, HostedModelArgs, ModelImages, QualityStandard
from components.monitoring.dashboard import DashboardModel, StackDashboard
from components.monitoring.drift import DriftCode, DriftCodeArgs, monitored
from components.naming import dashboard_name, deploy_role_name, overlapping_stems, stem, vpc_flow_log_group_name
from components.pipeline.spec import Gate, ModelCode
from components.network.vpc import PrivateNetwork, PrivateNetworkArgs
from components.pipeline.spec import JobResources
from components.platform.platform import Platform, PlatformArgs
from components.storage.bucket import ObjectLock
from infra import images as image_registry
from infra.config import STACKS_DIR, ConfigError, ModelConfig, StackConfig, base_dir, config_from_pulumi, pinned_package_problems
from training.contract import METRIC_DEFINITIONS, Hyperparameters

TRAINING_SOURCE = package_source("training")  # the installed package, read only
BUILD_DIR = work_dir() / "build"  # .mlops/build in the working directory
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


def stack_context(cfg: StackConfig, stack: str, identity, partition) -> StackContext:
    """The stack context of a stack file: prefix, stack, environment, region, account, partition, tags, protect."""
    return StackContext(
        prefix=cfg.name_prefix, stack=stack, environment=cfg.environment.value, region=cfg.region,
        account_id=identity.account_id, partition=partition.partition, tags=dict(cfg.tags), protect=cfg.protected,
    )


def platform_args(cfg: StackConfig, ctx: StackContext, subnet_ids) -> PlatformArgs:
    s, k = cfg.storage, cfg.keys
    return PlatformArgs(
        context=ctx,
        existing_key_arn=k.key_arn,
        key_deletion_window_days=k.deletion_window_days,
        noncurrent_version_days=s.noncurrent_version_days,
        abort_incomplete_upload_days=s.abort_incomplete_upload_days,
        model_object_lock=ObjectLock(**s.model_object_lock.model_dump()) if s.model_object_lock else None,
        access_logs=s.access_logs,
        access_log_days=s.access_log_days,
        force_destroy=s.force_destroy,
        emails=list(cfg.notifications.emails),
        break_glass_arn=k.break_glass_principal_arn,
        capture_expiration_days=s.capture_expiration_days,
        code_writers=(deploy_role_name(ctx.prefix, ctx.stack),) if cfg.deploy is not None else (),
        models=tuple(cfg.models),
        subnet_ids=subnet_ids,
        endpoint_log_groups=tuple(n for n, m in cfg.models.items() if m.endpoint.enabled),
        sagemaker_job_log_groups=s.sagemaker_job_log_groups,
        sagemaker_log_days=s.sagemaker_log_days,
    )


def hosted_model_args(name: str, m: ModelConfig, ctx: StackContext, platform: Platform, code: CodePackage, images,
                      monitor_code: DriftCode | None, net: "StackNetwork", package: CodePackage | None = None) -> HostedModelArgs:
    """A model of the stack file as the library's per-model component takes it."""
    t = m.training
    quality = None
    if m.quality_monitored:
        metric, threshold, direction = m.quality_standard
        quality = QualityStandard(m.quality, m.task, metric, threshold, direction)
    return HostedModelArgs(
        context=ctx,
        platform=platform.ref,
        code=code,
        images=ModelImages(images.training, images.inference, images.platform, images.platform_inference),
        contract_json=m.data_contract.model_dump_json(),
        source_dir=TRAINING_SOURCE,
        build_dir=BUILD_DIR,
        description=m.description,
        training=JobResources(m.step_instance_types["train"], t.instance_count, t.volume_size_gb, t.max_runtime_seconds),
        hyperparameters=t.hyperparameters if m.builtin else Hyperparameters(),
        evaluation_args=tuple(m.evaluation_args()),
        metric_definitions=tuple(metric_definitions(m)),
        spot=t.spot,
        max_wait_seconds=t.max_wait_seconds,
        pipeline=m.pipeline,
        endpoint=m.serving,
        drift=m.drift,
        quality=quality,
        monitor_code=monitor_code,
        subnet_ids=net.subnet_ids,
        security_group_ids=net.security_group_ids,
        tags=m.tags,
        **pipeline_model_args(m, package, images),
    )


def build(cfg: StackConfig) -> dict[str, pulumi.Output]:
    """Register every resource of the stack and return its outputs: provider, platform, code package, one
    HostedModel per model, dashboard, deploy identity."""
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
    ctx = stack_context(cfg, stack, identity, partition)

    # A created network needs the platform's key and buckets, and the platform's boundary names the network's
    # subnets: the boundary takes them through a deferred Output, resolved right after the network exists.
    created = cfg.vpc.create if cfg.vpc is not None else None
    boundary_subnets, resolve_boundary_subnets = pulumi.deferred_output() if created else (None, None)
    net = StackNetwork.existing(cfg)
    platform = Platform("platform", platform_args(cfg, ctx, boundary_subnets if created else net.subnet_ids), providers)
    network = None
    if created is not None:
        try:
            network = create_network(ctx, created, platform, providers)
        except Exception as e:
            # The boundary waits on the subnets: fail it too, rather than leave the program waiting or write it without them.
            resolve_boundary_subnets(pulumi.Output.from_input(None).apply(lambda _, err=e: _raise(err)))
            raise
        resolve_boundary_subnets(network.subnet_ids)
        net = StackNetwork(network.subnet_ids, network.security_group_id.apply(lambda g: [g]))
    code_args = CodePackageArgs(
        source_dir=TRAINING_SOURCE, bucket_name=platform.models_bucket.bucket_name, kms_key_arn=platform.kms_key_arn,
        build_dir=BUILD_DIR, prefix=CODE_PREFIX, tags=ctx.stack_tags,
    )
    code = CodePackage("code", code_args, providers)
    # One Lambda package for every model's monitors, made when a model first needs it.
    monitor_code = (
        DriftCode("drift-code", DriftCodeArgs(**vars(code_args)), providers)
        if any(monitored(m.endpoint, m.drift) or m.quality_monitored for m in cfg.models.values())
        else None
    )
    model_codes = model_packages(cfg, code_args, providers)
    models = {
        name: HostedModel(name, hosted_model_args(name, m, ctx, platform, code, images[name], monitor_code, net, model_codes.get(name)),
                          providers)
        for name, m in cfg.models.items()
    }
    StackDashboard(
        "dashboard",
        dashboard_name(ctx.prefix, stack),
        cfg.region,
        [
            DashboardModel(
                model=name,
                endpoint_name=hm.names.endpoint if hm.endpoint is not None else None,
                metric_namespace=hm.names.metric_namespace,
                state_machine_arn=hm.state_machine_arn,
                quality=cfg.models[name].quality_standard[:2] if hm.quality is not None else None,
            )
            for name, hm in models.items()
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
                context=ctx,
                oidc_provider_arn=cfg.deploy.oidc_provider_arn,
                key_arn=platform.kms_key_arn,
                boundary_arn=platform.boundary_arn,
                models=tuple(cfg.models),
                passed_roles=tuple(r for hm in models.values() for r in hm.passed_roles()),
                subnet_ids=net.subnet_ids,
                state_bucket=cfg.deploy.state_bucket,
                pulumi_project=pulumi.get_project(),
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
                "role_arn": hm.role_arn,
                "model_package_group_name": hm.model_package_group_name,
                "training_image": images[name].training,
                "inference_image": images[name].inference,
                "endpoint_name": hm.endpoint_name,
                "state_machine_arn": hm.state_machine_arn,
                "pipeline_alias_arn": hm.pipeline_alias_arn,
                "drift_function_name": hm.drift_function_name,
                "quality_function_name": hm.quality_function_name,
            }
            for name, hm in models.items()
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
        path, root = m.source_dir.resolve(), base_dir()
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()
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
    """The per-model values beyond the built-in recipe's (HostedModelArgs fields): the model's code, steps and gate."""
    metric, direction, threshold, _ = m.gate_rule
    types = m.step_instance_types
    args: dict = {
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
        args["model_code_package"] = package
    return args


def create_network(ctx: StackContext, created, platform: Platform, providers: pulumi.ResourceOptions) -> PrivateNetwork:
    """The private VPC of ``mlops:vpc.create``: flow logs under the stack's log-group prefix with the stack key,
    the S3 gateway endpoint limited to the stack's buckets."""
    return PrivateNetwork(
        "network",
        PrivateNetworkArgs(
            context=ctx,
            cidr=created.cidr,
            subnet_cidrs=tuple(created.subnet_cidrs()),
            zones=None if isinstance(created.azs, int) else tuple(created.azs),
            bucket_arns=[platform.data_bucket.bucket_arn, platform.models_bucket.bucket_arn, platform.capture_bucket.bucket_arn],
            kms_key_arn=platform.kms_key_arn,
            log_group_name=vpc_flow_log_group_name(ctx.prefix, ctx.stack),
            flow_log_days=created.flow_log_days,
            permissions_boundary_arn=platform.boundary_arn,
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


def refuse_overlapping_scopes(cfg: StackConfig, stack: str, stacks_dir=STACKS_DIR) -> None:
    """IAM and resource policies scope by ``<prefix>-<stack>-*``: a stack whose stem prefixes another's
    (``prod`` and ``prod-eu``) would reach the other's resources. Refused, naming both stack files."""
    import yaml

    from infra.config import load_yaml

    if not (stacks_dir / f"Pulumi.{stack}.yaml").exists():
        return  # a stack file from elsewhere (tests, another project): its siblings are not this project's
    stems = {stack: stem(cfg.name_prefix, stack)}
    for path in sorted(stacks_dir.glob("Pulumi.*.yaml")):
        other = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        if other == stack:
            continue
        try:
            keys = (load_yaml(path.read_text()) or {}).get("config") or {}
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
