"""SecureBucket: every security property asserted on the registered child resources and their inputs."""

from __future__ import annotations

import pulumi_aws as aws
import pytest
from helpers import children_of, only, policy

from components.storage.bucket import ObjectLock, SecureBucket, SecureBucketArgs

KEY = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def build(register, **overrides):
    args = dict(bucket_name="acme-data", account_id="123456789012", kms_key_arn=KEY, access_log_bucket="acme-logs")
    args.update(overrides)
    made = {}

    def program():
        made["bucket"] = SecureBucket("data", SecureBucketArgs(**args))

    manifest = register(program)
    component = only(manifest.of_type("mlops:storage:SecureBucket"))
    return manifest, children_of(manifest, component["urn"]), made["bucket"]


def child(children, token):
    return only([c for c in children if c["type"] == token])


def test_children_are_parented_to_the_component(register):
    manifest, children, _ = build(register)
    component = only(manifest.of_type("mlops:storage:SecureBucket"))
    assert {c["type"] for c in children} >= {
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketLogging:BucketLogging",
    }
    for c in children:
        assert c["urn"].split("::")[2].startswith("mlops:storage:SecureBucket$"), c["urn"]
        assert c["name"].startswith("data-")
    assert component["parent"].split("::")[2] == "pulumi:pulumi:Stack"


def test_all_four_public_access_flags_and_owner_enforced(register):
    _, children, _ = build(register)
    pab = child(children, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")["inputs"]
    assert pab["blockPublicAcls"] and pab["blockPublicPolicy"] and pab["ignorePublicAcls"] and pab["restrictPublicBuckets"]
    own = child(children, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")["inputs"]
    assert own["rule"]["objectOwnership"] == "BucketOwnerEnforced"


def test_sse_kms_with_the_given_key_and_bucket_key(register):
    _, children, _ = build(register)
    rule = only(child(children, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")["inputs"]["rules"])
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY}
    assert rule["bucketKeyEnabled"] is True


def test_policy_denies_non_tls_on_bucket_and_objects(register):
    _, children, _ = build(register)
    doc = policy(child(children, "aws:s3/bucketPolicy:BucketPolicy"))
    deny = only([s for s in doc["Statement"] if s.get("Sid") == "DenyInsecureTransport"])
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Action"] == "s3:*"
    assert set(deny["Resource"]) == {"arn:aws:s3:::acme-data", "arn:aws:s3:::acme-data/*"}
    assert not [s for s in doc["Statement"] if s["Effect"] == "Allow"], "a data bucket grants nothing by policy"


def test_rejects_uploads_that_name_another_encryption_than_the_stack_key(register):
    _, children, _ = build(register)
    statements = {s["Sid"]: s for s in policy(child(children, "aws:s3/bucketPolicy:BucketPolicy"))["Statement"]}
    key = statements["DenyUploadsWithAForeignKey"]
    assert key["Effect"] == "Deny" and key["Action"] == "s3:PutObject" and key["Resource"] == "arn:aws:s3:::acme-data/*"
    assert list(key["Condition"]["StringNotEqualsIfExists"]) == ["s3:x-amz-server-side-encryption-aws-kms-key-id"]
    assert statements["DenyUploadsNotEncryptedWithKms"]["Condition"] == {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "aws:kms"}}


def test_versioning_and_lifecycle(register):
    _, children, _ = build(register, noncurrent_version_days=45, abort_incomplete_upload_days=3)
    assert child(children, "aws:s3/bucketVersioning:BucketVersioning")["inputs"]["versioningConfiguration"]["status"] == "Enabled"
    rules = {r["id"]: r for r in child(children, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["inputs"]["rules"]}
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 45
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 3
    assert all(r["status"] == "Enabled" for r in rules.values())
    assert "expire-current-objects" not in rules, "current data must never expire by default"


def test_configuration_writes_are_chained(register):
    """Each S3 configuration child waits for the previous one (no concurrent conditional operations)."""
    _, children, _ = build(register, eventbridge_notifications=True)
    by_type = {c["type"].rsplit(":", 1)[1]: c for c in children}
    chain = [
        "BucketOwnershipControls",
        "BucketPublicAccessBlock",
        "BucketServerSideEncryptionConfiguration",
        "BucketVersioning",
        "BucketLifecycleConfiguration",
        "BucketPolicy",
        "BucketLogging",
        "BucketNotification",
    ]
    for before, after in zip(chain, chain[1:]):
        assert by_type[before]["urn"] in by_type[after]["depends_on"], f"{after} must depend on {before}"


def test_access_logging_and_eventbridge(register):
    _, children, _ = build(register, eventbridge_notifications=True)
    logging = child(children, "aws:s3/bucketLogging:BucketLogging")["inputs"]
    assert logging["targetBucket"] == "acme-logs" and logging["targetPrefix"] == "data/"
    assert child(children, "aws:s3/bucketNotification:BucketNotification")["inputs"]["eventbridge"] is True


def test_no_logging_or_notifications_unless_asked(register):
    _, children, _ = build(register, access_log_bucket=None)
    types = {c["type"] for c in children}
    assert "aws:s3/bucketLogging:BucketLogging" not in types
    assert "aws:s3/bucketNotification:BucketNotification" not in types
    assert "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration" not in types


def test_object_lock_governance(register):
    _, children, _ = build(register, object_lock=ObjectLock("GOVERNANCE", 14))
    assert child(children, "aws:s3/bucket:Bucket")["inputs"]["objectLockEnabled"] is True
    lock = child(children, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")["inputs"]
    assert lock["rule"]["defaultRetention"] == {"mode": "GOVERNANCE", "days": 14}


def test_log_target_uses_sse_s3_and_admits_the_logging_service(register):
    _, children, _ = build(register, kms_key_arn=None, receives_access_logs=True, access_log_bucket=None, expire_current_days=90)
    rule = only(child(children, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")["inputs"]["rules"])
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    allow = only([s for s in policy(child(children, "aws:s3/bucketPolicy:BucketPolicy"))["Statement"] if s["Effect"] == "Allow"])
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    rules = {r["id"]: r for r in child(children, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")["inputs"]["rules"]}
    assert rules["expire-current-objects"]["expiration"]["days"] == 90


def test_protect_and_force_destroy_are_passed_through(register):
    _, children, _ = build(register, protect=True)
    bucket = child(children, "aws:s3/bucket:Bucket")
    assert bucket["protect"] is True and bucket["inputs"]["forceDestroy"] is False
    _, children, _ = build(register, force_destroy=True)
    bucket = child(children, "aws:s3/bucket:Bucket")
    assert bucket["protect"] is False and bucket["inputs"]["forceDestroy"] is True


def test_rejects_access_log_target_with_kms(register):
    with pytest.raises(ValueError, match="receives_access_logs=True conflicts with kms_key_arn"):
        build(register, receives_access_logs=True)


def test_rejects_object_lock_with_force_destroy(register):
    with pytest.raises(ValueError, match="object_lock conflicts with force_destroy"):
        build(register, object_lock=ObjectLock(), force_destroy=True)


def test_grants_scope_to_prefix_and_include_kms(register):
    def program():
        bucket = SecureBucket("data", SecureBucketArgs(bucket_name="acme-data", account_id="123456789012", kms_key_arn=KEY))
        role = aws.iam.Role("trainer", assume_role_policy="{}")
        bucket.grant_read(role, prefix="churn/")
        bucket.grant_write(role, prefix="churn/out/")

    manifest = register(program)
    grants = {p["name"].split("-")[1]: policy(p) for p in manifest.of_type("aws:iam/rolePolicy:RolePolicy")}
    read, write = grants["read"]["Statement"], grants["write"]["Statement"]
    get = only([s for s in read if "s3:GetObject" in s["Action"]])
    assert get["Resource"] == "arn:aws:s3:::acme-data/churn/*"
    listing = only([s for s in read if "s3:ListBucket" in s["Action"]])
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["churn/*"]}}
    assert only([s for s in read if s["Resource"] == KEY])["Action"] == ["kms:Decrypt", "kms:DescribeKey"]
    put = only([s for s in write if "s3:PutObject" in s["Action"]])
    assert put["Resource"] == "arn:aws:s3:::acme-data/churn/out/*"
    assert "s3:GetObject" not in put["Action"] and "s3:DeleteObject" not in put["Action"]
    assert set(only([s for s in write if s["Resource"] == KEY])["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}
    for p in manifest.of_type("aws:iam/rolePolicy:RolePolicy"):
        assert p["parent"].endswith("::data"), "grants are children of the bucket component"
