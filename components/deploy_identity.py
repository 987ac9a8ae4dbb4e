"""The identity GitHub Actions deploys a stack with: the GitHub OIDC provider and one deploy role per environment.

No long-lived keys: a workflow job that runs in the GitHub environment ``<env>`` of repository
``<owner>/<repo>`` gets an OIDC token whose ``sub`` is ``repo:<owner>/<repo>:environment:<env>``;
the role trusts exactly that subject and the ``sts.amazonaws.com`` audience, nothing broader (no other
repository, branch, fork or pull request).

The role can do what a ``pulumi up`` of this stack does, to this stack's resources only: every
physical name starts with ``<prefix>-<stack>`` (see ``components.naming``), so the policy grants by that
name prefix; the stack key is reached through its ``mlops:stack`` tag (its ARN is random); the state
bucket (a self-managed backend) only under ``.pulumi/``. Where ``Resource`` is ``*`` the action has no
resource type in IAM, or a condition scopes it; each such statement says why.

The role cannot change itself or the OIDC provider (explicit deny): a change to this component is
applied by an administrator, so a workflow cannot widen its own permissions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import iam
from components.naming import resource_name

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
STACK_TAG = "mlops:stack"
"""Tag every resource of a stack carries (``components.naming.tags``): the key is scoped by it."""
REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
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


def trust_policy(provider_arn: str, repository: str, environment: str) -> dict[str, Any]:
    """Only jobs of ``repository`` running in GitHub environment ``environment`` may assume the role."""
    return iam.document(
        {
            "Sid": "GitHubEnvironmentOnly",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                    f"{GITHUB_OIDC_HOST}:sub": github_subject(repository, environment),
                }
            },
        }
    )


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
    existing_key_arn: str | None = None
    """The stack's key when it is brought (``keys.key_arn``), else the key is found by its tag."""
    state_bucket: str | None = None
    pulumi_project: str = "mlops-stack"

    @property
    def stem(self) -> str:
        """Every physical name of the stack starts with this."""
        return resource_name(self.name_prefix, self.stack, limit=1000)

    def arn(self, service: str, resource: str, region: bool = True, account: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account_id if account else ''}:{resource}"


CONCERNS = ("storage", "keys", "identities", "serving", "monitoring", "orchestration")


def concerns(state_bucket: bool) -> tuple[str, ...]:
    """The deploy role's policies, one per concern (known before any value is: declared outside apply)."""
    return CONCERNS + (("state",) if state_bucket else ())


def deploy_statements(s: DeployScope) -> dict[str, list[iam.Statement]]:
    """The deploy role's permissions, by concern (one managed policy each). Pure: tested without mocks."""
    n = s.stem
    arn = s.arn
    buckets = f"arn:{s.partition}:s3:::{n}-*"
    if s.existing_key_arn:
        key_resource: dict[str, Any] = {"Resource": s.existing_key_arn}
    else:
        # The key's ARN is random and only known after creation: its stack tag scopes it instead.
        key_resource = {
            "Resource": arn("kms", "key/*"),
            "Condition": {"StringEquals": {f"aws:ResourceTag/{STACK_TAG}": s.stack}},
        }

    storage: list[iam.Statement] = [
        {
            "Sid": "StackBuckets",
            "Effect": "Allow",
            # Get/PutBucket* are the per-concern bucket settings (policy, versioning, logging, ownership,
            # public access block, tagging, notifications, object lock) the provider reads, writes and
            # deletes (IAM authorizes their Delete* calls with the Put* action).
            "Action": [
                "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions",
                "s3:GetBucket*", "s3:PutBucket*", "s3:DeleteBucketPolicy",
                "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
                "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",
                "s3:GetAccelerateConfiguration", "s3:GetReplicationConfiguration",
            ],
            "Resource": buckets,
        },
        {
            "Sid": "StackBucketObjects",
            "Effect": "Allow",
            # Code packages and bootstrap artifacts; DeleteObjectVersion empties a force_destroy (dev) bucket.
            "Action": [
                "s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:PutObject", "s3:PutObjectTagging",
                "s3:DeleteObject", "s3:DeleteObjectVersion",
            ],
            "Resource": f"{buckets}/*",
        },
    ]
    keys: list[iam.Statement] = [
        {
            "Sid": "StackKey",
            "Effect": "Allow",
            "Action": [
                "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus",
                "kms:EnableKeyRotation", "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource",
                "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion", "kms:CreateAlias", "kms:UpdateAlias",
                "kms:DeleteAlias", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey",
            ],
            **key_resource,
        },
        {
            "Sid": "StackKeyGrantsForAwsResources",
            "Effect": "Allow",
            # Creating an endpoint with the stack key makes SageMaker create grants with the caller's rights.
            "Action": "kms:CreateGrant",
            **{k: v for k, v in key_resource.items() if k != "Condition"},
            "Condition": {
                **key_resource.get("Condition", {}),
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        },
        {
            "Sid": "StackKeyAlias",
            "Effect": "Allow",
            "Action": ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
            "Resource": arn("kms", f"alias/{n}"),
        },
        {
            "Sid": "ListAliases",
            "Effect": "Allow",
            "Action": "kms:ListAliases",
            "Resource": "*",  # ListAliases has no resource type
        },
    ]
    if not s.existing_key_arn:
        created_with_stack_tag = {"StringEquals": {f"aws:RequestTag/{STACK_TAG}": s.stack}}
        keys += [
            {
                "Sid": "CreateStackKey",
                "Effect": "Allow",
                "Action": "kms:CreateKey",
                "Resource": "*",  # CreateKey has no resource type: only keys created with the stack's tag
                "Condition": created_with_stack_tag,
            },
            {
                "Sid": "TagNewStackKey",
                "Effect": "Allow",
                # CreateKey with tags also needs TagResource, before the new key carries the tag.
                "Action": "kms:TagResource",
                "Resource": arn("kms", "key/*"),
                "Condition": created_with_stack_tag,
            },
        ]
    identities: list[iam.Statement] = [
        {
            "Sid": "StackRoles",
            "Effect": "Allow",
            "Action": [
                "iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole", "iam:ListRoleTags",
                "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole",
            ],
            "Resource": arn("iam", f"role/{n}-*", region=False),
        },
        {
            "Sid": "PassStackRolesToTheirServices",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": arn("iam", f"role/{n}-*", region=False),
            "Condition": {"StringEquals": {"iam:PassedToService": list(PASSED_TO_SERVICES)}},
        },
        {
            "Sid": "EndpointAutoscalingServiceLinkedRole",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": arn("iam", f"role/{AUTOSCALING_SLR}", region=False),
            "Condition": {"StringEquals": {"iam:AWSServiceName": "sagemaker.application-autoscaling.amazonaws.com"}},
        },
        {
            "Sid": "NeverChangeTheDeployIdentity",
            "Effect": "Deny",
            "Action": "iam:*",
            "Resource": [arn("iam", f"role/{s.role_name}", region=False), s.oidc_provider_arn],
        },
    ]
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
            "Resource": arn("logs", f"log-group:/mlops/{n}/*"),
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
            "Action": ["sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes", "sns:Unsubscribe"],
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
            ],
            "Resource": arn("lambda", f"function:{n}-*"),
        },
    ]
    out: dict[str, list[iam.Statement]] = {
        "storage": storage,
        "keys": keys,
        "identities": identities,
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


# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployIdentityArgs:
    github_repository: str
    """``<owner>/<repo>`` whose workflows deploy the stack."""
    environment: str
    """The GitHub environment the deploy jobs run in (the role trusts only that environment)."""
    name_prefix: str
    stack: str
    region: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    oidc_provider_arn: str | None = None
    """Use this existing GitHub OIDC provider (one per account and URL) instead of creating one."""
    existing_key_arn: str | None = None
    state_bucket: str | None = None
    pulumi_project: str = "mlops-stack"
    max_session_seconds: int = 7200
    """An update that deploys an endpoint with canary traffic shifting can take over an hour."""
    tags: dict[str, str] = field(default_factory=dict)


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

        role_name = resource_name(args.name_prefix, args.stack, "deploy", limit=64)
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
        scope = pulumi.Output.all(args.partition, args.account_id, self.oidc_provider_arn).apply(
            lambda a: DeployScope(
                partition=a[0],
                region=args.region,
                account_id=a[1],
                name_prefix=args.name_prefix,
                stack=args.stack,
                role_name=role_name,
                oidc_provider_arn=a[2],
                existing_key_arn=args.existing_key_arn,
                state_bucket=args.state_bucket,
                pulumi_project=args.pulumi_project,
            )
        )
        # Customer-managed policies, one per concern: a role's inline policies share one 10,240-character
        # budget, which a long name prefix and stack name would exceed; each managed policy has 6,144.
        for concern in concerns(args.state_bucket is not None):
            policy = aws.iam.Policy(
                f"{name}-{concern}",
                name=resource_name(args.name_prefix, args.stack, "deploy", concern, limit=128),
                description=f"Deploys of stack {args.stack}: {concern}",
                policy=scope.apply(lambda sc, c=concern: json.dumps(iam.document(*deploy_statements(sc)[c]))),
                tags=args.tags,
                opts=child,
            )
            aws.iam.RolePolicyAttachment(f"{name}-{concern}-attachment", role=role.name, policy_arn=policy.arn, opts=child)
        self.role_arn = role.arn
        self.role_name = role.name
        self.register_outputs(
            {"oidc_provider_arn": self.oidc_provider_arn, "role_arn": self.role_arn, "role_name": self.role_name}
        )

