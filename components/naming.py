"""Physical names and tags. Pure functions: the CLI computes the same names without Pulumi state."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

PROJECT = "mlops-stack"
BUCKET_ROLES = ("data", "models", "capture", "logs")


def bucket_name(prefix: str, stack: str, role: str, account_id: str, region: str) -> str:
    """``<prefix>-<stack>-<role>-<account>-<region>``: globally unique without a random suffix.

    Deterministic names let ``mlops data push`` find the data bucket from the stack config and the
    caller's account alone. S3 allows 63 characters; a longer name is shortened with a stable hash.
    """
    name = f"{prefix}-{stack}-{role}-{account_id}-{region}".lower()
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: 63 - 9]}-{digest}"


def resource_name(prefix: str, stack: str, *parts: str, limit: int = 63) -> str:
    """A physical name for non-bucket resources (roles, topics, groups), kept within ``limit``."""
    name = "-".join((prefix, stack, *parts)).lower()
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9]}-{digest}"


def tags(stack: str, environment: str, extra: dict[str, str], model: str | None = None) -> dict[str, str]:
    """Tags carried by every resource: project, stack, environment, and the model when there is one."""
    out = {**extra, "mlops:project": PROJECT, "mlops:stack": stack, "mlops:environment": environment}
    if model is not None:
        out["mlops:model"] = model
    return out


def short_hash(value: str, length: int = 8) -> str:
    """Content hash for names of list-derived children, so reordering a list replaces nothing."""
    return hashlib.sha256(value.encode()).hexdigest()[:length]


def job_prefix(prefix: str, stack: str, model: str) -> str:
    """Every SageMaker job, model, endpoint config and endpoint of a model starts with this (IAM scopes to it).

    Kept to 32 characters so job names (63 max) have room for a step and a run id.
    """
    return resource_name(prefix, stack, model, limit=32)


def endpoint_name(prefix: str, stack: str, model: str) -> str:
    """The model's real-time endpoint: one stable name, whatever model version serves behind it."""
    return job_prefix(prefix, stack, model)


def model_alarm_name(prefix: str, stack: str, model: str, suffix: str) -> str:
    """A model's monitoring alarm, ``<job prefix>-<suffix>``: ``drift``, ``prediction-drift``, ``capture-stopped``,
    ``quality``, ``labels-stopped``, ``<job>-job-errors`` and the endpoint's (``<endpoint>-<suffix>``)."""
    return f"{job_prefix(prefix, stack, model)}-{suffix}"


def drift_alarm_name(prefix: str, stack: str, model: str) -> str:
    """The alarm on the model's maximum drift score; its ALARM state triggers retraining."""
    return model_alarm_name(prefix, stack, model, "drift")


def stem(prefix: str, stack: str) -> str:
    """Every physical name of a stack starts with ``<stem>-`` (IAM and resource policies scope to it)."""
    return f"{prefix}-{stack}".lower()


def model_role_name(prefix: str, stack: str, model: str) -> str:
    """The SageMaker execution role of a model's jobs and endpoint."""
    return resource_name(prefix, stack, model, "sagemaker", limit=64)


def flow_role_name(prefix: str, stack: str, model: str) -> str:
    """The role of a model's CT state machine."""
    return resource_name(prefix, stack, model, "states", limit=64)


def deploy_role_name(prefix: str, stack: str) -> str:
    """The GitHub Actions deploy role of a stack."""
    return resource_name(prefix, stack, "deploy", limit=64)


def preview_role_name(prefix: str, stack: str) -> str:
    """The read-only role pull-request previews of a stack run as."""
    return resource_name(prefix, stack, "preview", limit=64)


def boundary_name(prefix: str, stack: str) -> str:
    """The managed policy every role of the stack carries as its permissions boundary."""
    return resource_name(prefix, stack, "boundary", limit=128)


def topic_name(prefix: str, stack: str) -> str:
    """The stack's notification topic."""
    return resource_name(prefix, stack, "notifications", limit=256)


def key_alias(prefix: str, stack: str) -> str:
    """The stack key's alias (``alias/<this>``) and the dashboard's name."""
    return resource_name(prefix, stack)


def dashboard_name(prefix: str, stack: str) -> str:
    """The stack's CloudWatch dashboard."""
    return resource_name(prefix, stack)


def break_glass_role_name(prefix: str) -> str:
    """The default break-glass role (account-wide, one per prefix): the only one that may retire the stack key."""
    return f"{prefix}-break-glass"


def log_group_prefix(prefix: str, stack: str) -> str:
    """Every log group of the stack starts with this (the key policy scopes CloudWatch Logs to it)."""
    return f"/mlops/{prefix}-{stack}/"


def key_event_rule_name(prefix: str, stack: str, suffix: str) -> str:
    """The EventBridge rules that tell the topic about changes to the stack key (``key-changes``, ``key-deleted``)."""
    return resource_name(prefix, stack, suffix, limit=64)


def vpc_flow_log_role_name(prefix: str, stack: str) -> str:
    """The role VPC Flow Logs delivers to the flow-log group as."""
    return resource_name(prefix, stack, "vpc-flow-logs", limit=64)


def deploy_policy_name(prefix: str, stack: str, concern: str) -> str:
    """One of the deploy role's managed policies (one per concern)."""
    return resource_name(prefix, stack, "deploy", concern, limit=128)


def vpc_flow_log_group_name(prefix: str, stack: str) -> str:
    """The created network's flow-log group."""
    return f"{log_group_prefix(prefix, stack)}vpc-flow-logs"


def metric_namespace(stack: str, model: str) -> str:
    """The CloudWatch namespace of a model's own metrics (drift, quality, CT heartbeat dimensions)."""
    return f"mlops/{stack}/{model}"


def registry_group_name(prefix: str, stack: str, model: str) -> str:
    """The model's SageMaker model package group (its registry)."""
    return resource_name(prefix, stack, model)


def state_machine_name(prefix: str, stack: str, model: str) -> str:
    """``<prefix>-<stack>-<model>-training``: the model's CT state machine."""
    return resource_name(prefix, stack, model, "training", limit=80)


def state_machine_log_group_name(prefix: str, stack: str, model: str) -> str:
    """The CT state machine's execution log group."""
    return f"{log_group_prefix(prefix, stack)}states/{state_machine_name(prefix, stack, model)}"


def starter_role_name(prefix: str, stack: str, model: str, kind: str) -> str:
    """The role EventBridge (``kind="events"``) or Scheduler (``"scheduler"``) assumes to start CT runs."""
    return resource_name(prefix, stack, model, f"{kind}-start", limit=64)


def trigger_rule_name(prefix: str, stack: str, model: str, trigger: str) -> str:
    """An EventBridge rule that starts CT runs (``new-data``, ``drift``, ``quality``, ``approved``)."""
    return resource_name(prefix, stack, model, trigger, limit=64)


def trigger_dlq_name(prefix: str, stack: str, model: str) -> str:
    """The dead-letter queue of the CT triggers."""
    return resource_name(prefix, stack, model, "trigger-dlq", limit=80)


def retrain_schedule_name(prefix: str, stack: str, model: str) -> str:
    """The Scheduler schedule of periodic retraining."""
    return resource_name(prefix, stack, model, "retrain", limit=64)


def ct_alarm_name(prefix: str, stack: str, model: str, what: str) -> str:
    """A CT-flow alarm: ``ct-runs-failed|timed-out|aborted``, ``ct-stale``."""
    return resource_name(prefix, stack, model, f"ct-{what}", limit=255)


def monitor_name(prefix: str, stack: str, model: str, job: str) -> str:
    """A monitoring job's function, role and schedule stem (``job``: ``drift`` or ``quality``)."""
    return resource_name(prefix, stack, model, job, limit=64)


def monitor_log_group_name(prefix: str, stack: str, model: str, job: str) -> str:
    """A monitoring job's log group."""
    return f"{log_group_prefix(prefix, stack)}{job}/{model}"


def endpoint_log_group_name(prefix: str, stack: str, model: str) -> str:
    """SageMaker's log group of the model's endpoint (created by the stack before SageMaker would)."""
    return f"/aws/sagemaker/Endpoints/{endpoint_name(prefix, stack, model)}"


@dataclass(frozen=True)
class ModelNames:
    """Every physical name of one model of a stack, from the stack's prefix and name alone (no Pulumi state):
    the components name their resources with it, and the CLI finds them with it."""

    prefix: str
    stack: str
    model: str

    @property
    def job_prefix(self) -> str:
        return job_prefix(self.prefix, self.stack, self.model)

    @property
    def endpoint(self) -> str:
        return endpoint_name(self.prefix, self.stack, self.model)

    @property
    def endpoint_log_group(self) -> str:
        return endpoint_log_group_name(self.prefix, self.stack, self.model)

    @property
    def role(self) -> str:
        return model_role_name(self.prefix, self.stack, self.model)

    @property
    def flow_role(self) -> str:
        return flow_role_name(self.prefix, self.stack, self.model)

    @property
    def registry_group(self) -> str:
        return registry_group_name(self.prefix, self.stack, self.model)

    @property
    def state_machine(self) -> str:
        return state_machine_name(self.prefix, self.stack, self.model)

    @property
    def state_machine_log_group(self) -> str:
        return state_machine_log_group_name(self.prefix, self.stack, self.model)

    @property
    def metric_namespace(self) -> str:
        return metric_namespace(self.stack, self.model)

    @property
    def drift_alarm(self) -> str:
        return drift_alarm_name(self.prefix, self.stack, self.model)

    def starter_role(self, kind: str) -> str:
        return starter_role_name(self.prefix, self.stack, self.model, kind)

    def trigger_rule(self, trigger: str) -> str:
        return trigger_rule_name(self.prefix, self.stack, self.model, trigger)

    @property
    def trigger_dlq(self) -> str:
        return trigger_dlq_name(self.prefix, self.stack, self.model)

    @property
    def retrain_schedule(self) -> str:
        return retrain_schedule_name(self.prefix, self.stack, self.model)

    def ct_alarm(self, what: str) -> str:
        return ct_alarm_name(self.prefix, self.stack, self.model, what)

    def monitor(self, job: str) -> str:
        return monitor_name(self.prefix, self.stack, self.model, job)

    def monitor_schedule_role(self, job: str) -> str:
        return monitor_name(self.prefix, self.stack, self.model, f"{job}-schedule")

    def monitor_log_group(self, job: str) -> str:
        return monitor_log_group_name(self.prefix, self.stack, self.model, job)


def overlapping_stems(stems: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs (a, b) of stacks whose scopes overlap: ``<stem a>-`` is a prefix of ``<stem b>-`` (``prod`` and
    ``prod-eu`` both match ``mlops-prod-*``), so one stack's IAM scopes would reach the other's resources."""
    return sorted(
        (a, b) for a, sa in stems.items() for b, sb in stems.items() if a != b and f"{sb}-".startswith(f"{sa}-")
    )


REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
"""A GitHub ``<owner>/<repo>`` (checked by the config and the deploy identity)."""
