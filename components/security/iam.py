"""Pure builders of IAM and resource policy documents (tested without mocks)."""

from __future__ import annotations

from typing import Any

Statement = dict[str, Any]


def document(*statements: Statement) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def assume_role_policy(service: str, source_account: str | None = None) -> dict[str, Any]:
    """Trust policy for an AWS service; ``source_account`` guards against the confused deputy."""
    stmt: Statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if source_account:
        stmt["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return document(stmt)


def deny_insecure_transport(bucket_arn: str) -> Statement:
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def allow_access_log_delivery(bucket_arn: str, account_id: str, source_bucket_arns: list[str] | None = None) -> Statement:
    """S3 server access logging writes with the logging service principal (ACLs are off: BucketOwnerEnforced)."""
    cond: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account_id}}
    if source_bucket_arns:
        cond["ArnLike"] = {"aws:SourceArn": source_bucket_arns}
    return {
        "Sid": "AllowS3AccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn}/*",
        "Condition": cond,
    }


def _prefix_arn(bucket_arn: str, prefix: str) -> str:
    return f"{bucket_arn}/{prefix}*"


def bucket_read_statements(bucket_arn: str, prefix: str = "", kms_key_arn: str | None = None) -> list[Statement]:
    """Read objects (all versions) under ``prefix`` and list only that prefix."""
    list_stmt: Statement = {"Effect": "Allow", "Action": ["s3:ListBucket", "s3:ListBucketVersions"], "Resource": bucket_arn}
    if prefix:
        list_stmt["Condition"] = {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
    stmts = [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging"], "Resource": _prefix_arn(bucket_arn, prefix)},
        list_stmt,
    ]
    if kms_key_arn:
        stmts.append({"Effect": "Allow", "Action": ["kms:Decrypt", "kms:DescribeKey"], "Resource": kms_key_arn})
    return stmts


def bucket_write_statements(bucket_arn: str, prefix: str = "", kms_key_arn: str | None = None) -> list[Statement]:
    """Write objects under ``prefix``; multipart uploads need kms:Decrypt as well as GenerateDataKey."""
    stmts: list[Statement] = [
        {
            "Effect": "Allow",
            "Action": ["s3:PutObject", "s3:PutObjectTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            "Resource": _prefix_arn(bucket_arn, prefix),
        }
    ]
    if kms_key_arn:
        stmts.append({"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": kms_key_arn})
    return stmts


def sagemaker_log_groups(stem: str) -> tuple[str, ...]:
    """SageMaker's log groups the stack creates (with the stack key): its endpoints', and the account's job groups."""
    return (f"/aws/sagemaker/Endpoints/{stem}-*", "/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs")


KEY_GUARDED_ACTIONS = ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey")
"""What only the break-glass principal may do to the stack key (everyone else, CI included, is denied)."""


def key_policy(
    account_id: str,
    partition: str,
    region: str,
    log_group_prefix: str,
    *,
    topic_arn: str,
    stem: str,
    break_glass_arn: str,
) -> dict[str, Any]:
    """The stack key's policy: the account administers it through IAM, except deleting, disabling and
    re-policying it, which only ``break_glass_arn`` may do; named services may use it, each bound to
    this account and to what it encrypts (the stack's log groups, the stack's topic).
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    return document(
        {"Sid": "AccountAdministersKeyThroughIam", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
        {
            "Sid": "OnlyBreakGlassDeletesDisablesOrRepoliciesTheKey",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": list(KEY_GUARDED_ACTIONS),
            "Resource": "*",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": break_glass_arn}},
        },
        {
            "Sid": "CloudWatchLogsEncryptStackLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": [
                        f"arn:{partition}:logs:{region}:{account_id}:log-group:{g}"
                        for g in (f"{log_group_prefix}*", *sagemaker_log_groups(stem))
                    ]
                }
            },
        },
        *(
            {
                # Alarms and rules publish to the encrypted topic; SNS asks for a data key in the topic's context.
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id, "kms:EncryptionContext:aws:sns:topicArn": topic_arn},
                    "ArnLike": {"aws:SourceArn": source},
                },
            }
            for sid, service, source in (
                ("StackAlarmsPublishToEncryptedTopic", "cloudwatch.amazonaws.com",
                 f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{stem}-*"),
                ("StackRulesPublishToEncryptedTopic", "events.amazonaws.com",
                 f"arn:{partition}:events:{region}:{account_id}:rule/{stem}-*"),
            )
        ),
    )


def topic_policy(topic_arn: str, account_id: str, partition: str = "aws", region: str = "us-east-1", stem: str | None = None) -> dict[str, Any]:
    """Only the stack's own alarms and EventBridge rules (``stem``) may publish to the stack topic."""
    sources = (
        ("StackAlarmsPublish", "cloudwatch.amazonaws.com", f"arn:{partition}:cloudwatch:{region}:{account_id}:alarm:{stem}-*"),
        ("StackRulesPublish", "events.amazonaws.com", f"arn:{partition}:events:{region}:{account_id}:rule/{stem}-*"),
    )
    return document(
        *(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}, **({"ArnLike": {"aws:SourceArn": source}} if stem else {})},
            }
            for sid, service, source in sources
        ),
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )


def deny_foreign_encryption(bucket_arn: str, kms_key_arn: str) -> list[Statement]:
    """A PUT that names an encryption other than SSE-KMS with the stack key is refused (no header: the
    bucket's default, the stack key, applies)."""
    objects = f"{bucket_arn}/*"
    return [
        {
            "Sid": "DenyUploadsNotEncryptedWithKms",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}},
        },
        {
            "Sid": "DenyUploadsWithAForeignKey",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": objects,
            "Condition": {"StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": kms_key_arn}},
        },
    ]


def restrict_writers(bucket_arn: str, writers: dict[str, list[str]]) -> list[Statement]:
    """Only the named principals may write under each prefix (``prefix`` → principal ARNs): the code the
    jobs execute and the artifacts they load are unpickled, so a writer is someone who runs code."""
    return [
        {
            "Sid": f"OnlyNamedWriters{i}",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/{prefix}*",
            "Condition": {"ArnNotEquals": {"aws:PrincipalArn": sorted(principals)}},
        }
        for i, (prefix, principals) in enumerate(sorted(writers.items()))
    ]


IAM_WRITE_ACTIONS = (
    "iam:Add*", "iam:Attach*", "iam:Change*", "iam:Create*", "iam:Deactivate*", "iam:Delete*", "iam:Detach*",
    "iam:Enable*", "iam:Put*", "iam:Remove*", "iam:Reset*", "iam:Resync*", "iam:Set*", "iam:Tag*", "iam:Untag*",
    "iam:Update*", "iam:Upload*",
)
SAGEMAKER_ISOLATED_CREATES = (
    "sagemaker:CreateTrainingJob", "sagemaker:CreateProcessingJob", "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateModel",
)
"""The SageMaker creates that carry sagemaker:NetworkIsolation and sagemaker:VpcSubnets (Service Authorization Reference)."""
BOUNDARY_SERVICES = (
    "s3:*", "kms:*", "sagemaker:*", "logs:*", "cloudwatch:*", "sns:Publish", "states:*", "events:*",
    "lambda:InvokeFunction", "ecr:*", "xray:*", "sqs:SendMessage", "iam:PassRole",
    "ec2:Describe*", "ec2:CreateNetworkInterface", "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface", "ec2:DeleteNetworkInterfacePermission",
    "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
)


def sagemaker_isolation_denies(subnet_ids: list[str]) -> list[Statement]:
    """Deny SageMaker jobs and models that are not network-isolated, and with ``subnet_ids`` those outside them.

    With the stack's subnets, a *processing* job may run without isolation inside them (and only there: the
    statements below deny any other subnet and no VPC at all): the drift job's processing engine reads S3 and
    publishes metrics through the VPC's endpoints, and the stack's VPC has no route to the internet. Training
    jobs and models are isolated always; without a VPC every processing job is too.
    """
    isolated = [a for a in SAGEMAKER_ISOLATED_CREATES if a != "sagemaker:CreateProcessingJob"] if subnet_ids else list(SAGEMAKER_ISOLATED_CREATES)
    stmts: list[Statement] = [
        {
            "Sid": "NoSageMakerWorkloadWithoutNetworkIsolation",
            "Effect": "Deny",
            "Action": isolated,
            "Resource": "*",
            # IfExists: a request that does not ask for isolation is denied too.
            "Condition": {"BoolIfExists": {"sagemaker:NetworkIsolation": "false"}},
        },
    ]
    if subnet_ids:
        stmts += [
            {
                "Sid": "NoSageMakerWorkloadOutsideStackSubnets",
                "Effect": "Deny",
                "Action": list(SAGEMAKER_ISOLATED_CREATES),
                "Resource": "*",
                "Condition": {"ForAnyValue:StringNotEquals": {"sagemaker:VpcSubnets": sorted(subnet_ids)}},
            },
            {
                "Sid": "NoSageMakerWorkloadOutsideTheVpc",
                "Effect": "Deny",
                "Action": list(SAGEMAKER_ISOLATED_CREATES),
                "Resource": "*",
                "Condition": {"Null": {"sagemaker:VpcSubnets": "true"}},
            },
        ]
    return stmts


def permissions_boundary(partition: str, region: str, account_id: str, subnet_ids: list[str] | None = None) -> dict[str, Any]:
    """The ceiling of every role the stack creates (the roles' own policies grant within it).

    A role under it cannot write IAM (so it cannot create, re-trust or un-bound a role, nor change this
    policy), cannot assume roles, and cannot create SageMaker jobs or models without network isolation
    (or, with ``subnet_ids``, outside those subnets). Allow lists the services the stack's roles use.
    """
    stmts: list[Statement] = [
        {"Sid": "StackServicesOnly", "Effect": "Allow", "Action": list(BOUNDARY_SERVICES), "Resource": "*"},
        {"Sid": "NoIamWrites", "Effect": "Deny", "Action": list(IAM_WRITE_ACTIONS), "Resource": "*"},
        {"Sid": "NoAssumingRoles", "Effect": "Deny", "Action": ["sts:AssumeRole*", "sts:AssumeRoot"], "Resource": "*"},
        *sagemaker_isolation_denies(subnet_ids or []),
    ]
    return document(*stmts)


def ecr_repository_arn(image_uri: str, partition: str = "aws") -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>`` → the repository ARN (for scoped pulls)."""
    registry, _, repo_tag = image_uri.partition("/")
    account, _, rest = registry.partition(".dkr.ecr.")
    region = rest.split(".", 1)[0]
    repo = repo_tag.split("@", 1)[0].rsplit(":", 1)[0]
    return f"arn:{partition}:ecr:{region}:{account}:repository/{repo}"


def sagemaker_execution_statements(
    *,
    partition: str,
    region: str,
    account_id: str,
    job_prefix: str,
    metric_namespace: str,
    image_uris: list[str],
    kms_key_arn: str,
) -> list[Statement]:
    """What a model's SageMaker jobs and endpoint need besides their bucket grants.

    Logs only to streams of this model's jobs and endpoints, metrics only in the SageMaker
    namespaces and the model's own, image pulls only from the framework repositories it uses,
    and KMS grants only for AWS resources (volume encryption).
    """
    logs = f"arn:{partition}:logs:{region}:{account_id}:log-group:/aws/sagemaker"
    return [
        {
            "Sid": "WriteOwnJobAndEndpointLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [
                f"{logs}/TrainingJobs:log-stream:{job_prefix}*",
                f"{logs}/ProcessingJobs:log-stream:{job_prefix}*",
                f"{logs}/Endpoints/{job_prefix}*:log-stream:*",
            ],
        },
        {
            "Sid": "SageMakerLogGroups",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
            "Resource": [f"{logs}/TrainingJobs:*", f"{logs}/ProcessingJobs:*", f"{logs}/Endpoints/{job_prefix}*"],
        },
        {
            "Sid": "PublishOwnMetrics",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",  # PutMetricData has no resource type; the namespace condition scopes it
            "Condition": {"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", metric_namespace]}},
        },
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",  # the action has no resource type
        },
        {
            "Sid": "PullFrameworkImages",
            "Effect": "Allow",
            "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            "Resource": sorted({ecr_repository_arn(u, partition) for u in image_uris}),
        },
        {
            "Sid": "UseStackKey",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            "Resource": kms_key_arn,
        },
        {
            "Sid": "GrantKeyToSageMakerVolumes",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": kms_key_arn,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


def vpc_network_interface_statements(
    partition: str, region: str, account_id: str, subnet_ids: list[str], security_group_ids: list[str] | None = None
) -> list[Statement]:
    """What SageMaker needs to place a job or model in the stack's subnets (and nothing in other subnets).

    ``CreateNetworkInterface`` is scoped by its resources (the new interface, the subnets, the groups: the key
    ``ec2:Subnet`` does not apply to it); the calls on existing interfaces by ``ec2:Subnet``."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    subnets = [f"{ec2}:subnet/{s}" for s in subnet_ids]
    groups = [f"{ec2}:security-group/{g}" for g in security_group_ids] if security_group_ids else [f"{ec2}:security-group/*"]
    return [
        {
            "Sid": "DescribeNetwork",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            "Resource": "*",  # EC2 Describe* actions have no resource types
        },
        {
            "Sid": "CreateInterfacesInStackSubnets",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": [f"{ec2}:network-interface/*", *subnets, *groups],
        },
        {
            "Sid": "NetworkInterfacesInStackSubnets",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            "Resource": f"{ec2}:network-interface/*",
            "Condition": {"ArnEquals": {"ec2:Subnet": subnets}},
        },
    ]