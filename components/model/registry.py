"""Per-model platform resources: the SageMaker execution role and the model registry group."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.security import iam
from components.security.roles import service_role
from components.context import InContext, StackContext
from components.naming import ModelNames
from components.platform.ref import PlatformRef
from components.storage.ref import BucketRef


@dataclass(frozen=True)
class ModelArgs(InContext):
    model: str
    """The model's name (a key of ``mlops:models``): part of every physical name of the model."""
    context: StackContext
    """The stack the model belongs to."""
    platform: PlatformRef
    """The buckets, key and boundary the model's role is granted on (``Platform.ref`` or ``PlatformRef.from_stack``)."""
    image_uris: list[str]
    """Container images the model's jobs and endpoint run (training, inference)."""
    code_prefix: str = "code"
    """Key prefix of the code packages in the models bucket (read-only for the model). Default ``code``."""
    description: str = ""
    """What the model predicts, for people (the registry's description). Default: ``Versions of model <model>``."""
    subnet_ids: pulumi.Input[Sequence[str]] = ()
    """The stack VPC's subnets (strings, or a created network's Output), when jobs and the model run in a VPC.
    Default: no VPC."""
    security_group_ids: pulumi.Input[Sequence[str]] = ()
    """Their security groups (the only ones the role may put interfaces in; empty: any of the account's)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Tags of this model's resources besides the stack's (``StackContext.model_tags``). Default: none."""

    @property
    def names(self) -> ModelNames:
        return self.context.names(self.model)

    @property
    def job_prefix(self) -> str:
        """Every job, endpoint and model of this model is named with this prefix (IAM scopes to it)."""
        return self.names.job_prefix

    @property
    def metric_namespace(self) -> str:
        return self.names.metric_namespace

    @property
    def all_tags(self) -> dict[str, str]:
        return self.context.model_tags(self.model, self.tags)

    # Read by the monitors of this model (same package family): the stack's values, through the context.
    @property
    def kms_key_arn(self) -> pulumi.Input[str]:
        return self.platform.key.key_arn

    @property
    def data_bucket(self) -> BucketRef:
        return self.platform.data

    @property
    def models_bucket(self) -> BucketRef:
        return self.platform.models

    @property
    def capture_bucket(self) -> BucketRef:
        return self.platform.capture

    @property
    def permissions_boundary_arn(self) -> pulumi.Input[str] | None:
        return self.platform.boundary_arn


class Model(pulumi.ComponentResource):
    """A model's least-privilege SageMaker role and its model package group (the registry)."""

    role_arn: pulumi.Output[str]
    role_name: pulumi.Output[str]
    model_package_group_name: pulumi.Output[str]
    model_package_group_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ModelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:model:Model", name, None, opts)
        self.args = args
        self.context = args.context
        self.names = args.names
        child = pulumi.ResourceOptions(parent=self)
        role = service_role(
            f"{name}-sagemaker-role",
            parent=self,
            role_name=args.names.role,
            permissions_boundary=args.permissions_boundary_arn,
            service="sagemaker.amazonaws.com",
            description=f"SageMaker jobs and endpoint of model {args.model} ({args.stack})",
            tags=args.all_tags,
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
            model_package_group_name=args.names.registry_group,
            model_package_group_description=(args.description or f"Versions of model {args.model}")[:1024],
            tags=args.all_tags,
            opts=pulumi.ResourceOptions(parent=self, protect=args.context.protect),
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
