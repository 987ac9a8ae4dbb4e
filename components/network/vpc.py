"""A private VPC for the stack's SageMaker jobs, models and drift function (``mlops:vpc.create``).

No internet gateway, no NAT: the only ways out of the subnets are the S3 gateway endpoint (limited by its
policy to the stack's buckets and the bucket ECR serves image layers from) and interface endpoints with
private DNS for the AWS APIs the workloads call. Flow logs of all traffic go to a log group encrypted with
the stack key.
"""

from __future__ import annotations

import json
from functools import partial
from dataclasses import dataclass
from typing import Any, Sequence

import pulumi
import pulumi_aws as aws

from components.context import InContext, StackContext

from components.security import iam
from components.naming import resource_name
from components.naming import vpc_flow_log_role_name
from components.security.roles import service_role

INTERFACE_SERVICES = (
    "sagemaker.api",      # CreateProcessingJob/Describe* of the drift function; SageMaker's own calls from jobs
    "sagemaker.runtime",  # InvokeEndpoint from inside the VPC
    "sts",                # credentials of the job and function roles
    "logs",               # CloudWatch Logs of jobs, endpoints and the function
    "monitoring",         # CloudWatch metrics (PutMetricData of the drift job, SageMaker metrics)
    "ecr.api",            # image manifests and auth tokens
    "ecr.dkr",            # docker registry API of the framework images
    "kms",                # the stack key (volumes, SSE-KMS objects)
    "states",             # task tokens / Step Functions API from jobs
    "xray",               # traces of the drift function (Active tracing)
)
"""Interface endpoints, by the ``com.amazonaws.<region>.<service>`` names of the AWS PrivateLink service list."""

S3_ACTIONS = (
    "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
    "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation",
)


def in_vpc(subnet_ids: Any) -> bool:
    """Whether a ``subnet_ids`` argument names a network: an Output (a created VPC) or a non-empty list."""
    return isinstance(subnet_ids, pulumi.Output) or bool(subnet_ids)


def as_input_list(values: Any) -> Any:
    """A ``subnet_ids``-like argument as a resource input: the Output as it is, a tuple as a list."""
    return values if isinstance(values, pulumi.Output) else list(values)


def s3_endpoint_policy(bucket_arns: Sequence[str], region: str, partition: str = "aws") -> dict[str, Any]:
    """The gateway endpoint reaches the stack's buckets and ECR's layer bucket only (AWS ECR docs: ``s3:GetObject``
    on ``arn:aws:s3:::prod-<region>-starport-layer-bucket/*``)."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "StackBuckets",
                "Effect": "Allow",
                "Principal": "*",
                "Action": list(S3_ACTIONS),
                "Resource": [r for b in bucket_arns for r in (b, f"{b}/*")],
            },
            {
                "Sid": "EcrImageLayers",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:{partition}:s3:::prod-{region}-starport-layer-bucket/*",
            },
        ],
    }


def flow_log_statements(log_group_arn: str) -> list[iam.Statement]:
    """What VPC Flow Logs needs to deliver to its one log group."""
    return [
        {
            "Sid": "DeliverFlowLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [log_group_arn, f"{log_group_arn}:*"],
        },
        {
            "Sid": "FindLogGroup",
            "Effect": "Allow",
            "Action": "logs:DescribeLogGroups",
            "Resource": "*",  # DescribeLogGroups has no resource type
        },
    ]


def lambda_vpc_statements(partition: str, region: str, account_id: str, subnet_ids: Sequence[str], security_group_ids: Sequence[str]) -> list[iam.Statement]:
    """The ENI permissions of a Lambda function in the stack's subnets (AWSLambdaVPCAccessExecutionRole's actions),
    each on the narrowest resource the Service Authorization Reference allows."""
    ec2 = f"arn:{partition}:ec2:{region}:{account_id}"
    subnets = [f"{ec2}:subnet/{s}" for s in subnet_ids]
    return [
        {
            "Sid": "DescribeNetwork",
            "Effect": "Allow",
            "Action": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"],
            "Resource": "*",  # EC2 Describe* actions have no resource types
        },
        {
            "Sid": "InterfacesInStackSubnets",
            "Effect": "Allow",
            "Action": "ec2:CreateNetworkInterface",
            "Resource": [f"{ec2}:network-interface/*", *subnets, *(f"{ec2}:security-group/{g}" for g in security_group_ids)],
        },
        {
            "Sid": "ManageOwnInterfaces",
            "Effect": "Allow",
            "Action": ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
            "Resource": f"{ec2}:network-interface/*",
            "Condition": {"ArnEquals": {"ec2:Subnet": subnets}},
        },
    ]


@dataclass(frozen=True)
class PrivateNetworkArgs(InContext):
    context: StackContext
    """The stack (names, tags, ``protect`` of the flow-log group)."""
    cidr: str
    """The VPC's CIDR block."""
    subnet_cidrs: tuple[str, ...]
    """One per zone (``CreateVpcConfig.subnet_cidrs()``)."""
    zones: tuple[str, ...] | None = None
    """Zone names. Default None: the region's first ``len(subnet_cidrs)`` available zones."""
    bucket_arns: Sequence[pulumi.Input[str]] = ()
    """Buckets the workloads reach through the S3 gateway endpoint. Default: none."""
    kms_key_arn: pulumi.Input[str] | None = None
    """Encrypts the flow-log group (the key policy allows CloudWatch Logs under the stack's log-group prefix).
    Required (no default key)."""
    log_group_name: str = ""
    """The flow-log group (``components.naming.vpc_flow_log_group_name``). Required."""
    flow_log_days: int = 365
    """Flow-log retention. Default 365."""
    permissions_boundary_arn: pulumi.Input[str] | None = None
    """The stack's permissions boundary, carried by the flow-log role. Default: none."""

    @property
    def protect(self) -> bool:
        return self.context.protect

    @property
    def tags(self) -> dict[str, str]:
        return self.context.stack_tags


class PrivateNetwork(pulumi.ComponentResource):
    """VPC, one private subnet and route table per zone, security groups, VPC endpoints and flow logs."""

    vpc_id: pulumi.Output[str]
    subnet_ids: pulumi.Output[list[str]]
    security_group_id: pulumi.Output[str]
    endpoints_security_group_id: pulumi.Output[str]
    flow_log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateNetworkArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:network:PrivateNetwork", name, None, opts)
        if len(args.subnet_cidrs) < 2:
            raise ValueError(f"PrivateNetwork {name!r}: {len(args.subnet_cidrs)} subnet(s); endpoints and jobs need two or more zones")
        if args.zones is not None and len(args.zones) != len(args.subnet_cidrs):
            raise ValueError(f"PrivateNetwork {name!r}: {len(args.zones)} zones for {len(args.subnet_cidrs)} subnets; give one zone per subnet")
        if not args.log_group_name or args.kms_key_arn is None:
            raise ValueError(f"PrivateNetwork {name!r}: flow logs need log_group_name and kms_key_arn")
        child = pulumi.ResourceOptions(parent=self)
        stem = resource_name(args.name_prefix, args.stack)  # the Name tags (kept hash-shortened like every name)
        named = lambda role: {**args.tags, "Name": f"{stem}-{role}"}  # noqa: E731

        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # private DNS of the interface endpoints needs both
            tags=named("vpc"),
            opts=child,
        )
        # The default group of a VPC allows all traffic between its members; managed here with no rules.
        aws.ec2.DefaultSecurityGroup(f"{name}-default-sg", vpc_id=vpc.id, tags=named("default"), opts=child)

        if args.zones is not None:
            zone_names: list[pulumi.Input[str]] = list(args.zones)
        else:
            available = aws.get_availability_zones_output(state="available", opts=pulumi.InvokeOptions(parent=self))
            count = len(args.subnet_cidrs)

            def pick(names: list[str], i: int) -> str:
                ordered = sorted(names)
                if len(ordered) < count:
                    raise ValueError(f"region {args.region} has {len(ordered)} available zones; mlops:vpc.create.azs asks for {count}")
                return ordered[i]

            zone_names = [available.names.apply(partial(_pick_zone, pick, i)) for i in range(count)]

        subnets, tables = [], []
        for i, cidr in enumerate(args.subnet_cidrs):
            subnet = aws.ec2.Subnet(
                f"{name}-subnet-{i}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone_names[i],
                map_public_ip_on_launch=False,
                tags=named(f"private-{i}"),
                opts=child,
            )
            table = aws.ec2.RouteTable(f"{name}-routes-{i}", vpc_id=vpc.id, tags=named(f"private-{i}"), opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-routes-{i}-association", subnet_id=subnet.id, route_table_id=table.id, opts=child)
            subnets.append(subnet)
            tables.append(table)

        workloads = aws.ec2.SecurityGroup(
            f"{name}-sagemaker-sg",
            name=f"{stem}-sagemaker",
            description="SageMaker jobs, models and the drift function: HTTPS to the VPC endpoints and S3 only",
            vpc_id=vpc.id,
            revoke_rules_on_delete=True,
            tags=named("sagemaker"),
            opts=child,
        )
        endpoints_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            name=f"{stem}-endpoints",
            description="Interface VPC endpoints: HTTPS from the stack's workloads only",
            vpc_id=vpc.id,
            revoke_rules_on_delete=True,
            tags=named("endpoints"),
            opts=child,
        )
        s3 = aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=vpc.id,
            service_name=f"com.amazonaws.{args.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[t.id for t in tables],
            policy=pulumi.Output.all(args.partition, *args.bucket_arns).apply(
                lambda a: json.dumps(s3_endpoint_policy(list(a[1:]), args.region, a[0]))
            ),
            tags=named("s3"),
            opts=child,
        )
        https: Any = {"ip_protocol": "tcp", "from_port": 443, "to_port": 443}
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-sagemaker-to-endpoints", security_group_id=workloads.id, referenced_security_group_id=endpoints_sg.id,
            description="HTTPS to the interface endpoints", **https, opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-sagemaker-to-s3", security_group_id=workloads.id, prefix_list_id=s3.prefix_list_id,
            description="HTTPS to S3 through the gateway endpoint", **https, opts=child,
        )
        # Multi-instance training exchanges traffic between its instances (AWS: same security group, in and out).
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-sagemaker-to-self", security_group_id=workloads.id, referenced_security_group_id=workloads.id,
            ip_protocol="-1", description="Between instances of one distributed job", opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-sagemaker-from-self", security_group_id=workloads.id, referenced_security_group_id=workloads.id,
            ip_protocol="-1", description="Between instances of one distributed job", opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-from-sagemaker", security_group_id=endpoints_sg.id, referenced_security_group_id=workloads.id,
            description="HTTPS from the stack's workloads", **https, opts=child,
        )
        subnet_ids = [s.id for s in subnets]
        for service in INTERFACE_SERVICES:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}-endpoint",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=subnet_ids,
                security_group_ids=[endpoints_sg.id],
                tags=named(service),
                opts=child,
            )

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=args.log_group_name,
            retention_in_days=args.flow_log_days,
            kms_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        role = service_role(
            f"{name}-flow-logs-role",
            parent=self,
            role_name=vpc_flow_log_role_name(args.name_prefix, args.stack),
            service="vpc-flow-logs.amazonaws.com",
            description=f"VPC Flow Logs of stack {args.stack} into its log group",
            tags=args.tags,
            source_account=args.account_id,
            permissions_boundary=args.permissions_boundary_arn,
        )
        delivery = aws.iam.RolePolicy(
            f"{name}-flow-logs-delivery",
            role=role.id,
            policy=log_group.arn.apply(lambda arn: json.dumps(iam.document(*flow_log_statements(arn)))),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=named("flow-log"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[delivery]),
        )

        self.subnet_count = len(subnets)
        self.vpc_id = vpc.id
        self.subnet_ids = pulumi.Output.all(*subnet_ids)
        self.security_group_id = workloads.id
        self.endpoints_security_group_id = endpoints_sg.id
        self.flow_log_group_name = log_group.name
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "subnet_ids": self.subnet_ids,
                "security_group_id": self.security_group_id,
                "endpoints_security_group_id": self.endpoints_security_group_id,
                "flow_log_group_name": self.flow_log_group_name,
            }
        )


def _pick_zone(pick: Any, i: int, names: list[str]) -> str:
    return str(pick(names, i))
