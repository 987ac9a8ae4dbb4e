"""The CT flow's triggers: EventBridge rules (pattern and target input) and the schedule's target."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from components.security import iam

from components.pipeline.spec import PipelineSpec

# =================================================================================================================
# Triggers: EventBridge rules (pattern and target input) and the schedule's target


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule on the default bus and how its target starts the flow."""

    description: str
    pattern: dict[str, Any]
    input_paths: dict[str, str]
    input_template: str

    @property
    def pattern_json(self) -> str:
        return json.dumps(self.pattern, sort_keys=True)


def _template(fields: dict[str, str]) -> str:
    # "id" carries the event id into the run for tracing (LocalStack also names the execution after it).
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


def new_data_rule(spec: PipelineSpec) -> RuleSpec:
    prefix = spec.prefix("train")
    return RuleSpec(
        description=f"Retrain {spec.model} when data lands under s3://{spec.data_bucket}/{prefix}",
        pattern={
            "source": ["aws.s3"],
            "detail-type": ["Object Created"],
            "detail": {"bucket": {"name": [spec.data_bucket]}, "object": {"key": [{"prefix": prefix}]}},
        },
        input_paths={"id": "$.id", "bucket": "$.detail.bucket.name", "key": "$.detail.object.key", "version": "$.detail.object.version-id"},
        input_template=_template(
            {"id": "<id>", "trigger": '"new_data"', "data": '{"bucket": <bucket>, "key": <key>, "version_id": <version>}'}
        ),
    )


def drift_rule(spec: PipelineSpec, alarm_name: str) -> RuleSpec:
    return _alarm_rule(spec, alarm_name, "drift")


def quality_rule(spec: PipelineSpec, alarm_name: str) -> RuleSpec:
    """Retrain when the live-quality alarm (ground truth below the production standard) enters ALARM."""
    return _alarm_rule(spec, alarm_name, "quality")


def _alarm_rule(spec: PipelineSpec, alarm_name: str, trigger: str) -> RuleSpec:
    return RuleSpec(
        description=f"Retrain {spec.model} when its {trigger} alarm {alarm_name} enters ALARM",
        pattern={
            "source": ["aws.cloudwatch"],
            "detail-type": ["CloudWatch Alarm State Change"],
            "detail": {"alarmName": [alarm_name], "state": {"value": ["ALARM"]}},
        },
        input_paths={"id": "$.id", "alarm": "$.detail.alarmName", "reason": "$.detail.state.reason"},
        input_template=_template({"id": "<id>", "trigger": f'"{trigger}"', "alarm": '{"name": <alarm>, "reason": <reason>}'}),
    )


def approval_rule(spec: PipelineSpec) -> RuleSpec:
    return RuleSpec(
        description=f"Deploy {spec.model} when a version in {spec.model_package_group} is approved",
        pattern={
            "source": ["aws.sagemaker"],
            "detail-type": ["SageMaker Model Package State Change"],
            "detail": {"ModelPackageGroupName": [spec.model_package_group], "ModelApprovalStatus": ["Approved"]},
        },
        input_paths={"id": "$.id", "arn": "$.detail.ModelPackageArn"},
        input_template=_template({"id": "<id>", "trigger": '"approval"', "mode": '"deploy"', "model_package_arn": "<arn>"}),
    )


def schedule_target_input(spec: PipelineSpec) -> str:
    """Input of the schedule's universal target (``aws-sdk:sfn:startExecution``): a run on the training alias."""
    run_input = json.dumps({"trigger": "schedule", "scheduled_time": "<aws.scheduler.scheduled-time>"})
    return json.dumps({"StateMachineArn": spec.alias_arn, "Input": run_input})


def start_execution_statement(spec: PipelineSpec, aliases: tuple[str, ...]) -> iam.Statement:
    """Start runs only through the given aliases (authorized on the unqualified ARN plus the qualifier)."""
    return {
        "Sid": "StartRunsThroughAliases",
        "Effect": "Allow",
        "Action": "states:StartExecution",
        "Resource": spec.state_machine_arn,
        "Condition": {"StringEquals": {"states:StateMachineQualifier": list(aliases)}},
    }
