"""Per-model platform resources: the SageMaker execution role and the model registry group."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Sequence

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.security.roles import service_role
from components.naming import job_prefix, model_role_name, resource_name
from components.storage.bucket import SecureBucket


@dataclass(frozen=True)
class ModelArgs:
    model: str
    name_prefix: str
    stack: str
    region: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    data_bucket: SecureBucket
    models_bucket: SecureBucket
    capture_bucket: SecureBucket
    kms_key_arn: pulumi.Input[str]
    code_prefix: str
    """Key prefix of the code packages in the models bucket (read-only for the model)."""
    image_uris: list[str]
    """Container images the model's jobs and endpoint run (training, inference)."""
    description: str = ""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """The stack VPC's subnets (strings, or a created network's Output), when jobs and the model run in a VPC."""
    security_group_ids: pulumi.Input[Sequence[str]] = ()
    """Their security groups (the only ones the role may put interfaces in; empty: any of the account's)."""
    permissions_boundary_arn: pulumi.Input[str] | None = None
    """The stack's permissions boundary, carried by the model's role."""
    tags: dict[str, str] = field(default_factory=dict)
    protect: bool = False

    @property
    def job_prefix(self) -> str:
        """Every job, endpoint and model of this model is named with this prefix (IAM scopes to it)."""
        return job_prefix(self.name_prefix, self.stack, self.model)

    @property
    def metric_namespace(self) -> str:
        return f"mlops/{self.stack}/{self.model}"


class Model(pulumi.ComponentResource):
    """A model's least-privilege SageMaker role and its model package group (the registry)."""

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]
    model_package_group_name: pulumi.Output[str]
    model_package_group_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ModelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:model:Model", name, None, opts)
        self.args = args
        child = pulumi.ResourceOptions(parent=self)
        role = service_role(
            f"{name}-sagemaker-role",
            parent=self,
            role_name=model_role_name(args.name_prefix, args.stack, args.model),
            permissions_boundary=args.permissions_boundary_arn,
            service="sagemaker.amazonaws.com",
            description=f"SageMaker jobs and endpoint of model {args.model} ({args.stack})",
            tags=args.tags,
            source_account=args.account_id,
        )
        prefix = f"{args.model}/"
        args.data_bucket.grant_read(role, prefix)
        args.models_bucket.grant_read(role, f"{args.code_prefix}/")
        args.models_bucket.grant_read(role, prefix)
        args.models_bucket.grant_write(role, prefix)
        args.capture_bucket.grant_read(role, prefix)
        aws.iam.RolePolicy(
            f"{name}-sagemaker-runtime",
            role=role.id,
            policy=pulumi.Output.all(args.partition, args.account_id, args.kms_key_arn, args.subnet_ids, args.security_group_ids).apply(
                lambda a: json.dumps(
                    iam.document(
                        *iam.sagemaker_execution_statements(
                            partition=a[0],
                            region=args.region,
                            account_id=a[1],
                            job_prefix=args.job_prefix,
                            metric_namespace=args.metric_namespace,
                            image_uris=args.image_uris,
                            kms_key_arn=a[2],
                        ),
                        *(iam.vpc_network_interface_statements(a[0], args.region, a[1], list(a[3]), list(a[4] or [])) if a[3] else []),
                    )
                )
            ),
            opts=child,
        )
        group = aws.sagemaker.ModelPackageGroup(
            f"{name}-registry",
            model_package_group_name=resource_name(args.name_prefix, args.stack, args.model),
            model_package_group_description=(args.description or f"Versions of model {args.model}")[:1024],
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        self.role = role
        self.role_arn = role.arn
        self.role_name = role.name
        self.model_package_group_name = group.model_package_group_name
        self.model_package_group_arn = group.arn
        self.register_outputs(
            {
                "role_arn": self.role_arn,
                "role_name": self.role_name,
                "model_package_group_name": self.model_package_group_name,
                "model_package_group_arn": self.model_package_group_arn,
            }
        )
