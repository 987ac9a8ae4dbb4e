"""The typed configuration of one stack, read from the ``mlops`` namespace of ``stacks/Pulumi.<stack>.yaml``.

Every top-level field of :class:`StackConfig` is one structured config key (``mlops:storage``,
``mlops:models``, ...). The same loader serves ``pulumi up`` (values come from the Pulumi engine),
``mlops synth`` and ``mlops validate`` (values come from the YAML file), so a bad key is refused the
same way everywhere: before any resource is registered, with the YAML path, the value and what is
accepted.
"""

from __future__ import annotations

import difflib
import json
import typing
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, field_validator, model_validator,
)

from components.serving.config import EndpointConfig
from components.validation import StrictModel
from components.monitoring.drift_config import DriftConfig, LogRetentionDays
from components.monitoring.quality_config import QualityConfig
from training import metric_names
from components.pipeline.config import PipelineConfig, VpcConfig
from infra import frameworks
from training.contract import DataContract, EvaluationRule, Hyperparameters
from infra.errors import UserError

NAMESPACE = "mlops"
SCHEMA_FILE = "mlops-stack.schema.json"
PROJECT_FILE = "Pulumi.yaml"


class ProjectNotFound(UserError):
    """No Pulumi project (a ``Pulumi.yaml``) in the working directory or any directory above it."""


def project_root(start: Path | None = None) -> Path:
    """The Pulumi project the command runs in: the nearest directory holding ``Pulumi.yaml``, from ``start`` (default:
    the working directory) upwards. The CLI finds the project from where it runs, never from where it is installed."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    raise ProjectNotFound(
        f"no {PROJECT_FILE} in {here} or any directory above it; run mlops inside a Pulumi project "
        f"(the directory holding {PROJECT_FILE} and its stack files), or give the stack file with --file PATH"
    )


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's C parser when PyYAML has it (the same documents and errors, ~8x faster
    than the pure-Python one: a cold command reads every stack file of the project)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def stacks_dir(root: Path | None = None) -> Path:
    """Where the project keeps ``Pulumi.<stack>.yaml``: its ``stackConfigDir`` (Pulumi's default: the project itself)."""
    root = root or project_root()
    try:
        project = load_yaml((root / PROJECT_FILE).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ProjectNotFound(f"{root / PROJECT_FILE} is not readable YAML: {e}") from None
    configured = project.get("stackConfigDir") if isinstance(project, dict) else None
    return root / configured if isinstance(configured, str) and configured else root


def base_dir() -> Path:
    """What relative paths (a stack file's data contract, a manifest's asset paths) are relative to: the project, else
    the working directory."""
    try:
        return project_root()
    except ProjectNotFound:
        return Path.cwd()


def __getattr__(name: str) -> Path:
    # PROJECT_ROOT / STACKS_DIR: resolved from the working directory when read (not from this file's location).
    if name == "PROJECT_ROOT":
        return project_root()
    if name == "STACKS_DIR":
        return stacks_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Lowercase DNS-style label: bucket names, SageMaker names and IAM names all accept it.
_LABEL = r"^[a-z][a-z0-9-]*[a-z0-9]$"
ModelName = Annotated[str, Field(pattern=_LABEL, min_length=2, max_length=24)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


MIN_PROD_LOG_RETENTION_DAYS = 365


Strict = StrictModel  # the one strict base of every config model (components.validation)


class Environment(str, Enum):
    dev = "dev"
    staging = "staging"
    prod = "prod"


class ObjectLockConfig(Strict):
    mode: Literal["GOVERNANCE", "COMPLIANCE"] = Field(
        "GOVERNANCE", description="Retention mode; GOVERNANCE lets privileged users lift it, COMPLIANCE does not."
    )
    days: int = Field(30, ge=1, le=36500, description="Default retention of each model artifact version, in days.")


class StorageConfig(Strict):
    noncurrent_version_days: int = Field(
        90, ge=1, le=3650, description="Days a noncurrent object version is kept for rollback before it expires."
    )
    abort_incomplete_upload_days: int = Field(
        7, ge=1, le=365, description="Days after which incomplete multipart uploads are aborted."
    )
    model_object_lock: ObjectLockConfig | None = Field(
        None, description="Object lock on the model-artifact bucket (only settable when the bucket is created)."
    )
    access_logs: bool = Field(True, description="Server access logs of every bucket to the stack's logs bucket.")
    access_log_days: int = Field(365, ge=1, le=3650, description="Days access-log objects are kept.")
    force_destroy: bool = Field(
        False, description="Let `pulumi destroy` empty and delete buckets. Refused outside dev."
    )
    capture_expiration_days: int = Field(
        30, ge=8, le=3650,
        description="Days captured request/response payloads are kept (over the longest drift window, 7 days).",
    )
    sagemaker_log_days: LogRetentionDays = Field(
        365, description="Retention of the SageMaker log groups the stack creates (its endpoints', and the job groups with sagemaker_job_log_groups)."
    )
    sagemaker_job_log_groups: bool = Field(
        False,
        description=(
            "Create SageMaker's account-wide /aws/sagemaker/TrainingJobs and ProcessingJobs log groups with the stack "
            "key and retention (one stack per account may own them)."
        ),
    )


class KeysConfig(Strict):
    key_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[0-9a-fA-F-]{36}$",
        description="Use this existing KMS key instead of creating one (its policy must allow the stack's services).",
    )
    deletion_window_days: int = Field(30, ge=7, le=30, description="Waiting period before a created key is deleted.")
    break_glass_principal_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[A-Za-z0-9+=,.@_/-]+$",
        description=(
            "The only principal the key policy lets schedule deletion, disable or replace the policy of the key "
            "(the administrator who runs the first `pulumi up`). Default: role <name_prefix>-break-glass."
        ),
    )


class NotificationsConfig(Strict):
    emails: list[Email] = Field(
        default_factory=list, description="Addresses subscribed to the stack topic (each must confirm once)."
    )

    @field_validator("emails")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        dupes = sorted({e for e in v if v.count(e) > 1})
        if dupes:
            raise ValueError(f"duplicate addresses {dupes}; list each address once")
        return v


class LocalStackConfig(Strict):
    endpoint: str = Field(
        "http://127.0.0.1:4566", pattern=r"^https?://", description="LocalStack gateway URL used for every service."
    )


class TrainingConfig(Strict):
    instance_type: str = Field("ml.m5.large", pattern=r"^ml\.", description="Training instance type.")
    instance_count: int = Field(1, ge=1, le=20, description="Training instances.")
    volume_size_gb: int = Field(30, ge=1, le=16384, description="EBS volume attached to each training instance.")
    max_runtime_seconds: int = Field(3600, ge=60, le=2419200, description="Stop the training job after this long.")
    spot: bool = Field(False, description="Use managed spot training (with checkpoints and max_wait_seconds).")
    max_wait_seconds: int = Field(
        7200, ge=60, le=2419200, description="With spot: total time to wait for capacity and training."
    )
    framework_version: str | None = Field(
        None,
        description="Deprecated: use the model's framework: {name: sklearn, version: ...}. SageMaker scikit-learn "
        "container version of the built-in recipe (default 1.9-0).",
    )
    hyperparameters: Hyperparameters | dict[str, HyperparameterValue] = Field(
        default_factory=Hyperparameters,
        union_mode="left_to_right",
        description="The built-in recipe's typed hyperparameters (training.contract.Hyperparameters); for a model's own "
        "code (source), a free-form map of strings, numbers and bools passed to its train entry point.",
    )

    @model_validator(mode="after")
    def _spot_wait(self) -> "TrainingConfig":
        if self.spot and self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError(
                f"max_wait_seconds ({self.max_wait_seconds}) must be >= max_runtime_seconds "
                f"({self.max_runtime_seconds}) when spot is on"
            )
        return self


HyperparameterValue = StrictBool | StrictInt | StrictFloat | Annotated[StrictStr, Field(max_length=2500)]
"""A free-form hyperparameter (SageMaker takes string values of at most 2,500 characters: numbers and bools are
sent in their JSON spelling)."""

BUILTIN_SOURCE = "training"
"""The built-in recipe's directory (the platform's own code)."""
BUILTIN_ENTRY_POINTS = {"train": "training/train.py", "inference": "training/inference.py", "evaluate": "training/evaluate.py"}

# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>(:<tag>|@sha256:<digest>), as ECR names them.
ECR_IMAGE = (
    r"^\d{12}\.dkr\.ecr\.[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d\.amazonaws\.com(\.cn)?/"
    r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})$"
)
EcrImage = Annotated[str, Field(pattern=ECR_IMAGE)]


class FrameworkConfig(Strict):
    """A SageMaker framework container, resolved through the SDK's image registry (``sagemaker.core.image_uris``)."""

    name: frameworks.FrameworkName = Field(..., description="sklearn, xgboost, pytorch, tensorflow or huggingface.")
    version: str = Field(..., min_length=1, description="The framework version as the SDK's registry names it (e.g. xgboost 3.2-0).")
    py_version: str | None = Field(None, pattern=r"^py\d+$", description="Python of the image (e.g. py312) when a version has several.")
    base_framework_version: str | None = Field(
        None, description="huggingface only: the base framework of the image (e.g. pytorch2.8.0) when a version has several."
    )


class ImagesConfig(Strict):
    """Bring your own container: images in ECR (the model's role may pull only these repositories)."""

    training: EcrImage = Field(..., description="Image of the training job (and of the model's own preprocess and evaluate steps).")
    inference: EcrImage | None = Field(None, description="Image of the endpoint; required when the model is served.")


class InstanceTypesConfig(Strict):
    """Instance type of each step; each defaults to the older per-part key."""

    validate_: str | None = Field(
        None, alias="validate", pattern=r"^ml\.", description="Contract validation. Default: pipeline.processing_instance_type."
    )
    preprocess: str | None = Field(None, pattern=r"^ml\.", description="The preprocess step. Default: pipeline.processing_instance_type.")
    train: str | None = Field(None, pattern=r"^ml\.", description="The training job. Default: training.instance_type.")
    evaluate: str | None = Field(None, pattern=r"^ml\.", description="The evaluation job. Default: pipeline.processing_instance_type.")
    inference: str | None = Field(None, pattern=r"^ml\.", description="The endpoint. Default: endpoint.instance_type.")


class EntryPointsConfig(Strict):
    """Files of the model's source directory the platform runs (paths relative to it)."""

    train: str = Field(..., min_length=1, description="The training job's script (SageMaker script mode's entry point).")
    inference: str | None = Field(None, description="The serving script (the endpoint's SAGEMAKER_PROGRAM); required when served.")
    preprocess: str | None = Field(
        None, description="Transformations between validation and training: writes the train and validation channels."
    )
    evaluate: str | None = Field(None, description="Writes evaluation.json (training/README.md); default: the platform's evaluate.")


class GateConfig(Strict):
    """The quality gate: a metric the model's evaluation reports, its direction, a threshold, the allowed regression."""

    metric: str = Field(..., pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$", description="A key of evaluation.json's metrics.")
    direction: Literal["higher", "lower"] | None = Field(
        None, description="Which values are better. Default: the platform's own for the metrics it knows; required for others."
    )
    threshold: float = Field(..., description="Level the metric must reach: at least this (higher) or at most this (lower).")
    max_regression: float = Field(0.0, ge=0.0, description="How much worse than the production model the metric may be.")

    def resolved_direction(self) -> str | None:
        if self.direction is not None:
            return self.direction
        known = metric_names.HIGHER_IS_BETTER.get(self.metric)
        return None if known is None else ("higher" if known else "lower")


class ModelConfig(Strict):
    description: str = Field("", max_length=256, description="What the model predicts, for people.")
    source: str | None = Field(
        None,
        description="Directory of the model's own code, relative to the project root (packaged with the wheels of its "
        "requirements.txt). Default: the built-in recipe in training/.",
    )
    entry_points: EntryPointsConfig | None = Field(
        None, description="The model's train/inference/preprocess/evaluate files in source; required with source."
    )
    framework: FrameworkConfig | None = Field(
        None, description="The model's SageMaker framework images. Default: sklearn 1.9-0 (training.framework_version)."
    )
    images: ImagesConfig | None = Field(None, description="Explicit ECR images instead of a framework (bring your own container).")
    image_packages: list[str] = Field(
        default_factory=list,
        description="Distributions of source's requirements.txt the model's image already has: not vendored into its "
        "package (e.g. xgboost, numpy, pandas in SageMaker's XGBoost image).",
    )
    instance_types: InstanceTypesConfig = Field(default_factory=InstanceTypesConfig, description="Instance type of each step.")
    gate: GateConfig | None = Field(
        None, description="The quality gate a new model must pass to be registered (replaces evaluation)."
    )
    data_contract: DataContract | str = Field(
        ...,
        description="The model's data contract, inline or as a path (relative to the project root) to a JSON/YAML file.",
    )
    training: TrainingConfig = Field(default_factory=TrainingConfig, description="How the model is trained.")
    evaluation: EvaluationRule = Field(
        default_factory=EvaluationRule,
        description="Deprecated: use gate. The built-in recipe's rule (primary_metric, minimum, max_regression).",
    )
    endpoint: EndpointConfig = Field(default_factory=EndpointConfig, description="How the model is served.")
    drift: DriftConfig = Field(default_factory=DriftConfig, description="Drift monitoring of the endpoint's captured requests.")
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="Live model quality: captured predictions joined with ground-truth labels."
    )
    pipeline: PipelineConfig = Field(
        default_factory=PipelineConfig, description="The continuous-training flow: processing jobs, approval, triggers, logs."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Extra tags on this model's resources.")

    @model_validator(mode="after")
    def _drift_needs_capture(self) -> "ModelConfig":
        if "enabled" in self.drift.model_fields_set and self.drift.enabled and not (self.endpoint.enabled and self.endpoint.capture.enabled):
            raise ValueError(
                "drift.enabled: true needs endpoint.enabled and endpoint.capture.enabled (drift scores captured requests); "
                "turn capture on or set drift.enabled: false"
            )
        return self

    @model_validator(mode="after")
    def _quality_standard(self) -> "ModelConfig":
        if not self.quality.enabled:
            return self
        if not (self.endpoint.enabled and self.endpoint.capture.enabled):
            raise ValueError(
                "quality.enabled: true needs endpoint.enabled and endpoint.capture.enabled (the job joins captured predictions "
                "with labels); turn capture on or set quality.enabled: false"
            )
        task_metrics = metric_names.TASK_METRICS[self.task]
        metric = self.quality.metric or self.gate_rule[0]
        if metric not in task_metrics and self.quality.metric is None and self.builtin and self.gate is not None:
            return self  # the gate's metric is refused for the built-in recipe with its own key (model_problems)
        if metric not in task_metrics:
            raise ValueError(f"quality.metric {metric!r} is not a {self.task} metric; accepted: {', '.join(task_metrics)}")
        metric, threshold, direction = self.quality_standard
        gate_metric, _, gate_threshold, _ = self.gate_rule
        if self.quality.threshold is None and (metric != gate_metric or (direction == "higher" and threshold <= 0)):
            raise ValueError(
                f"quality.threshold is needed: the production standard for {metric} defaults to the gate's threshold only for "
                f"the gate's metric, and a threshold of {gate_threshold:g} would never alarm; set quality.threshold "
                f"(e.g. 0.7) or the gate's threshold"
            )
        return self

    @property
    def builtin(self) -> bool:
        """Whether the model runs the built-in recipe (training/) rather than its own code."""
        return self.source is None or Path(self.source).as_posix().strip("/") == BUILTIN_SOURCE

    @property
    def source_dir(self) -> Path:
        """The directory packaged as the model's code."""
        from components.code.paths import package_source

        return package_source(BUILTIN_SOURCE) if self.builtin else base_dir() / str(self.source)

    @property
    def entry(self) -> EntryPointsConfig:
        """The model's entry points: its own, or the built-in recipe's."""
        if self.builtin or self.entry_points is None:
            return EntryPointsConfig(**BUILTIN_ENTRY_POINTS)
        return self.entry_points

    @property
    def runtime(self) -> FrameworkConfig | ImagesConfig:
        """The model's images: explicit ECR images, a framework, or the built-in recipe's sklearn."""
        if self.images is not None:
            return self.images
        if self.framework is not None:
            return self.framework
        return FrameworkConfig(name="sklearn", version=self.training.framework_version or frameworks.PLATFORM_FRAMEWORK[1])

    @property
    def step_instance_types(self) -> dict[str, str]:
        """Instance type of each step (validate, preprocess, train, evaluate, inference)."""
        i, processing = self.instance_types, self.pipeline.processing_instance_type
        return {
            "validate": i.validate_ or processing,
            "preprocess": i.preprocess or processing,
            "train": i.train or self.training.instance_type,
            "evaluate": i.evaluate or processing,
            "inference": i.inference or (self.endpoint.realtime.instance_type if self.endpoint.realtime else "ml.m5.large"),
        }

    @property
    def serving(self) -> EndpointConfig:
        """The endpoint config with ``instance_types.inference`` applied to its real-time variant."""
        wanted = self.instance_types.inference
        if wanted is None or self.endpoint.serverless is not None:
            return self.endpoint
        from components.serving.config import RealtimeConfig

        realtime = (self.endpoint.realtime or RealtimeConfig()).model_copy(update={"instance_type": wanted})
        return self.endpoint.model_copy(update={"realtime": realtime})

    @property
    def gate_rule(self) -> tuple[str, str, float, float]:
        """(metric, direction, threshold, max_regression) of the quality gate: ``gate``, else the older ``evaluation``."""
        if self.gate is not None:
            return self.gate.metric, self.gate.resolved_direction() or "higher", self.gate.threshold, self.gate.max_regression
        e = self.evaluation
        return e.primary_metric, "higher" if e.higher_is_better else "lower", e.minimum, e.max_regression

    def evaluation_args(self) -> list[str]:
        """The gate as arguments of an evaluate entry point (training.evaluate's EvaluationRule options)."""
        if self.gate is None:
            return self.evaluation.to_cli_args()
        metric, direction, threshold, max_regression = self.gate_rule
        if self.builtin:
            rule = {"primary_metric": metric, "minimum": threshold, "max_regression": max_regression}
            if "direction" in EvaluationRule.model_fields and self.gate.direction is not None:
                rule["direction"] = direction
            return EvaluationRule.model_validate(rule).to_cli_args()
        return ["--primary_metric", metric, "--direction", direction, "--minimum", repr(float(threshold)),
                "--max_regression", repr(float(max_regression))]

    @property
    def reported_metrics(self) -> tuple[str, ...]:
        """Metrics every evaluation.json of the model must report (recorded in the registered version's lineage)."""
        if self.builtin:
            per_task = getattr(metric_names, "EVALUATION_METRICS", metric_names.TASK_METRICS)
            names = tuple(per_task[self.task])
            return names if self.gate_rule[0] in names else (*names, self.gate_rule[0])
        return (self.gate_rule[0],)

    @property
    def hyperparameter_map(self) -> dict[str, str]:
        """The training job's HyperParameters (string values, as SageMaker takes them)."""
        hp = self.training.hyperparameters
        if isinstance(hp, Hyperparameters):
            if self.builtin:
                return hp.to_hyperparameters()
            hp = {k: getattr(hp, k) for k in hp.model_fields_set}
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in hp.items()}

    @property
    def task(self) -> str:
        """The model's task, from its data contract (binary, multiclass, regression)."""
        return str(getattr(self.data_contract, "task", "binary"))

    @property
    def quality_monitored(self) -> bool:
        return self.quality.enabled and self.endpoint.enabled and self.endpoint.capture.enabled

    @property
    def quality_standard(self) -> tuple[str, float, str]:
        metric, _, threshold, _ = self.gate_rule
        return self.quality.standard(metric, threshold)

    @field_validator("data_contract", mode="after")
    @classmethod
    def _load_contract(cls, v: DataContract | str) -> DataContract:
        if isinstance(v, DataContract):
            return v
        path = Path(v) if Path(v).is_absolute() else base_dir() / v
        try:
            raw = _json_or_yaml(path.read_text())
        except OSError as e:
            raise ValueError(f"cannot read contract file {v!r} ({e.strerror}); give a path relative to the project root") from None
        except yaml.YAMLError as e:
            raise ValueError(f"contract file {v!r} is not valid JSON/YAML: {e}") from None
        try:
            return DataContract.model_validate(raw)
        except ValidationError as e:
            raise ValueError(f"contract file {v!r} is invalid:\n" + _indent(format_errors(e, DataContract))) from None


class DeployConfig(Strict):
    github_repository: str = Field(
        ..., description="<owner>/<repo> whose GitHub Actions deploy this stack (its OIDC tokens are trusted)."
    )
    environment_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$",
        description="GitHub environment the deploy jobs run in; the role trusts only it. Default: the stack's environment.",
    )
    oidc_provider_arn: str | None = Field(
        None,
        pattern=r"^arn:aws[a-z-]*:iam::\d{12}:oidc-provider/token\.actions\.githubusercontent\.com$",
        description="Use this account's existing GitHub OIDC provider (one per account) instead of creating one.",
    )
    state_bucket: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="S3 bucket of a self-managed Pulumi backend the deploy role may use (.pulumi/ only); null with Pulumi Cloud.",
    )

    @field_validator("github_repository")
    @classmethod
    def _repository(cls, v: str) -> str:
        from components.naming import REPOSITORY

        if not REPOSITORY.match(v):
            raise ValueError("expected <owner>/<repo> as on GitHub, e.g. example-org/mlops-stack")
        return v


class StackConfig(Strict):
    environment: Environment = Field(..., description="Which environment this stack is: dev, staging or prod.")
    region: str = Field(..., pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$", description="AWS region of the stack.")
    name_prefix: str = Field(
        "mlops", pattern=_LABEL, min_length=2, max_length=12, description="Prefix of every physical resource name."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags added to every resource.")
    protect: bool | None = Field(
        None, description="Protect stateful resources from deletion/replacement. Default: on outside dev; cannot be turned off there."
    )
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Buckets: retention, locking, logging.")
    keys: KeysConfig = Field(default_factory=KeysConfig, description="The stack's KMS key: created or existing.")
    notifications: NotificationsConfig = Field(
        default_factory=NotificationsConfig, description="Who hears about failures, alarms and deployments."
    )
    localstack: LocalStackConfig | None = Field(
        None, description="Point the AWS provider at LocalStack (test credentials, path-style S3). Dev only."
    )
    aws_profile: str | None = Field(None, description="Named AWS CLI profile for the provider (default: environment).")
    vpc: VpcConfig | None = Field(
        None, description="The network of SageMaker jobs, models and the drift function: existing subnets, or create a private VPC. Null: none."
    )
    models: dict[ModelName, ModelConfig] = Field(
        default_factory=dict, description="The models this stack hosts, by name; they share the platform layer."
    )
    deploy: DeployConfig | None = Field(
        None, description="GitHub Actions deploys: OIDC provider and a deploy role for this environment. Null: none."
    )

    @field_validator("tags")
    @classmethod
    def _tag_keys(cls, v: dict[str, str]) -> dict[str, str]:
        reserved = sorted(k for k in v if k.lower().startswith("aws:"))
        if reserved:
            raise ValueError(f"tag keys {reserved} use the reserved 'aws:' prefix; choose other keys")
        return v

    @model_validator(mode="after")
    def _environment_rules(self) -> "StackConfig":
        if self.environment is not Environment.dev:
            if self.protect is False:
                raise ValueError(
                    f"protect: false is refused in {self.environment.value}; stateful resources are always "
                    "protected outside dev (remove the key)"
                )
            if self.storage.force_destroy:
                raise ValueError(
                    f"storage.force_destroy: true is refused in {self.environment.value}; it is for dev stacks only"
                )
            if self.localstack is not None:
                raise ValueError(f"localstack is for dev stacks only, not {self.environment.value}")
        if self.vpc is not None and self.vpc.create is not None and not isinstance(self.vpc.create.azs, int):
            foreign = [z for z in self.vpc.create.azs if not z.startswith(self.region)]
            if foreign:
                raise ValueError(f"vpc.create.azs {foreign} are not zones of region {self.region}; name zones such as {self.region}a")
        processing = [name for name, m in self.models.items() if m.drift.enabled and m.drift.engine == "processing"]
        if processing and self.vpc is None:
            raise ValueError(
                f"models {processing}: drift.engine: processing runs a SageMaker job that reads S3 and publishes metrics, "
                "which the permissions boundary allows only inside the stack's private VPC; set mlops:vpc "
                "(create: {} or existing subnet_ids and security_group_ids) or use drift.engine: lambda"
            )
        if self.environment is Environment.prod:
            short = [
                f"models.{name}.{part}.log_retention_days ({days})"
                for name, m in self.models.items()
                for part, days in (("pipeline", m.pipeline.log_retention_days), ("drift", m.drift.log_retention_days))
                if days < MIN_PROD_LOG_RETENTION_DAYS
            ]
            if self.vpc is not None and self.vpc.create is not None and self.vpc.create.flow_log_days < MIN_PROD_LOG_RETENTION_DAYS:
                short.append(f"vpc.create.flow_log_days ({self.vpc.create.flow_log_days})")
            if short:
                raise ValueError(
                    f"prod keeps logs at least {MIN_PROD_LOG_RETENTION_DAYS} days (Security Hub CloudWatch.16); "
                    f"raise {', '.join(short)} to 365 or more"
                )
        return self

    @property
    def protected(self) -> bool:
        """Whether stateful resources get ``protect``: explicit in dev, always outside it."""
        return self.protect if self.protect is not None else self.environment is not Environment.dev


def pinned_package_problems(cfg: StackConfig, stack: str) -> list[str]:
    """``endpoint.model_package`` must be a version of the model's own group, in the stack's region.

    The account is compared when the caller identity is known (``infra/program.py``); the flow checks the
    approval status of whatever it deploys at run time.
    """
    from components.naming import registry_group_name

    problems = []
    for name, model in cfg.models.items():
        arn = model.endpoint.model_package
        if arn is None:
            continue
        parts = arn.split(":")
        region, group = parts[3], parts[5].split("/")[1]
        expected = registry_group_name(cfg.name_prefix, stack, name)
        if region != cfg.region or group != expected:
            problems.append(
                f"config.mlops:models.{name}.endpoint.model_package: {arn} is not a version of this model's group; "
                f"expected arn:aws:sagemaker:{cfg.region}:<this account>:model-package/{expected}/<version>"
            )
    return problems


def model_problems(cfg: StackConfig) -> list[str]:
    """What pydantic cannot see in one model's fields: its source and entry points on disk, its framework in the
    SageMaker SDK's registry for the stack's region, its hyperparameters and gate against what its code accepts.
    Each line names the key and what is accepted."""
    problems: list[str] = []
    for name, m in cfg.models.items():
        key = f"config.mlops:models.{name}"
        problems += [f"{key}.{p}" for p in _runtime_problems(m, cfg.region)]
        problems += [f"{key}.{p}" for p in _code_problems(m)]
        problems += [f"{key}.{p}" for p in _gate_problems(m)]
    return problems


def _runtime_problems(m: ModelConfig, region: str) -> list[str]:
    if m.framework is not None and m.images is not None:
        return ["images: give either framework (SageMaker's images) or images (your own ECR images), not both"]
    if m.training.framework_version is not None and (m.framework is not None or m.images is not None):
        return ["training.framework_version: deprecated alias of framework.version; remove it when framework or images is given"]
    if m.builtin and m.images is not None:
        return ["images: the built-in recipe (no source) runs in SageMaker's scikit-learn image; give source and entry_points "
                "for your own container's code, or remove images"]
    runtime = m.runtime
    if m.builtin and isinstance(runtime, FrameworkConfig) and runtime.name != "sklearn":
        return [f"framework.name: {runtime.name!r} is not accepted for the built-in recipe (no source), which runs in "
                "sklearn; accepted: sklearn, or give source and entry_points for your own code"]
    if isinstance(runtime, ImagesConfig):
        if runtime.inference is None and m.endpoint.enabled:
            return ["images.inference: required key is missing: the model is served (endpoint.enabled); give the "
                    "inference image or set endpoint.enabled: false"]
        return []
    where = "framework" if m.framework is not None else "training.framework_version"
    try:
        frameworks.check(runtime.name, runtime.version, region, runtime.base_framework_version)
    except frameworks.UnknownFramework as e:
        return [f"{where}{'.version' if where == 'framework' else ''}: {runtime.version!r} is not accepted: {e}"]
    return []


def _code_problems(m: ModelConfig) -> list[str]:
    if m.builtin:
        problems = []
        if m.entry_points is not None:
            problems.append("entry_points: the built-in recipe's entry points are fixed (training/train.py, training/inference.py, "
                            "training/evaluate.py); give source: <your code directory> to run your own")
        hp = m.training.hyperparameters
        if not isinstance(hp, Hyperparameters):
            try:
                Hyperparameters.model_validate(hp)
            except ValidationError as e:
                problems += [
                    f"training.hyperparameters{line.removeprefix('(root)') if line.startswith('(root)') else '.' + line}"
                    for line in format_errors(e, Hyperparameters)
                ]
        return problems
    if m.entry_points is None:
        return ["entry_points: required key is missing: a model with its own source names its train entry point "
                "(entry_points: {train: train.py}); accepted keys: train, inference, preprocess, evaluate"]
    root = m.source_dir
    if not root.is_dir():
        return [f"source: {m.source!r} is not accepted: no such directory under the project root ({base_dir()})"]
    scripts = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    problems = []
    for step in ("train", "inference", "preprocess", "evaluate"):
        value = getattr(m.entry_points, step)
        if value is None:
            continue
        path = root / value
        if Path(value).is_absolute() or ".." in Path(value).parts or not path.is_file():
            problems.append(
                f"entry_points.{step}: {value!r} is not accepted: not a file in {m.source}; accepted: a path relative "
                f"to it, one of {', '.join(scripts) or '(no .py files)'}"
            )
    if m.endpoint.enabled and m.entry_points.inference is None:
        problems.append("entry_points.inference: required key is missing: the model is served (endpoint.enabled); "
                        "name its serving script or set endpoint.enabled: false")
    return problems


def _gate_problems(m: ModelConfig) -> list[str]:
    if m.gate is not None and "evaluation" in m.model_fields_set:
        return ["gate: give either gate or the deprecated evaluation, not both"]
    if m.gate is None:
        return []
    g, problems = m.gate, []
    known = metric_names.HIGHER_IS_BETTER.get(g.metric)
    if g.direction is None and known is None:
        problems.append(f"gate.direction: required key is missing: {g.metric!r} is not a metric the platform knows; "
                        "accepted: higher, lower")
    elif g.direction is not None and known is not None and g.direction != ("higher" if known else "lower"):
        problems.append(f"gate.direction: {g.direction!r} is not accepted: {'higher' if known else 'lower'} is better for {g.metric}")
    if m.builtin:
        per_task = getattr(metric_names, "GATE_METRICS", metric_names.TASK_METRICS)
        accepted = per_task.get(m.task, ())
        if g.metric not in accepted:
            problems.append(f"gate.metric: {g.metric!r} is not accepted: the built-in recipe reports for task {m.task}: "
                            f"{', '.join(accepted)}")
    return problems


class ConfigError(UserError):
    """A stack's configuration is invalid. ``str()`` is the full, user-facing report."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid configuration\n" + "\n".join(f"  - {p}" for p in problems))


# ---------------------------------------------------------------------------------------------------------------
# Loading


def stack_file(stack: str, directory: Path | None = None) -> Path:
    """``Pulumi.<stack>.yaml`` in ``directory`` (default: the stack config directory of the working directory's project)."""
    return (directory or stacks_dir()) / f"Pulumi.{stack}.yaml"


def load_stack_file(path: Path) -> StackConfig:
    """Read a ``Pulumi.<stack>.yaml`` file and validate its ``mlops`` namespace."""
    return config_from_keys(read_stack_keys(path), str(path))


def read_stack_keys(path: Path) -> dict[str, Any]:
    """The ``config:`` map of a stack file; a ConfigError when the file is unreadable or has none."""
    source = str(path)
    try:
        doc = load_yaml(path.read_text())
    except OSError as e:
        raise ConfigError(source, [f"cannot read the stack file: {e.strerror}"]) from None
    except yaml.YAMLError as e:
        raise ConfigError(source, [f"not valid YAML: {e}"]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise ConfigError(source, ["the file has no `config:` mapping (expected `config:` with `mlops:*` keys)"])
    return doc["config"]


def config_from_keys(keys: dict[str, Any], source: str) -> StackConfig:
    """Validate the flat ``namespace:key`` config map of a stack (as in the YAML or from the Pulumi engine)."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for key, value in keys.items():
        ns, _, name = str(key).partition(":")
        if ns == "aws":
            problems.append(
                f"config.{key}: the AWS provider is configured from the mlops namespace "
                "(mlops:region, mlops:aws_profile, mlops:localstack); remove this key"
            )
        elif ns == NAMESPACE:
            values[name] = value
    if problems:
        raise ConfigError(source, problems)
    try:
        cfg = StackConfig.model_validate(values)
    except ValidationError as e:
        raise ConfigError(source, format_errors(e, StackConfig, top_level=True)) from None
    problems = model_problems(cfg)
    if problems:
        raise ConfigError(source, problems)
    return cfg


def config_from_pulumi() -> StackConfig:
    """Load the running stack's config from the Pulumi engine (``pulumi up``/``preview``, or the mock engine)."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    keys: dict[str, Any] = {}
    for key, value in raw.items():
        # Structured values arrive JSON-encoded; plain strings do not parse as JSON objects.
        try:
            keys[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            keys[key] = value
    return config_from_keys(keys, f"stacks/Pulumi.{pulumi.get_stack()}.yaml")


# ---------------------------------------------------------------------------------------------------------------
# Error reporting


def format_errors(err: ValidationError, root: type[BaseModel], top_level: bool = False) -> list[str]:
    """Turn pydantic errors into lines naming the YAML path, the bad value and what is accepted."""
    lines = []
    for e in err.errors(include_url=False):
        loc = list(e["loc"])
        path = _yaml_path(loc, top_level)
        value = e.get("input")
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(root, loc[:-1], top_level)
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            msg = f"{path}: unknown key"
            if hint:
                msg += f" (did you mean {hint[0]!r}?)"
            msg += f"; accepted keys: {', '.join(allowed)}"
        elif e["type"] == "missing":
            msg = f"{path}: required key is missing"
        else:
            msg = f"{path}: {_shown(value)} is not accepted: {e['msg'].removeprefix('Value error, ')}"
        lines.append(msg)
    return lines


def _yaml_path(loc: list[Any], top_level: bool) -> str:
    # Unions (DataContract | str) add the member's name to the location; it is not a key the user wrote.
    loc = [p for p in loc if p not in ("DataContract", "str", "function-after[_load_contract(), str]")]
    if not loc:
        return "config" if top_level else "(root)"
    parts = [f"{NAMESPACE}:{loc[0]}" if top_level else str(loc[0])]
    for p in loc[1:]:
        parts.append(f"[{p}]" if isinstance(p, int) else f".{p}")
    return ("config." if top_level else "") + "".join(parts)


def _allowed_keys(root: type[BaseModel], loc: list[Any], top_level: bool) -> list[str]:
    model: Any = root
    for p in loc:
        if isinstance(p, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(p)
        if field is None:  # a key of a map (a model's name): the value's model stays current
            continue
        model = _model_of(field.annotation)
    fields = [f.alias or name for name, f in getattr(model, "model_fields", {}).items()] if model is not None else []
    return [f"{NAMESPACE}:{f}" for f in fields] if top_level and not loc else fields


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_or_yaml(text: str):
    """Contracts are usually JSON: parsed by the json module first (PyYAML's pure-Python parser takes ~50x as
    long), YAML only when the text is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return load_yaml(text)


def _indent(lines: list[str]) -> str:
    return "\n".join(f"    {line}" for line in lines)


# ---------------------------------------------------------------------------------------------------------------
# JSON Schema of a stack file, for editors (`mlops schema`)


def stack_file_schema() -> dict[str, Any]:
    model_schema = StackConfig.model_json_schema(mode="validation")
    defs = model_schema.pop("$defs", {})
    props = {f"{NAMESPACE}:{k}": v for k, v in model_schema["properties"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "mlops-stack Pulumi stack file",
        "description": "stacks/Pulumi.<stack>.yaml of an mlops-stack project (generated by `mlops schema`).",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": props,
                "required": [f"{NAMESPACE}:{k}" for k in model_schema.get("required", [])],
                # Other tools' namespaces are theirs; the aws namespace is refused by the loader.
                "patternProperties": {r"^(?!mlops:|aws:)[A-Za-z0-9_.-]+:": {}},
                "additionalProperties": False,
            },
            "secretsprovider": {"type": "string"},
            "encryptedkey": {"type": "string"},
            "encryptionsalt": {"type": "string"},
            "environment": {},
        },
        "required": ["config"],
        "additionalProperties": False,
        "$defs": defs,
    }



def config_reference_markdown() -> str:
    """The README's configuration reference, generated from the models (a test keeps the README current)."""
    rows = ["| key | type | default | description |", "|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}" if prefix else f"{NAMESPACE}:{name}"
            sub = _model_of(field.annotation)
            is_map = typing.get_origin(field.annotation) is dict and sub is not None
            type_name = _type_name(field.annotation)
            default = "required" if field.is_required() else _default_text(field)
            rows.append(f"| `{key}` | {type_name} | {default} | {field.description or ''} |")
            if sub is not None and sub.__module__.split(".")[0] in ("infra", "components", "training"):
                walk(sub, f"{key}.<name>." if is_map else f"{key}.")

    walk(StackConfig, "")
    return "\n".join(rows) + "\n"


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, __import__("types").UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is dict:
        return f"map of {_type_name(args[1])}"
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return " \\| ".join(json.dumps(m.value) for m in annotation)
    return getattr(annotation, "__name__", str(annotation))


def _default_text(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        return "see below" if isinstance(value, BaseModel) else f"`{json.dumps(value)}`"
    value = field.default
    if isinstance(value, Enum):
        value = value.value
    return f"`{json.dumps(value)}`"
