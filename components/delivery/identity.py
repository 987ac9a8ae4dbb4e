"""The identity GitHub Actions deploys a stack with: the GitHub OIDC provider and one deploy role per environment.

No long-lived keys: a workflow job that runs in the GitHub environment ``<env>`` of repository
``<owner>/<repo>`` gets an OIDC token whose ``sub`` is ``repo:<owner>/<repo>:environment:<env>``;
the role trusts exactly that subject and the ``sts.amazonaws.com`` audience, nothing broader (no other
repository, branch, fork or pull request).

The role can do what a ``pulumi up`` of this stack does, to this stack's resources only: every
physical name starts with ``<prefix>-<stack>`` (see ``components.naming``), so the policy grants by that
name prefix; buckets and the stack key by their exact ARNs; the state bucket (a self-managed backend)
only under ``.pulumi/``. Where ``Resource`` is ``*`` the action has no resource type in IAM, or a
condition scopes it; each such statement says why.

What it cannot do (explicit denies, so no other policy can grant it): create, delete or re-trust a role,
move a boundary, attach managed policies, create principals or policies; write a role policy of a role
that does not carry the stack's permissions boundary; change itself, the preview role, its own policies
or the OIDC provider; delete, disable or re-policy a key, create keys, tag any other key; read or
permanently delete training data, captured payloads or access logs; rewrite the access logs' lifecycle;
pass a role to any service but the one that runs it. Those are an administrator's (the first
``pulumi up``, run as the break-glass role, see the README's Security section).

Pull requests get a separate preview role, trusted only for ``repo:<repo>:pull_request``, that reads
the stack's state (and takes the backend lock) and nothing else.
"""

from __future__ import annotations

import json
import re
from functools import partial
from dataclasses import dataclass
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from components.context import InContext, StackContext

from components.security import iam
from components.naming import (
    BUCKET_ROLES, REPOSITORY, bucket_name, deploy_policy_name, deploy_role_name, log_group_prefix, preview_role_name, stem,
)

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
STACK_TAG = "mlops:stack"
"""Tag every resource of a stack carries (``components.naming.tags``): the key is scoped by it."""
# Services the stack hands roles to: SageMaker jobs and models, the CT state machine and its triggers,
# the drift function.
PASSED_TO_SERVICES = (
    "sagemaker.amazonaws.com",
    "states.amazonaws.com",
    "events.amazonaws.com",
    "scheduler.amazonaws.com",
    "lambda.amazonaws.com",
)
AUTOSCALING_SLR = (
    "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def github_subject(repository: str, environment: str) -> str:
    """The ``sub`` claim of a job that runs in GitHub environment ``environment`` of ``repository``."""
    if not REPOSITORY.match(repository):
        raise ValueError(f"github repository {repository!r} is not <owner>/<repo>")
    return f"repo:{repository}:environment:{environment}"


def _oidc_trust(sid: str, provider_arn: str, subject: str) -> dict[str, Any]:
    return iam.document(
        {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE, f"{GITHUB_OIDC_HOST}:sub": subject}},
        }
    )


def trust_policy(provider_arn: str, repository: str, environment: str) -> dict[str, Any]:
    """Only jobs of ``repository`` running in GitHub environment ``environment`` may assume the role."""
    return _oidc_trust("GitHubEnvironmentOnly", provider_arn, github_subject(repository, environment))


def preview_subject(repository: str) -> str:
    """The ``sub`` claim of a job that runs for a pull request of ``repository`` (no environment)."""
    github_subject(repository, "x")  # validates the repository
    return f"repo:{repository}:pull_request"


def preview_trust_policy(provider_arn: str, repository: str) -> dict[str, Any]:
    """Only pull-request jobs of ``repository`` may assume the read-only preview role."""
    return _oidc_trust("GitHubPullRequestsOnly", provider_arn, preview_subject(repository))


@dataclass(frozen=True)
class DeployScope:
    """Where a stack update reaches: everything a deploy role statement is built from."""

    partition: str
    region: str
    account_id: str
    name_prefix: str
    stack: str
    role_name: str
    """The deploy role itself (denied every IAM change)."""
    oidc_provider_arn: str
    key_arn: str
    """The stack key (created by the administrator's first ``pulumi up``, or brought): named by its ARN."""
    boundary_arn: str
    """The permissions boundary every stack role carries; CI writes role policies only of roles that carry it."""
    environment: str = "prod"
    models: tuple[str, ...] = ()
    passed_roles: tuple[tuple[str, str], ...] = ()
    """(service, role name): the deploy role may pass each role only to its service."""
    subnet_ids: tuple[str, ...] = ()
    preview_role_name: str = ""
    state_bucket: str | None = None
    pulumi_project: str = "mlops-stack"

    @property
    def stem(self) -> str:
        """Every physical name of the stack starts with this."""
        return stem(self.name_prefix, self.stack)

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account_id if account else ''}:{resource}"

    def bucket_arn(self, role: str) -> str:
        return f"arn:{self.partition}:s3:::{bucket_name(self.name_prefix, self.stack, role, self.account_id, self.region)}"


CONCERNS = ("storage", "keys", "identities", "delegation", "serving", "monitoring", "orchestration")


def concerns(state_bucket: bool) -> tuple[str, ...]:
    """The deploy role's policies, one per concern (known before any value is: declared outside apply)."""
    return CONCERNS + (("state",) if state_bucket else ())


# What an administrator does, never CI: create or delete roles, rewrite their trust, move their boundary,
# attach managed policies, or create any other principal or policy (iam:Create* but service-linked roles).
ADMINISTRATIVE_IAM_ACTIONS = (
    "iam:CreateRole", "iam:DeleteRole", "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary", "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:CreatePolicy",
    "iam:CreatePolicyVersion", "iam:DeletePolicy", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion",
    "iam:CreateUser", "iam:CreateGroup", "iam:CreateAccessKey", "iam:CreateLoginProfile", "iam:CreateInstanceProfile",
    "iam:AddRoleToInstanceProfile", "iam:PutUserPolicy", "iam:AttachUserPolicy", "iam:PutGroupPolicy",
    "iam:AttachGroupPolicy", "iam:AddUserToGroup", "iam:CreateOpenIDConnectProvider", "iam:CreateSAMLProvider",
)
KEY_ADMINISTRATION = ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey", "kms:DisableKeyRotation",
                      "kms:CreateKey", "kms:ReplicateKey", "kms:ImportKeyMaterial", "kms:DeleteImportedKeyMaterial")


def deploy_statements(s: DeployScope) -> dict[str, list[iam.Statement]]:
    """The deploy role's permissions, by concern (one managed policy each). Pure: tested without mocks."""
    n = s.stem
    arn = s.arn
    buckets = {role: s.bucket_arn(role) for role in BUCKET_ROLES}
    models_bucket = buckets["models"]
    # The only objects a `pulumi up` writes: code packages, each model's bootstrap artifact and data contract.
    written = [f"{models_bucket}/code/*"] + [
        f"{models_bucket}/{m}/{leaf}/*" for m in s.models for leaf in ("bootstrap", "contract")
    ]
    storage: list[iam.Statement] = [
        {
            "Sid": "StackBuckets",
            "Effect": "Allow",
            # The per-concern settings the provider reads and writes (IAM authorizes their Delete* calls with
            # the Put* action). Not among them: who may read the data (bucket policy, ACLs, ownership, public
            # access block) and how long it lives (lifecycle) -- an administrator's, see "BucketAccessIsAdministrative".
            "Action": [
                "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions", "s3:GetBucket*",
                "s3:PutBucketVersioning", "s3:PutBucketLogging", "s3:PutBucketNotification", "s3:PutBucketTagging",
                "s3:PutBucketObjectLockConfiguration", "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
                "s3:GetLifecycleConfiguration", "s3:GetAccelerateConfiguration", "s3:GetReplicationConfiguration",
            ],
            "Resource": sorted(buckets.values()),
        },
        {
            "Sid": "BucketAccessIsAdministrative",
            "Effect": "Deny",
            # A bucket policy or ACL CI could write would let another principal read the data CI may not;
            # a lifecycle rule could expire every version. The administrator's `pulumi up` applies them
            # (the first one, and any change to them: `mlops diff` on the pull request flags it).
            "Action": [
                "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketAcl", "s3:PutBucketOwnershipControls",
                "s3:PutBucketPublicAccessBlock", "s3:PutReplicationConfiguration", "s3:PutInventoryConfiguration",
                "s3:PutLifecycleConfiguration",
            ],
            "Resource": sorted(buckets.values()),
        },
        {
            "Sid": "WhatPulumiUploads",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectTagging", "s3:PutObject", "s3:PutObjectTagging", "s3:DeleteObject"],
            "Resource": written,
        },
        {
            "Sid": "NoReadingOrDestroyingData",
            "Effect": "Deny",
            # Training data, captured payloads and access logs are the customers'; versions are the history.
            "Action": ["s3:GetObject*", "s3:BypassGovernanceRetention", "s3:RestoreObject", "s3:PutObjectRetention",
                       "s3:PutObjectLegalHold", "s3:DeleteObject*"],
            "Resource": [f"{buckets[r]}/*" for r in ("data", "capture", "logs")],
        },
        {
            "Sid": "NoDestroyingArtifactVersions",
            "Effect": "Deny",
            "Action": ["s3:BypassGovernanceRetention", "s3:PutObjectRetention", "s3:PutObjectLegalHold", "s3:DeleteObjectVersion"],
            "Resource": f"{models_bucket}/*",
        },
    ]
    via = lambda service: f"{service}.{s.region}.amazonaws.com"  # noqa: E731
    keys: list[iam.Statement] = [
        {
            "Sid": "StackKey",
            "Effect": "Allow",
            "Action": [
                "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation",
                "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription",
                "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias",
            ],
            "Resource": s.key_arn,
        },
        {
            "Sid": "StackKeyForUploadsThroughS3",
            "Effect": "Allow",
            # Bucket keys are on: S3 asks KMS in the bucket's encryption context, so only the models bucket.
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
            "Resource": s.key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": via("s3"), "kms:EncryptionContext:aws:s3:arn": models_bucket}},
        },
        {
            "Sid": "StackKeyForFunctionEnvironments",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": s.key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": via("lambda")}},
        },
        {
            "Sid": "StackKeyGrantsForAwsResources",
            "Effect": "Allow",
            # Creating an endpoint or a function with the stack key makes the service create grants with the caller's rights.
            "Action": "kms:CreateGrant",
            "Resource": s.key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        {
            "Sid": "StackKeyAlias",
            "Effect": "Allow",
            "Action": ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
            "Resource": arn("kms", f"alias/{n}"),
        },
        {"Sid": "ListAliases", "Effect": "Allow", "Action": "kms:ListAliases", "Resource": "*"},  # no resource type
        {
            "Sid": "KeyAdministrationIsNotCi",
            "Effect": "Deny",
            "Action": list(KEY_ADMINISTRATION),
            "Resource": "*",
        },
        {
            "Sid": "NoTaggingOtherKeys",
            "Effect": "Deny",
            "Action": ["kms:TagResource", "kms:UntagResource"],
            "NotResource": s.key_arn,
        },
    ]
    role_arn = lambda name: arn("iam", f"role/{name}", region=False)  # noqa: E731
    by_service: dict[str, list[str]] = {}
    for service, name in s.passed_roles:
        by_service.setdefault(service, []).append(role_arn(name))
    identities: list[iam.Statement] = [
        {
            "Sid": "ReadStackRoles",
            "Effect": "Allow",
            "Action": [
                "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
                "iam:ListRoleTags", "iam:ListInstanceProfilesForRole", "iam:TagRole", "iam:UntagRole",
                "iam:UpdateRoleDescription",
            ],
            "Resource": arn("iam", f"role/{n}-*", region=False),
        },
        {
            "Sid": "WritePoliciesOfBoundedStackRolesOnly",
            "Effect": "Allow",
            "Action": ["iam:PutRolePolicy", "iam:DeleteRolePolicy"],
            "Resource": arn("iam", f"role/{n}-*", region=False),
            "Condition": {"StringEquals": {"iam:PermissionsBoundary": s.boundary_arn}},
        },
        {
            "Sid": "ReadTheBoundary",
            "Effect": "Allow",
            "Action": ["iam:GetPolicy", "iam:GetPolicyVersion", "iam:ListPolicyVersions", "iam:ListPolicyTags"],
            "Resource": s.boundary_arn,
        },
        {
            "Sid": "EndpointAutoscalingServiceLinkedRole",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": arn("iam", f"role/{AUTOSCALING_SLR}", region=False),
            "Condition": {"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
        },
        {
            "Sid": "RolesTrustAndBoundariesAreAdministrative",
            "Effect": "Deny",
            "Action": list(ADMINISTRATIVE_IAM_ACTIONS),
            "Resource": "*",
        },
        {
            "Sid": "NeverChangeTheDeployIdentity",
            "Effect": "Deny",
            "Action": "iam:*",
            "Resource": [role_arn(s.role_name), *( [role_arn(s.preview_role_name)] if s.preview_role_name else []),
                         s.oidc_provider_arn, arn("iam", f"policy/{n}-deploy-*", region=False)],
        },
        {
            "Sid": "NoAssumingRoles",
            "Effect": "Deny",
            "Action": ["sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity", "sts:AssumeRoot"],
            "Resource": "*",
        },
    ]
    # Each role only to the service that runs it: a scheduler-trusted role never reaches Lambda.
    delegation: list[iam.Statement] = [
        *(
            {
                "Sid": f"PassRolesTo{service.split('.')[0].capitalize()}",
                "Effect": "Allow",
                "Action": "iam:PassRole",
                "Resource": sorted(roles),
                "Condition": {"StringEquals": {"iam:PassedToService": service}},
            }
            for service, roles in sorted(by_service.items())
        ),
    ] or [{"Sid": "NoRolesToPass", "Effect": "Deny", "Action": "iam:PassRole", "Resource": "*"}]
    sm = lambda kind: arn("sagemaker", f"{kind}/{n}-*")  # noqa: E731
    serving: list[iam.Statement] = [
        {
            "Sid": "StackSageMakerResources",
            "Effect": "Allow",
            "Action": [
                "sagemaker:CreateModel", "sagemaker:DeleteModel", "sagemaker:DescribeModel",
                "sagemaker:CreateEndpointConfig", "sagemaker:DeleteEndpointConfig", "sagemaker:DescribeEndpointConfig",
                "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DeleteEndpoint", "sagemaker:DescribeEndpoint",
                "sagemaker:CreateModelPackageGroup", "sagemaker:DeleteModelPackageGroup", "sagemaker:DescribeModelPackageGroup",
                "sagemaker:DescribeModelPackage",
                "sagemaker:CreateDataQualityJobDefinition", "sagemaker:DeleteDataQualityJobDefinition",
                "sagemaker:DescribeDataQualityJobDefinition",
                "sagemaker:CreateMonitoringSchedule", "sagemaker:UpdateMonitoringSchedule",
                "sagemaker:DeleteMonitoringSchedule", "sagemaker:DescribeMonitoringSchedule",
                "sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags",
            ],
            "Resource": [
                sm("model"), sm("endpoint-config"), sm("endpoint"), sm("model-package-group"),
                arn("sagemaker", f"model-package/{n}-*/*"), sm("data-quality-job-definition"), sm("monitoring-schedule"),
            ],
        },
        *iam.sagemaker_isolation_denies(list(s.subnet_ids)),
        {
            "Sid": "SageMakerEndpointAutoscaling",
            "Effect": "Allow",
            "Action": [
                "application-autoscaling:RegisterScalableTarget", "application-autoscaling:DeregisterScalableTarget",
                "application-autoscaling:PutScalingPolicy", "application-autoscaling:DeleteScalingPolicy",
            ],
            # Scalable targets have random ids; the service namespace condition keeps it to SageMaker variants.
            "Resource": arn("application-autoscaling", "scalable-target/*"),
            "Condition": {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}},
        },
        {
            "Sid": "DescribeAutoscaling",
            "Effect": "Allow",
            "Action": [
                "application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies",
            ],
            "Resource": "*",  # Describe* have no resource type
        },
    ]
    logs = lambda group: arn("logs", f"log-group:{group}")  # noqa: E731
    monitoring: list[iam.Statement] = [
        {
            "Sid": "StackAlarms",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
                "cloudwatch:ListTagsForResource", "cloudwatch:TagResource", "cloudwatch:UntagResource",
            ],
            "Resource": arn("cloudwatch", f"alarm:{n}-*"),
        },
        {
            "Sid": "StackDashboard",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutDashboard", "cloudwatch:GetDashboard", "cloudwatch:DeleteDashboards"],
            "Resource": [arn("cloudwatch", f"dashboard/{n}", region=False), arn("cloudwatch", f"dashboard/{n}-*", region=False)],
        },
        {
            "Sid": "StackLogGroups",
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
                "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:TagResource", "logs:UntagResource",
                "logs:ListTagsForResource", "logs:TagLogGroup", "logs:ListTagsLogGroup",
            ],
            "Resource": [logs(f"{log_group_prefix(s.name_prefix, s.stack)}*"), *(logs(g) for g in iam.sagemaker_log_groups(n))],
        },
        {
            "Sid": "LogDeliveryForStateMachines",
            "Effect": "Allow",
            # Step Functions' vended-logs API has no resource types (AWS documents Resource "*" for it).
            "Action": [
                "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            "Resource": "*",
        },
        {
            "Sid": "StackTopics",
            "Effect": "Allow",
            "Action": [
                "sns:CreateTopic", "sns:DeleteTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes",
                "sns:ListTagsForResource", "sns:TagResource", "sns:UntagResource", "sns:Subscribe",
                "sns:ListSubscriptionsByTopic",
            ],
            "Resource": arn("sns", f"{n}-*"),
        },
        {
            "Sid": "TopicSubscriptions",
            "Effect": "Allow",
            # No SetSubscriptionAttributes: the provider calls it only for attributes the stack never sets.
            "Action": ["sns:GetSubscriptionAttributes", "sns:Unsubscribe"],
            "Resource": "*",  # subscription ARNs are not a resource type in IAM
        },
    ]
    orchestration: list[iam.Statement] = [
        {
            "Sid": "StackStateMachines",
            "Effect": "Allow",
            "Action": [
                "states:CreateStateMachine", "states:UpdateStateMachine", "states:DeleteStateMachine",
                "states:DescribeStateMachine", "states:PublishStateMachineVersion", "states:ListStateMachineVersions",
                "states:DeleteStateMachineVersion", "states:CreateStateMachineAlias", "states:UpdateStateMachineAlias",
                "states:DeleteStateMachineAlias", "states:DescribeStateMachineAlias", "states:ListStateMachineAliases",
                "states:TagResource", "states:UntagResource", "states:ListTagsForResource",
            ],
            # State machines, their published versions (<name>:<n>) and aliases (<name>:<alias>).
            "Resource": arn("states", f"stateMachine:{n}-*"),
        },
        {
            "Sid": "StackEventRules",
            "Effect": "Allow",
            "Action": [
                "events:PutRule", "events:DeleteRule", "events:DescribeRule", "events:EnableRule", "events:DisableRule",
                "events:PutTargets", "events:RemoveTargets", "events:ListTargetsByRule", "events:TagResource",
                "events:UntagResource", "events:ListTagsForResource",
            ],
            "Resource": arn("events", f"rule/{n}-*"),
        },
        {
            # The CT flow's trigger dead-letter queue (issue 12) and its queue policy (SetQueueAttributes).
            "Sid": "StackTriggerQueues",
            "Effect": "Allow",
            "Action": [
                "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes",
                "sqs:TagQueue", "sqs:UntagQueue", "sqs:ListQueueTags",
            ],
            "Resource": arn("sqs", f"{n}-*"),
        },
        {
            "Sid": "StackSchedules",
            "Effect": "Allow",
            "Action": ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule"],
            "Resource": arn("scheduler", f"schedule/default/{n}-*"),
        },
        {
            "Sid": "StackFunctions",
            "Effect": "Allow",
            # Code comes from the stack's models bucket (StackBucketObjects) and its environment is
            # encrypted with the stack key (StackKeyGrantsForAwsResources).
            "Action": [
                "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction", "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:ListVersionsByFunction",
                "lambda:GetFunctionCodeSigningConfig", "lambda:TagResource", "lambda:UntagResource", "lambda:ListTags",
                "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency", "lambda:GetFunctionConcurrency",
            ],
            "Resource": arn("lambda", f"function:{n}-*"),
        },
        {
            "Sid": "StackQueues",
            "Effect": "Allow",
            # The drift functions' dead-letter queues.
            "Action": [
                "sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes",
                "sqs:TagQueue", "sqs:UntagQueue", "sqs:ListQueueTags",
            ],
            "Resource": arn("sqs", f"{n}-*"),
        },
    ]
    if s.subnet_ids:
        # The network itself is an administrator's (created and changed by their `pulumi up`, like roles): CI only
        # reads it, which Lambda also requires of whoever creates or updates a function with a VpcConfig.
        orchestration.append(
            {
                "Sid": "ReadNetwork",
                "Effect": "Allow",
                "Action": [
                    "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSecurityGroupRules", "ec2:DescribeRouteTables", "ec2:DescribeVpcEndpoints",
                    "ec2:DescribeFlowLogs", "ec2:DescribePrefixLists", "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeAvailabilityZones",
                ],
                "Resource": "*",  # EC2 Describe* actions have no resource types
            }
        )
        # A function CI deploys into a VPC goes into the stack's subnets only (not into another subnet of the account).
        orchestration.append(
            {
                "Sid": "NoFunctionsOutsideStackSubnets",
                "Effect": "Deny",
                "Action": ["lambda:CreateFunction", "lambda:UpdateFunctionConfiguration"],
                "Resource": "*",
                "Condition": {"ForAnyValue:StringNotEquals": {"lambda:SubnetIds": sorted(s.subnet_ids)}},
            }
        )
    out: dict[str, list[iam.Statement]] = {
        "storage": storage,
        "keys": keys,
        "identities": identities,
        "delegation": delegation,
        "serving": serving,
        "monitoring": monitoring,
        "orchestration": orchestration,
    }
    if s.state_bucket:
        state = f"arn:{s.partition}:s3:::{s.state_bucket}"
        project = s.pulumi_project
        out["state"] = [
            {
                "Sid": "ListStackState",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": state,
                "Condition": {"StringLike": {"s3:prefix": [".pulumi/*"]}},
            },
            {
                "Sid": "ReadWriteStackState",
                "Effect": "Allow",
                # The self-managed backend's layout: this stack's checkpoint, history, backups and locks.
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": [
                    f"{state}/.pulumi/stacks/{project}/{s.stack}.json*",
                    f"{state}/.pulumi/history/{project}/{s.stack}/*",
                    f"{state}/.pulumi/backups/{project}/{s.stack}/*",
                    f"{state}/.pulumi/locks/*/{project}/{s.stack}/*",
                ],
            },
            {
                "Sid": "ReadBackendMetadata",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"{state}/.pulumi/meta.yaml",
            },
        ]
    return out


def preview_statements(s: DeployScope) -> list[iam.Statement]:
    """A preview reads this stack's state and takes the backend's lock; it writes nothing else anywhere."""
    assert s.state_bucket, "previews with Pulumi Cloud need no AWS permissions"
    state = f"arn:{s.partition}:s3:::{s.state_bucket}"
    project = s.pulumi_project
    return [
        {
            "Sid": "ListStackState",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": state,
            "Condition": {"StringLike": {"s3:prefix": [".pulumi/*"]}},
        },
        {
            "Sid": "ReadStackState",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [f"{state}/.pulumi/stacks/{project}/{s.stack}.json*", f"{state}/.pulumi/meta.yaml"],
        },
        {
            "Sid": "TakeTheBackendLock",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": f"{state}/.pulumi/locks/*/{project}/{s.stack}/*",
        },
    ]


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployIdentityArgs(InContext):
    github_repository: str
    """``<owner>/<repo>`` whose workflows deploy the stack."""
    environment: str
    """The GitHub environment the deploy jobs run in (the role trusts only that environment)."""
    context: StackContext
    """The stack (names, tags, and which environment kind it is)."""
    oidc_provider_arn: str | None = None
    """Use this existing GitHub OIDC provider (one per account and URL) instead of creating one."""
    key_arn: pulumi.Input[str] = ""
    """The stack key (``Platform.kms_key_arn``): the deploy role reaches it by this ARN only."""
    boundary_arn: pulumi.Input[str] = ""
    """The stack's permissions boundary (``Platform.boundary_arn``)."""
    models: tuple[str, ...] = ()
    """The stack's models (the deploy role manages their resources by name). Default: none."""
    passed_roles: tuple[tuple[str, str], ...] = ()
    """(service, role name) of each role the stack hands to a service."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """The stack's subnets (strings, or a created network's Output): SageMaker creates outside them are denied."""
    state_bucket: str | None = None
    """The Pulumi state bucket the deploy role may use. Default: none (Pulumi Cloud)."""
    pulumi_project: str = "mlops-stack"
    """The Pulumi project (its state objects' prefix). Default ``mlops-stack``."""
    max_session_seconds: int = 7200
    """An update that deploys an endpoint with canary traffic shifting can take over an hour. Default 7200."""

    @property
    def environment_kind(self) -> str:
        """dev, staging or prod (the stack's ``mlops:environment``)."""
        return self.context.environment

    @property
    def tags(self) -> dict[str, str]:
        return self.context.stack_tags


class DeployIdentity(pulumi.ComponentResource):
    """GitHub OIDC provider (created, or brought by ARN) and the environment's deploy role."""

    oidc_provider_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]

    def __init__(self, name: str, args: DeployIdentityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:delivery:DeployIdentity", name, None, opts)
        github_subject(args.github_repository, args.environment)  # refuse a bad repository before registering anything
        if args.oidc_provider_arn is not None and not re.match(
            rf"^arn:aws[a-z-]*:iam::\d{{12}}:oidc-provider/{re.escape(GITHUB_OIDC_HOST)}$", args.oidc_provider_arn
        ):
            raise ValueError(
                f"DeployIdentity {name!r}: oidc_provider_arn {args.oidc_provider_arn!r} is not the ARN of a "
                f"{GITHUB_OIDC_HOST} provider (arn:aws:iam::<account>:oidc-provider/{GITHUB_OIDC_HOST})"
            )
        child = pulumi.ResourceOptions(parent=self)

        if args.oidc_provider_arn is None:
            provider = aws.iam.OpenIdConnectProvider(
                f"{name}-github-oidc",
                url=GITHUB_OIDC_URL,
                client_id_lists=[STS_AUDIENCE],
                # No thumbprint: IAM validates GitHub's tokens against its own trusted CAs.
                tags=args.tags,
                opts=child,
            )
            self.oidc_provider_arn = provider.arn
        else:
            self.oidc_provider_arn = pulumi.Output.from_input(args.oidc_provider_arn)

        role_name = deploy_role_name(args.name_prefix, args.stack)
        preview_name = preview_role_name(args.name_prefix, args.stack)
        role = aws.iam.Role(
            f"{name}-role",
            name=role_name,
            description=f"GitHub Actions deploys of stack {args.stack} ({args.github_repository}, environment {args.environment})",
            assume_role_policy=self.oidc_provider_arn.apply(
                lambda arn: json.dumps(trust_policy(arn, args.github_repository, args.environment))
            ),
            max_session_duration=args.max_session_seconds,
            tags=args.tags,
            opts=child,
        )
        preview = aws.iam.Role(
            f"{name}-preview-role",
            name=preview_name,
            description=f"Pull-request previews of stack {args.stack} ({args.github_repository}): read-only",
            assume_role_policy=self.oidc_provider_arn.apply(
                lambda arn: json.dumps(preview_trust_policy(arn, args.github_repository))
            ),
            max_session_duration=3600,
            tags=args.tags,
            opts=child,
        )
        scope = pulumi.Output.all(args.partition, args.account_id, self.oidc_provider_arn, args.key_arn, args.boundary_arn, args.subnet_ids).apply(
            lambda a: DeployScope(
                partition=a[0],
                region=args.region,
                account_id=a[1],
                name_prefix=args.name_prefix,
                stack=args.stack,
                role_name=role_name,
                oidc_provider_arn=a[2],
                key_arn=a[3],
                boundary_arn=a[4],
                environment=args.environment_kind,
                models=args.models,
                passed_roles=args.passed_roles,
                subnet_ids=tuple(a[5] or ()),
                preview_role_name=preview_name,
                state_bucket=args.state_bucket,
                pulumi_project=args.pulumi_project,
            )
        )
        if args.state_bucket is not None:
            aws.iam.RolePolicy(
                f"{name}-preview-state",
                role=preview.id,
                policy=scope.apply(lambda sc: json.dumps(iam.document(*preview_statements(sc)))),
                opts=child,
            )
        # Customer-managed policies, one per concern: a role's inline policies share one 10,240-character
        # budget, which a long name prefix and stack name would exceed; each managed policy has 6,144.
        for concern in concerns(args.state_bucket is not None):
            policy = aws.iam.Policy(
                f"{name}-{concern}",
                name=deploy_policy_name(args.name_prefix, args.stack, concern),
                description=f"Deploys of stack {args.stack}: {concern}",
                policy=scope.apply(partial(_concern_document, concern)),
                tags=args.tags,
                opts=child,
            )
            aws.iam.RolePolicyAttachment(f"{name}-{concern}-attachment", role=role.name, policy_arn=policy.arn, opts=child)
        self.role_arn = role.arn
        self.role_name = role.name
        self.preview_role_arn = preview.arn
        self.register_outputs(
            {"oidc_provider_arn": self.oidc_provider_arn, "role_arn": self.role_arn, "role_name": self.role_name,
             "preview_role_arn": self.preview_role_arn}
        )



def _concern_document(concern: str, scope: Any) -> str:
    """One of the deploy role's managed policies (``concern``) as JSON."""
    return json.dumps(iam.document(*deploy_statements(scope)[concern]))
