"""A reference to a bucket (CDK's ``IBucket``): consumers take this, never the concrete ``SecureBucket``.

Made from a bucket this program creates (``BucketRef.from_bucket``) or from the name of a bucket another stack
owns (``BucketRef.from_name``). Grants land on the *grantee*: the role policy is a child of the role it extends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pulumi
import pulumi_aws as aws

from components.naming import short_hash
from components.security import iam
from components.security.ref import KeyRef

if TYPE_CHECKING:
    from components.storage.bucket import SecureBucket


@dataclass(frozen=True)
class BucketRef:
    """A bucket's name, ARN and encryption key, with ``grant_read``/``grant_write`` for a role."""

    bucket_name: pulumi.Input[str]
    """The bucket's name."""
    bucket_arn: pulumi.Input[str]
    """The bucket's ARN (``arn:<partition>:s3:::<name>``)."""
    key: KeyRef | None = None
    """The bucket's SSE-KMS key; grants add the ``kms:`` actions on it. ``None``: SSE-S3 (no key statements)."""
    label: str = "bucket"
    """A short word naming the bucket in grant resource names (``data``, ``models``). Default ``bucket``."""
    owner: "SecureBucket | None" = None
    """The component when this program created the bucket: grants made before references existed were its
    children, and keep their identity through an alias to it. ``None`` for a bucket owned elsewhere."""

    @classmethod
    def from_bucket(cls, bucket: "SecureBucket", label: str | None = None) -> "BucketRef":
        """The reference of a ``SecureBucket`` of this program (its name, ARN and key)."""
        key = KeyRef(bucket.kms_key_arn) if bucket.kms_key_arn is not None else None
        return cls(bucket.bucket_name, bucket.bucket_arn, key, label or bucket.pulumi_resource_name.rsplit("-", 1)[-1], bucket)

    @classmethod
    def from_name(cls, name: pulumi.Input[str], *, key: KeyRef | None = None, partition: pulumi.Input[str] = "aws",
                  label: str | None = None) -> "BucketRef":
        """A bucket another stack owns, by its name (``components.naming.bucket_name`` gives a platform's)."""
        arn = pulumi.Output.concat("arn:", partition, ":s3:::", name)
        return cls(name, arn, key, label or "bucket")

    @property
    def key_arn(self) -> pulumi.Input[str] | None:
        return self.key.key_arn if self.key is not None else None

    def read_statements(self, prefix: str = "") -> pulumi.Output[list[dict]]:
        """Read and list objects under ``prefix`` (and decrypt with the bucket's key)."""
        return pulumi.Output.all(self.bucket_arn, self.key_arn).apply(lambda a: iam.bucket_read_statements(a[0], prefix, a[1]))

    def write_statements(self, prefix: str = "") -> pulumi.Output[list[dict]]:
        """Write objects under ``prefix`` (and make data keys with the bucket's key)."""
        return pulumi.Output.all(self.bucket_arn, self.key_arn).apply(lambda a: iam.bucket_write_statements(a[0], prefix, a[1]))

    def grant_read(self, grantee: aws.iam.Role, prefix: str = "") -> aws.iam.RolePolicy:
        """Let ``grantee`` read (and list) objects under ``prefix``, with the KMS decrypt it needs.
        Returns the role policy, a child of ``grantee``."""
        return self._grant("read", grantee, prefix, self.read_statements(prefix))

    def grant_write(self, grantee: aws.iam.Role, prefix: str = "") -> aws.iam.RolePolicy:
        """Let ``grantee`` write objects under ``prefix``, with the KMS data-key permissions it needs.
        Returns the role policy, a child of ``grantee``."""
        return self._grant("write", grantee, prefix, self.write_statements(prefix))

    def _grant(self, verb: str, grantee: aws.iam.Role, prefix: str, statements: pulumi.Output[list[dict]]) -> aws.iam.RolePolicy:
        role = grantee.pulumi_resource_name
        aliases = []
        if self.owner is not None:
            # Before references, the bucket owned its grants: ``<bucket>-<verb>-<hash of role/prefix>`` under it.
            old = f"{self.owner.pulumi_resource_name}-{verb}-{short_hash(f'{role}/{prefix}')}"
            aliases.append(pulumi.Alias(name=old, parent=self.owner))
        return aws.iam.RolePolicy(
            f"{role}-{self.label}-{verb}-{short_hash(prefix)}",
            role=grantee.id,
            policy=statements.apply(lambda s: json.dumps(iam.document(*s))),
            opts=pulumi.ResourceOptions(parent=grantee, aliases=aliases),
        )
