"""Operations on a live endpoint: roll back to an earlier approved model package version.

Rollback takes the same guarded path as a CT deployment: a new model and endpoint configuration,
then UpdateEndpoint with the endpoint's own DeploymentConfig (built by the function Pulumi uses), so its blue/green policy and
auto-rollback alarms (owned by Pulumi) apply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


class OpsError(Exception):
    """A user-facing refusal: says what is wrong and what would be accepted."""


@dataclass(frozen=True)
class PackageVersion:
    arn: str
    version: int
    status: str


@dataclass(frozen=True)
class RollbackPlan:
    endpoint_name: str
    current: PackageVersion | None
    target: PackageVersion
    model_name: str
    endpoint_config_name: str


def list_versions(sm, group: str) -> list[PackageVersion]:
    out = []
    for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
        for p in page.get("ModelPackageSummaryList", []):
            out.append(PackageVersion(p["ModelPackageArn"], int(p.get("ModelPackageVersion") or p["ModelPackageArn"].rsplit("/", 1)[1]), p.get("ModelApprovalStatus", "")))
    return sorted(out, key=lambda v: v.version)


def live_state(sm, endpoint_name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The endpoint, its live configuration and the live variant's model."""
    try:
        endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    except ClientError as e:
        if "Could not find" in str(e) or e.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            raise OpsError(f"endpoint {endpoint_name} does not exist; deploy the stack first (pulumi up)") from None
        raise
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return endpoint, config, model


def plan_rollback(sm, *, endpoint_name: str, group: str, to: str | None, pinned: str | None, run_id: str) -> RollbackPlan:
    if pinned:
        raise OpsError(
            f"the live model is pinned by config (endpoint.model_package = {pinned}); roll back with a reviewed "
            "config change naming the earlier package"
        )
    endpoint, _, model = live_state(sm, endpoint_name)
    if endpoint.get("EndpointStatus") != "InService":
        raise OpsError(f"endpoint {endpoint_name} is {endpoint.get('EndpointStatus')}; wait until it is InService")
    versions = list_versions(sm, group)
    approved = [v for v in versions if v.status == "Approved"]
    current_arn = model.get("PrimaryContainer", {}).get("ModelPackageName")
    current = next((v for v in versions if v.arn == current_arn), None)
    shown = ", ".join(str(v.version) for v in approved) or "none"
    if to is None:
        earlier = [v for v in approved if current is None or v.version < current.version]
        if not earlier:
            raise OpsError(f"no approved version earlier than the live one ({current.version if current else 'bootstrap'}); approved: {shown}")
        target = earlier[-1]
    else:
        target = next((v for v in versions if str(v.version) == to or v.arn == to), None)
        if target is None:
            raise OpsError(f"model package version {to!r} is not in group {group}; approved versions: {shown}")
        if target.status != "Approved":
            raise OpsError(f"model package version {target.version} is {target.status}, not Approved; approved versions: {shown}")
    if current is not None and target.arn == current.arn:
        raise OpsError(f"version {target.version} is already live on {endpoint_name}")
    suffix = f"rb{target.version}-{run_id}"
    return RollbackPlan(endpoint_name, current, target, f"{endpoint_name}-{suffix}"[:63], f"{endpoint_name}-{suffix}"[:63])


def apply_rollback(sm, plan: RollbackPlan, deployment_config: dict[str, Any] | None = None) -> None:
    """Create the model and configuration for the target version and start the guarded update.

    ``deployment_config``: the endpoint's guardrails, passed explicitly (the CT flow does too, so whatever the last
    deployment used, this one has every rollback alarm); None retains the last one."""
    _, config, model = live_state(sm, plan.endpoint_name)
    create: dict[str, Any] = {
        "ModelName": plan.model_name,
        "PrimaryContainer": {"ModelPackageName": plan.target.arn},
        "ExecutionRoleArn": model["ExecutionRoleArn"],
        "EnableNetworkIsolation": True,
    }
    if model.get("VpcConfig"):
        create["VpcConfig"] = model["VpcConfig"]
    sm.create_model(**create)
    variants = [{k: v for k, v in config["ProductionVariants"][0].items() if k in _VARIANT_KEYS} | {"ModelName": plan.model_name}]
    new_config: dict[str, Any] = {"EndpointConfigName": plan.endpoint_config_name, "ProductionVariants": variants}
    for key in ("DataCaptureConfig", "KmsKeyId"):
        if config.get(key):
            new_config[key] = config[key]
    sm.create_endpoint_config(**new_config)
    guardrails = {"DeploymentConfig": deployment_config} if deployment_config is not None else {"RetainDeploymentConfig": True}
    sm.update_endpoint(EndpointName=plan.endpoint_name, EndpointConfigName=plan.endpoint_config_name, **guardrails)


_VARIANT_KEYS = {"VariantName", "InstanceType", "InitialInstanceCount", "InitialVariantWeight", "ServerlessConfig", "VolumeSizeInGB"}


def wait_in_service(sm, endpoint_name: str, config_name: str, on_status, poll_seconds: float = 15, timeout_seconds: float = 7200) -> bool:
    """Poll until the endpoint settles; True when the new configuration is live, False when it rolled back."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        ep = sm.describe_endpoint(EndpointName=endpoint_name)
        on_status(ep["EndpointStatus"])
        if ep["EndpointStatus"] in ("InService", "Failed"):
            return ep["EndpointStatus"] == "InService" and ep["EndpointConfigName"] == config_name
        time.sleep(poll_seconds)
    raise OpsError(f"endpoint {endpoint_name} did not settle within {timeout_seconds:.0f} s")
