"""The continuous-training flow of one model, as plain data: the Amazon States Language definition, the
state machine's least-privilege policy and the trigger rules. Pure functions of a frozen spec, so they are
tested without mocks and the LocalStack scenarios run exactly what ``pulumi up`` deploys.

Flow (the names in capitals of the issue are public: mock configs and dashboards refer to them)::

    Init → RunContext → [RouteMode] → CheckRunning ─(an older run is in progress)→ AlreadyRunning
      → IsNewData → [SettleNewData] → ListTrainingData ─(empty)→ NoTrainingData → NotifyFailure
      → SnapshotTrainingData (copy each listed object under <model>/snapshots/<run id>/data/) → WriteDataManifest
      → ValidateData → Train → ListTestData → (holdout: <model>/test/ or the validation split train wrote)
      → FindProductionModel → (compare with the newest approved version, if any) → Evaluate
      → QualityGate → GateVerdict ─(fail)→ ModelRejected → NotifyFailure → RunFailed
      → RegisterModel → Deploy [CreateModel → CreateEndpointConfig → UpdateEndpoint → wait loop]
      → Deployed → NotifySuccess
    RouteMode ─(mode: deploy, from the approval rule)→ CheckDeploying → PackageFromApproval → Deploy
    every Task ─(error, after its retries)→ NotifyFailure → RunFailed (StepFailed for the service's own errors)

Run ids (``YYYYMMDD-HHMMSS-xxxx``: start time and 16 random bits, drawn once per execution) name the run's
artifacts; job, model and endpoint-config names add the step and ``$$.State.RetryCount``, so a retried
create never collides with a resource an earlier attempt may have created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from components.naming import state_machine_name  # noqa: F401 (re-exported: the CLI imported it from here)
from training.contract import METRICS, Hyperparameters

# --- state names ------------------------------------------------------------------------------------------------
VALIDATE = "ValidateData"
TRAIN = "Train"
EVALUATE = "Evaluate"
GATE = "QualityGate"
REGISTER = "RegisterModel"
DEPLOY = "Deploy"
NOTIFY_SUCCESS = "NotifySuccess"
NOTIFY_FAILURE = "NotifyFailure"
PUBLIC_STATES = (VALIDATE, TRAIN, EVALUATE, GATE, REGISTER, DEPLOY, NOTIFY_SUCCESS, NOTIFY_FAILURE)
ALREADY_RUNNING = "AlreadyRunning"
ALREADY_DEPLOYING = "AlreadyDeploying"
RUN_FAILED = "RunFailed"
STEP_FAILED = "StepFailed"
FAILURE_KIND = "FailureKind"
NOTIFICATION_FAILED = "NotificationFailed"

TRAINING_ALIAS = "current"
DEPLOY_ALIAS = "deploy"
EVALUATION_SPLIT = "test"  # lineage keys: metric:test:<name>
GATE_PASS = "pass"  # training/evaluate.py's verdict

# Inside the processing containers.
PROCESSING = "/opt/ml/processing"
CODE_DIR = f"{PROCESSING}/input/code"
CONTRACT_DIR = f"{PROCESSING}/input/contract"
DATA_DIR = f"{PROCESSING}/input/data"
MODEL_DIR = f"{PROCESSING}/input/model"
HOLDOUT_DIR = f"{PROCESSING}/input/holdout"
PRODUCTION_DIR = f"{PROCESSING}/input/production"
OUTPUT_DIR = f"{PROCESSING}/output"
# SageMaker shows the first KB of this file as the processing job's ExitMessage (in the failure cause).
EXIT_MESSAGE = "/opt/ml/output/message"

# Endpoint states that are still moving; any other is final.
ENDPOINT_MOVING = ("Creating", "Updating", "SystemUpdating", "RollingBack")
ENDPOINT_BROKEN = ("Failed", "UpdateRollbackFailed", "OutOfService")

# Optimized SageMaker integrations raise SageMaker.AmazonSageMakerException for unmodeled errors, throttling
# included ("Error Code: ThrottlingException" in the cause); AWS SDK integrations raise the SDK's base class.
SERVICE_ERRORS = ("SageMaker.AmazonSageMakerException", "SageMaker.SageMakerException", "ThrottlingException")
CAPACITY_ERRORS = ("SageMaker.ResourceLimitExceededException", "SageMaker.ResourceLimitExceeded")


@dataclass(frozen=True)
class RetryPolicy:
    """One ASL retrier; ``max_delay_seconds`` caps the exponential backoff, full jitter spreads retries out."""

    interval_seconds: int
    max_attempts: int
    backoff_rate: float
    max_delay_seconds: int

    def asl(self, errors: tuple[str, ...]) -> dict[str, Any]:
        return {
            "ErrorEquals": list(errors),
            "IntervalSeconds": self.interval_seconds,
            "MaxAttempts": self.max_attempts,
            "BackoffRate": self.backoff_rate,
            "MaxDelaySeconds": self.max_delay_seconds,
            "JitterStrategy": "FULL",
        }


# AWS guidance for SageMaker tasks: retry service errors (throttling included) a few times with a capped
# backoff; wait longer for capacity, which frees up as other jobs end. Attempts stay single-digit in total
# because job names carry the retry count.
SERVICE_RETRY = RetryPolicy(interval_seconds=2, max_attempts=4, backoff_rate=2.0, max_delay_seconds=60)
CAPACITY_RETRY = RetryPolicy(interval_seconds=60, max_attempts=5, backoff_rate=2.0, max_delay_seconds=900)
AUX_RETRY = RetryPolicy(interval_seconds=2, max_attempts=3, backoff_rate=2.0, max_delay_seconds=30)


@dataclass(frozen=True)
class ModelCode:
    """A model's own code: its package (files at the archive root) and what the flow runs from it."""

    code_uri: str
    code_sha256: str
    train: str
    """Entry point of the training job (script mode's ``sagemaker_program``)."""
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    preprocess: str | None = None
    """Processing step between ValidateData and Train that writes the train and validation channels."""
    evaluate: str | None = None
    """The model's own evaluate (writes evaluation.json); None: the platform's runs."""
    inference: str | None = None
    own_image: bool = False
    """The images are the model's own (bring your own container): their entry points are left as built."""


@dataclass(frozen=True)
class Gate:
    metric: str
    direction: Literal["higher", "lower"]
    threshold: float


@dataclass(frozen=True)
class JobResources:
    instance_type: str
    instance_count: int
    volume_size_gb: int
    max_runtime_seconds: int


def default_variant() -> dict[str, Any]:
    return {"VariantName": "primary", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, "InitialVariantWeight": 1.0}


@dataclass(frozen=True)
class PipelineSpec:
    """Everything the flow of one model needs, as plain values (the component resolves its Outputs first)."""

    model: str
    stack: str
    partition: str
    region: str
    account_id: str
    state_machine_name: str
    job_prefix: str
    """Prefix of every job, model and endpoint config the flow creates (the IAM policy scopes to it)."""
    endpoint_name: str
    role_arn: str
    """The model's SageMaker execution role (passed to its jobs and models)."""
    model_package_group: str
    data_bucket: str
    models_bucket: str
    capture_bucket: str
    kms_key_arn: str
    topic_arn: str
    code_uri: str
    code_sha256: str
    contract_key: str
    """Key of the model's data contract (JSON) in the models bucket."""
    training_image: str
    inference_image: str
    training: JobResources
    processing: JobResources
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    evaluation_args: tuple[str, ...] = ()
    """The evaluation rule as evaluate.py arguments (``EvaluationRule.to_cli_args()``)."""
    metric_definitions: tuple[Mapping[str, str], ...] = ()
    spot: bool = False
    max_wait_seconds: int = 0
    approval: Literal["auto", "manual"] = "auto"
    deploy_enabled: bool = True
    """False when the serving config pins a model package: the run ends after RegisterModel."""
    endpoint_variant: Mapping[str, Any] = field(default_factory=default_variant)
    """ProductionVariant (API shape) of each endpoint configuration the flow creates; ``ModelName`` is per run."""
    data_capture: Mapping[str, Any] | None = None
    """DataCaptureConfig (API shape); default: all requests and responses to the capture bucket, stack key."""
    deployment_configs: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None
    """DeploymentConfig (API shape) of every deployment and of the first one away from the bootstrap placeholder
    (``components.serving.endpoint.flow_deployment_configs``); None: the endpoint's own is retained."""
    bootstrap_config_prefix: str = ""
    """Name prefix of the placeholder's endpoint configurations."""
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    settle_seconds: int = 60
    deploy_poll_seconds: int = 60
    deploy_timeout_seconds: int = 5400
    guard_poll_seconds: int = 5
    guard_max_polls: int = 24
    """A run waits this many polls to see itself in ListExecutions (or for the run that queued it to end)."""
    service_retry: RetryPolicy = SERVICE_RETRY
    capacity_retry: RetryPolicy = CAPACITY_RETRY
    aux_retry: RetryPolicy = AUX_RETRY
    tags: Mapping[str, str] = field(default_factory=dict)
    model_code: ModelCode | None = None
    """The model's own code (its package, entry points, hyperparameters); None: the built-in recipe."""
    platform_image: str = ""
    """Image of the platform's own steps (validation, baseline statistics, the built-in evaluate); default:
    ``training_image`` (the built-in recipe runs in the platform's image)."""
    step_instance_types: Mapping[str, str] = field(default_factory=dict)
    """Instance type per processing step (``validate``, ``preprocess``, ``baseline``, ``evaluate``); default:
    ``processing.instance_type``."""
    metrics: tuple[str, ...] = METRICS
    """Metrics every evaluation.json of the model reports (GateVerdict requires them; the lineage records them)."""
    gate: Gate | None = None
    """The gate's metric, direction and threshold, checked by GateVerdict on the report's metric itself."""

    def __post_init__(self) -> None:
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise ValueError("subnet_ids and security_group_ids go together: a VPC job needs both")
        if len(self.job_prefix) > 32:
            raise ValueError(f"job_prefix {self.job_prefix!r} is longer than 32 characters; job names would exceed 63")
        if self.deploy_poll_seconds < 1 or self.deploy_timeout_seconds < self.deploy_poll_seconds:
            raise ValueError("deploy_poll_seconds must be >= 1 and at most deploy_timeout_seconds")

    # --- names ------------------------------------------------------------------------------------------------
    @property
    def state_machine_arn(self) -> str:
        """Computed, not read from the resource: the role's policy must exist before the state machine."""
        return f"arn:{self.partition}:states:{self.region}:{self.account_id}:stateMachine:{self.state_machine_name}"

    @property
    def alias_arn(self) -> str:
        return f"{self.state_machine_arn}:{TRAINING_ALIAS}"

    @property
    def deploy_alias_arn(self) -> str:
        return f"{self.state_machine_arn}:{DEPLOY_ALIAS}"

    @property
    def platform_training_image(self) -> str:
        return self.platform_image or self.training_image

    def processing_type(self, step: str) -> str:
        return self.step_instance_types.get(step, self.processing.instance_type)

    @property
    def manual_approval(self) -> bool:
        return self.approval == "manual"

    @property
    def deploy_mode(self) -> bool:
        """Whether approvals start deploy-only runs (then the approval rule and the deploy alias exist)."""
        return self.deploy_enabled and self.manual_approval

    @property
    def vpc(self) -> dict[str, Any] | None:
        if not self.subnet_ids:
            return None
        return {"SecurityGroupIds": list(self.security_group_ids), "Subnets": list(self.subnet_ids)}

    def prefix(self, channel: str) -> str:
        """``<model>/<channel>/``: where ``mlops data push --channel`` puts a dataset."""
        return f"{self.model}/{channel}/"

    def sagemaker_arn(self, kind: str, name: str) -> str:
        return f"arn:{self.partition}:sagemaker:{self.region}:{self.account_id}:{kind}/{name}"

    def tag_list(self) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in sorted(self.tags.items())][:50]


