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


def key_policy(account_id: str, partition: str, region: str, log_group_prefix: str) -> dict[str, Any]:
    """The stack key's policy: the account administers it through IAM; named services may use it.

    No wildcard principal: every service statement is bound to this account (and, for CloudWatch
    Logs, to the stack's own log groups through the encryption context).
    """
    root = f"arn:{partition}:iam::{account_id}:root"
    return document(
        {"Sid": "AccountAdministersKeyThroughIam", "Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
        {
            "Sid": "CloudWatchLogsEncryptStackLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account_id}:log-group:{log_group_prefix}*"
                }
            },
        },
        {
            "Sid": "EventSourcesPublishToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
    )


def topic_policy(topic_arn: str, account_id: str) -> dict[str, Any]:
    """Let EventBridge rules and CloudWatch alarms of this account publish to the stack topic."""
    return document(
        {
            "Sid": "AccountEventSourcesPublish",
            "Effect": "Allow",
            "Principal": {"Service": ["events.amazonaws.com", "cloudwatch.amazonaws.com"]},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        },
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    )


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


def vpc_network_interface_statements(partition: str, region: str, account_id: str, subnet_ids: list[str]) -> list[Statement]:
    """What SageMaker needs to place a job or model in the stack's subnets (and nothing in other subnets)."""
    subnets = [f"arn:{partition}:ec2:{region}:{account_id}:subnet/{s}" for s in subnet_ids]
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
            "Sid": "NetworkInterfacesInStackSubnets",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            "Resource": "*",  # interfaces do not exist before creation; the subnet condition scopes them
            "Condition": {"ArnEquals": {"ec2:Subnet": subnets}},
        },
    ]
