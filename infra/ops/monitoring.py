"""Where each model stands: its registered versions (``mlops models``) and one on-call view (``mlops status``).

Read-only: the registry's versions with their lineage (``CustomerMetadataProperties`` written by the CT
flow's RegisterModel), the live endpoint, the flow's recent executions, the newest drift and quality
reports, and the model's alarms in ALARM.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from components.naming import endpoint_name, job_prefix
from components.pipeline.spec import state_machine_name
from infra.ops.session import StackSession
from infra.ops.serving import OpsError
from training.drift import REPORTS_PREFIX as DRIFT_REPORTS
from training.quality import REPORTS_PREFIX as QUALITY_REPORTS


@dataclass(frozen=True)
class VersionRow:
    version: int
    arn: str
    approval: str
    status: str
    created: str
    live: bool
    metrics: dict[str, float]
    training_job: str | None
    code_sha256: str | None
    data: dict[str, str]
    """``data:<channel>:s3_uri`` / ``version_id`` of the lineage, by key without the ``data:`` prefix."""


def _call(fn, what: str):
    try:
        return fn()
    except NoCredentialsError:
        raise OpsError("no AWS credentials found; configure a profile (mlops:aws_profile) or the AWS_* variables") from None
    except NoRegionError:
        raise OpsError("no AWS region; set mlops:region in the stack file") from None
    except ClientError as e:
        error = e.response.get("Error", {})
        raise OpsError(f"{what}: {error.get('Code', '')}: {error.get('Message', '')}") from None


def live_package(sm, endpoint: str) -> tuple[str | None, str | None]:
    """(endpoint status, the live model package ARN) or (None, None) when there is no endpoint."""
    try:
        ep = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as e:
        if "Could not find" in str(e) or e.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
            return None, None
        raise
    config = sm.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    return ep["EndpointStatus"], model.get("PrimaryContainer", {}).get("ModelPackageName")


def model_versions(sm, group: str, endpoint: str) -> list[VersionRow]:
    """Every registered version of the group, newest last, the live one marked."""
    def summaries():
        return [p for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group) for p in page.get("ModelPackageSummaryList", [])]

    packages = _call(summaries, f"listing model package group {group}")
    _, live_arn = _call(lambda: live_package(sm, endpoint), f"reading endpoint {endpoint}")
    rows = []
    for p in packages:
        d = _call(lambda: sm.describe_model_package(ModelPackageName=p["ModelPackageArn"]), f"describing {p['ModelPackageArn']}")
        props = d.get("CustomerMetadataProperties") or {}
        metrics = {}
        for key, value in props.items():
            if key.startswith("metric:"):
                try:
                    metrics[key.removeprefix("metric:")] = float(value)
                except ValueError:
                    continue  # a hand-registered version with a non-numeric entry: shown nowhere, not fatal
        rows.append(
            VersionRow(
                version=int(d.get("ModelPackageVersion") or p["ModelPackageArn"].rsplit("/", 1)[1]),
                arn=p["ModelPackageArn"],
                approval=d.get("ModelApprovalStatus", ""),
                status=d.get("ModelPackageStatus", ""),
                created=d["CreationTime"].isoformat() if d.get("CreationTime") else "",
                live=p["ModelPackageArn"] == live_arn,
                metrics=metrics,
                training_job=props.get("training_job"),
                code_sha256=props.get("code_sha256"),
                data={k.removeprefix("data:"): v for k, v in props.items() if k.startswith("data:")},
            )
        )
    return sorted(rows, key=lambda r: r.version)


@dataclass
class ModelStatus:
    model: str
    endpoint: str | None
    endpoint_status: str | None = None
    live_version: int | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)
    drift: dict[str, Any] | None = None
    quality: dict[str, Any] | None = None
    alarms: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _latest_report(s3, bucket: str, prefix: str) -> dict[str, Any] | None:
    """The newest report under ``prefix`` (keys are ``YYYY/MM/DD/HH.json``: the last listed is the newest)."""
    newest = None
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if newest is None or obj["Key"] > newest:
                newest = obj["Key"]
    if newest is None:
        return None
    try:
        return {"key": newest, **json.loads(s3.get_object(Bucket=bucket, Key=newest)["Body"].read())}
    except ValueError:
        return {"key": newest, "status": "unreadable"}


def model_status(session: StackSession, model: str, runs: int = 5) -> ModelStatus:
    cfg, stack = session.cfg, session.stack
    prefix = cfg.name_prefix
    endpoint = endpoint_name(prefix, stack, model) if cfg.models[model].endpoint.enabled else None
    sm, sfn, s3, cw = (session.client(s) for s in ("sagemaker", "stepfunctions", "s3", "cloudwatch"))
    status = ModelStatus(model, endpoint)
    if endpoint:
        status.endpoint_status, live_arn = _call(lambda: live_package(sm, endpoint), f"reading endpoint {endpoint}")
        if live_arn:
            status.live_version = int(live_arn.rsplit("/", 1)[1])
    machine = f"arn:{_partition(cfg.region)}:states:{cfg.region}:{session.account_id}:stateMachine:{state_machine_name(prefix, stack, model)}"
    try:
        executions = sfn.list_executions(stateMachineArn=machine, maxResults=runs)["executions"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "StateMachineDoesNotExist":
            raise OpsError(f"listing the runs of {machine}: {e.response['Error'].get('Message', '')}") from None
        executions = []
    status.runs = [
        {"name": x["name"], "status": x["status"], "started": x["startDate"].isoformat(), "stopped": x["stopDate"].isoformat() if x.get("stopDate") else None}
        for x in executions
    ]
    capture = session.bucket("capture")
    status.drift = _call(lambda: _latest_report(s3, capture, f"{model}/{DRIFT_REPORTS}/"), f"reading drift reports in s3://{capture}")
    status.quality = _call(lambda: _latest_report(s3, capture, f"{model}/{QUALITY_REPORTS}/"), f"reading quality reports in s3://{capture}")
    alarms = _call(
        lambda: [a["AlarmName"] for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix=job_prefix(prefix, stack, model), StateValue="ALARM") for a in page["MetricAlarms"] if a.get("StateValue") == "ALARM"],
        "listing alarms",
    )
    status.alarms = sorted(alarms)
    return status


def stack_deployed(session: StackSession) -> bool:
    """Whether the stack's data bucket exists (the first resource every deployment creates)."""
    try:
        session.client("s3").head_bucket(Bucket=session.bucket("data"))
        return True
    except ClientError:
        return False
    except NoCredentialsError:
        raise OpsError("no AWS credentials found; configure a profile (mlops:aws_profile) or the AWS_* variables") from None


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"

