"""The one way the stack creates a role for an AWS service (its jobs, flows, functions and schedules)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.security import iam


def service_role(
    resource_name: str,
    *,
    parent: pulumi.Resource,
    role_name: str,
    service: str,
    description: str,
    tags: dict[str, str],
    source_account: pulumi.Input[str] | None,
    permissions_boundary: pulumi.Input[str] | None = None,
) -> aws.iam.Role:
    """A role only ``service`` may assume; with ``source_account``, only on behalf of that account
    (confused-deputy guard). Sessions last at most an hour. Permissions are attached by the caller, within
    ``permissions_boundary`` (the stack's boundary: no IAM writes, no role assumption, isolated jobs only)."""
    trust = (
        pulumi.Output.from_input(source_account).apply(lambda acct: json.dumps(iam.assume_role_policy(service, acct)))
        if source_account is not None
        else json.dumps(iam.assume_role_policy(service))
    )
    return aws.iam.Role(
        resource_name,
        name=role_name,
        description=description,
        assume_role_policy=trust,
        max_session_duration=3600,
        permissions_boundary=permissions_boundary,
        tags=tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
