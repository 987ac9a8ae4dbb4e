"""References (BucketRef, KeyRef, TopicRef): grants land on the grantee, a bucket of another stack is usable by
name, and a grant made before references keeps its identity (mlops diff: renamed with an alias, nothing deleted)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components.notifications.ref import TopicRef
from components.security.ref import KeyRef
from components.storage.bucket import SecureBucket, SecureBucketArgs
from components.storage.ref import BucketRef
from infra.review.diff import diff

KEY = "arn:aws:kms:us-east-1:123456789012:key/k"


def _policies(manifest):
    return manifest.of_type("aws:iam/rolePolicy:RolePolicy")


def test_a_bucket_of_another_stack_is_granted_by_name(register):
    def program():
        role = aws.iam.Role("trainer", assume_role_policy="{}")
        BucketRef.from_name("acme-data", key=KeyRef.from_arn(KEY), label="data").grant_read(role, "churn/")

    [grant] = _policies(register(program))
    assert grant["parent"].endswith("::trainer")
    statements = json.loads(grant["inputs"]["policy"])["Statement"]
    assert {s["Resource"] if isinstance(s["Resource"], str) else s["Resource"][0] for s in statements} >= {
        "arn:aws:s3:::acme-data/churn/*", KEY
    }


def test_a_topic_of_another_stack_is_named_by_its_arn():
    ref = TopicRef.from_name("acme-dev-notifications", region="eu-west-1", account_id="123456789012")
    seen: list[str] = []

    @pulumi.runtime.test
    def check():
        return pulumi.Output.from_input(ref.topic_arn).apply(seen.append)

    check()
    assert seen == ["arn:aws:sns:eu-west-1:123456789012:acme-dev-notifications"]


def test_a_grant_moved_from_the_bucket_to_the_role_keeps_its_identity(register):
    """Before references the policy was the bucket's child, named ``<bucket>-read-<hash>``; now it is the role's,
    with an alias to the old parent and name: mlops diff sees a rename, not a delete."""

    def before():
        bucket = SecureBucket("data", SecureBucketArgs(bucket_name="acme-data", account_id="123456789012", kms_key_arn=KEY))
        role = aws.iam.Role("trainer", assume_role_policy="{}")
        from components.naming import short_hash
        from components.security import iam

        aws.iam.RolePolicy(
            f"data-read-{short_hash('trainer/churn/')}",
            role=role.id,
            policy=bucket.ref.read_statements("churn/").apply(lambda s: json.dumps(iam.document(*s))),
            opts=pulumi.ResourceOptions(parent=bucket),
        )

    def after():
        bucket = SecureBucket("data", SecureBucketArgs(bucket_name="acme-data", account_id="123456789012", kms_key_arn=KEY))
        role = aws.iam.Role("trainer", assume_role_policy="{}")
        bucket.ref.grant_read(role, "churn/")

    old, new = register(before).to_json(), register(after).to_json()
    report = diff(old, new)
    assert report.of_kind("delete") == report.of_kind("replace") == []
    [change] = [c for c in report.changes if c.type == "aws:iam/rolePolicy:RolePolicy"]
    assert "with an alias" in change.reasons[0]
