"""Physical names and tags. Pure functions: the CLI computes the same names without Pulumi state."""

from __future__ import annotations

import hashlib
import re

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


def drift_alarm_name(prefix: str, stack: str, model: str) -> str:
    """The alarm on the model's maximum drift score; its ALARM state triggers retraining."""
    return f"{job_prefix(prefix, stack, model)}-drift"


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
    return resource_name(prefix, stack, "notifications", limit=256)


def overlapping_stems(stems: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs (a, b) of stacks whose scopes overlap: ``<stem a>-`` is a prefix of ``<stem b>-`` (``prod`` and
    ``prod-eu`` both match ``mlops-prod-*``), so one stack's IAM scopes would reach the other's resources."""
    return sorted(
        (a, b) for a, sa in stems.items() for b, sb in stems.items() if a != b and f"{sb}-".startswith(f"{sa}-")
    )


REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
"""A GitHub ``<owner>/<repo>`` (checked by the config and the deploy identity)."""
