"""The real infra/ program, synthesized for each shipped stack: platform properties on the resources."""

from __future__ import annotations

import json

import pytest
from helpers import only, policy

from infra.review.synth import RecordingMonitor, SynthMocks, synth_keys

BUCKET_ROLES = ("data", "models", "capture", "logs")


def buckets(manifest):
    return {r["inputs"]["bucket"].split("-")[2]: r for r in manifest.of_type("aws:s3/bucket:Bucket")}


def config_child(manifest, token, bucket_role):
    return only([r for r in manifest.of_type(token) if r["name"] == f"platform-{bucket_role}-{token_suffix(token)}"])


def token_suffix(token):
    return {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": "encryption",
        "aws:s3/bucketVersioning:BucketVersioning": "versioning",
        "aws:s3/bucketPolicy:BucketPolicy": "policy",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": "public-access",
        "aws:s3/bucketLogging:BucketLogging": "logging",
    }[token]


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_stateful_resources_are_protected_outside_dev(manifests, stack):
    m = manifests[stack]
    stateful = m.of_type("aws:s3/bucket:Bucket") + m.of_type("aws:kms/key:Key") + m.of_type("aws:sns/topic:Topic")
    stateful += m.of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    # 4 buckets, the key, the topic and one registry group per model (prod: churn; staging: churn and demand)
    assert len(stateful) == 6 + {"prod": 1, "staging": 2}[stack]
    assert all(r["protect"] for r in stateful), [r["name"] for r in stateful if not r["protect"]]
    assert not any(r["inputs"]["forceDestroy"] for r in m.of_type("aws:s3/bucket:Bucket"))


def test_dev_is_unprotected_and_force_destroyable(manifests):
    m = manifests["dev"]
    assert not any(r["protect"] for r in m.resources)
    assert all(r["inputs"]["forceDestroy"] for r in m.of_type("aws:s3/bucket:Bucket"))


def test_prod_buckets_encrypted_versioned_private_tls_only(manifests):
    m = manifests["prod"]
    key_arn = m.outputs["kms_key_arn"]
    assert set(buckets(m)) == set(BUCKET_ROLES)
    for role in BUCKET_ROLES:
        sse = only(config_child(m, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", role)["inputs"]["rules"])
        algo = sse["applyServerSideEncryptionByDefault"]
        # S3 access-log delivery cannot write to an SSE-KMS bucket; every other bucket uses the stack key.
        assert algo == ({"sseAlgorithm": "AES256"} if role == "logs" else {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn})
        assert config_child(m, "aws:s3/bucketVersioning:BucketVersioning", role)["inputs"]["versioningConfiguration"]["status"] == "Enabled"
        pab = config_child(m, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", role)["inputs"]
        assert all(pab[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
        statements = {s["Sid"]: s for s in policy(config_child(m, "aws:s3/bucketPolicy:BucketPolicy", role))["Statement"]}
        assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        if role != "logs":  # uploads naming SSE-S3 or another key are refused
            assert statements["DenyUploadsWithAForeignKey"]["Condition"] == {
                "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn}}
            assert statements["DenyUploadsNotEncryptedWithKms"]["Effect"] == "Deny"


def test_models_bucket_lets_only_the_deploy_model_and_flow_roles_write_what_jobs_execute(manifests):
    m = manifests["prod"]
    statements = [s for s in policy(config_child(m, "aws:s3/bucketPolicy:BucketPolicy", "models"))["Statement"]
                  if s["Sid"].startswith("OnlyNamedWriters")]
    writers = {s["Resource"].split("/", 1)[1]: s["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] for s in statements}
    deploy = ["arn:aws:iam::123456789012:role/mlops-break-glass", "arn:aws:iam::123456789012:role/mlops-prod-deploy"]
    flow = "arn:aws:iam::123456789012:role/mlops-prod-churn-states"
    assert writers == {"code/*": deploy, "churn/bootstrap/*": deploy, "churn/contract/*": deploy,
                       "churn/runs/*": ["arn:aws:iam::123456789012:role/mlops-prod-churn-sagemaker", flow],
                       "churn/snapshots/*": [flow]}
    assert all(s["Effect"] == "Deny" and s["Principal"] == "*" and s["Action"] == "s3:PutObject" for s in statements)


def test_the_logs_bucket_takes_access_logs_only_from_the_stack_buckets(manifests):
    m = manifests["prod"]
    grant = only([s for s in policy(config_child(m, "aws:s3/bucketPolicy:BucketPolicy", "logs"))["Statement"]
                  if s["Sid"] == "AllowS3AccessLogDelivery"])
    assert sorted(grant["Condition"]["ArnLike"]["aws:SourceArn"]) == sorted(
        f"arn:aws:s3:::{buckets(m)[r]['inputs']['bucket']}" for r in ("capture", "data", "models"))


def test_captured_payloads_expire(manifests):
    lifecycle = only([r for r in manifests["prod"].of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
                      if r["name"] == "platform-capture-lifecycle"])
    assert {r["id"]: r for r in lifecycle["inputs"]["rules"]}["expire-current-objects"]["expiration"] == {"days": 30}


def test_access_logs_go_to_the_logs_bucket(manifests):
    m = manifests["prod"]
    logs_bucket = buckets(m)["logs"]["inputs"]["bucket"]
    for role in ("data", "models", "capture"):
        assert config_child(m, "aws:s3/bucketLogging:BucketLogging", role)["inputs"]["targetBucket"] == logs_bucket
    assert not [r for r in m.of_type("aws:s3/bucketLogging:BucketLogging") if r["name"] == "platform-logs-logging"]


def test_every_bucket_sends_eventbridge_events(manifests):
    notes = manifests["prod"].of_type("aws:s3/bucketNotification:BucketNotification")
    assert sorted(n["name"] for n in notes) == sorted(f"platform-{r}-notifications" for r in BUCKET_ROLES)
    assert all(n["inputs"]["eventbridge"] is True for n in notes)


def test_model_bucket_object_lock_from_config(manifests):
    lock = only(manifests["prod"].of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"))
    assert lock["name"] == "platform-models-object-lock"
    assert lock["inputs"]["rule"]["defaultRetention"] == {"mode": "GOVERNANCE", "days": 90}
    assert buckets(manifests["prod"])["models"]["inputs"]["objectLockEnabled"] is True
    assert not manifests["dev"].of_type("aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")


def test_noncurrent_retention_from_config(manifests):
    for stack, days in (("dev", 30), ("staging", 90), ("prod", 365)):
        lifecycle = [r for r in manifests[stack].of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration") if r["name"] == "platform-data-lifecycle"]
        rules = {r["id"]: r for r in only(lifecycle)["inputs"]["rules"]}
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == days


def test_key_rotates_has_alias_and_no_wildcard_principal(manifests):
    m = manifests["prod"]
    key = only(m.of_type("aws:kms/key:Key"))
    assert key["inputs"]["enableKeyRotation"] is True
    for stmt in policy(key)["Statement"]:
        if stmt["Effect"] == "Deny":  # the break-glass guard: a wildcard principal is right for a Deny
            assert stmt["Action"] == ["kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey"]
            assert stmt["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/mlops-break-glass"}}
            continue
        assert stmt["Principal"] != "*" and stmt["Principal"].get("AWS") != "*", stmt
        if "Service" in stmt["Principal"]:
            assert "Condition" in stmt, f"service statement {stmt['Sid']} must be bound to the account"
            assert any(k.startswith("kms:EncryptionContext") for block in stmt["Condition"].values() for k in block), stmt["Sid"]
    assert only(m.of_type("aws:kms/alias:Alias"))["inputs"]["name"] == "alias/mlops-prod"


def test_topic_encrypted_with_the_stack_key_and_subscribes_emails(manifests):
    m = manifests["prod"]
    topic = only(m.of_type("aws:sns/topic:Topic"))
    assert topic["inputs"]["kmsMasterKeyId"] == m.outputs["kms_key_arn"]
    subs = m.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert sorted(s["inputs"]["endpoint"] for s in subs) == ["ml-alerts@example.com", "ml-oncall@example.com"]
    assert all(s["inputs"]["protocol"] == "email" and s["inputs"]["topic"] == m.outputs["topic_arn"] for s in subs)
    publish = [s for s in policy(only(m.of_type("aws:sns/topicPolicy:TopicPolicy")))["Statement"] if s["Effect"] == "Allow"]
    assert {s["Principal"]["Service"]: s["Condition"] for s in publish} == {
        "cloudwatch.amazonaws.com": {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                     "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:mlops-prod-*"}},
        "events.amazonaws.com": {"StringEquals": {"aws:SourceAccount": "123456789012"},
                                 "ArnLike": {"aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/mlops-prod-*"}},
    }


def test_key_deletion_and_disabling_reach_the_stack_topic(manifests):
    m = manifests["prod"]
    rules = {r["inputs"]["name"]: json.loads(r["inputs"]["eventPattern"]) for r in m.of_type("aws:cloudwatch/eventRule:EventRule")}
    changes = rules["mlops-prod-key-changes"]
    assert changes["detail"]["eventName"] == ["ScheduleKeyDeletion", "DisableKey", "PutKeyPolicy", "DisableKeyRotation"]
    assert changes["detail"]["resources"] == {"ARN": [m.outputs["kms_key_arn"]]}
    assert rules["mlops-prod-key-deleted"] == {"source": ["aws.kms"], "detail-type": ["KMS CMK Deletion"], "resources": [m.outputs["kms_key_arn"]]}
    targets = {t["inputs"]["rule"]: t["inputs"]["arn"] for t in m.of_type("aws:cloudwatch/eventTarget:EventTarget")}
    assert targets["mlops-prod-key-changes"] == targets["mlops-prod-key-deleted"] == m.outputs["topic_arn"]


def test_sagemaker_log_groups_are_created_with_the_stack_key_and_a_retention(manifests):
    groups = {g["inputs"]["name"]: g["inputs"] for g in manifests["prod"].of_type("aws:cloudwatch/logGroup:LogGroup")}
    for name in ("/aws/sagemaker/Endpoints/mlops-prod-churn", "/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs"):
        assert groups[name]["kmsKeyId"] == manifests["prod"].outputs["kms_key_arn"] and groups[name]["retentionInDays"] == 365
    assert "/aws/sagemaker/TrainingJobs" not in {g["inputs"]["name"] for g in manifests["dev"].of_type("aws:cloudwatch/logGroup:LogGroup")}
    assert all(g["inputs"]["retentionInDays"] >= 365 for g in manifests["prod"].of_type("aws:cloudwatch/logGroup:LogGroup"))


def test_names_and_tags_carry_project_stack_and_environment(manifests):
    for stack, m in manifests.items():
        for b in m.of_type("aws:s3/bucket:Bucket"):
            assert b["inputs"]["bucket"].startswith(f"mlops-{stack}-")
        for r in m.resources:
            if r["custom"] and "tags" in r["inputs"]:
                assert r["inputs"]["tags"]["mlops:project"] == "mlops-stack"
                assert r["inputs"]["tags"]["mlops:stack"] == stack
        taggable = [r for r in m.of_type("aws:s3/bucket:Bucket") + m.of_type("aws:kms/key:Key") + m.of_type("aws:sns/topic:Topic")]
        assert all("tags" in r["inputs"] for r in taggable)


def test_every_resource_uses_the_stack_provider(manifests):
    for stack, m in manifests.items():
        provider = only(m.of_type("pulumi:providers:aws"))
        assert provider["inputs"]["region"] == "us-east-1"
        aws_resources = [r for r in m.resources if r["type"].startswith("aws:")]
        assert aws_resources and all(r["provider"].startswith(provider["urn"] + "::") for r in aws_resources)
        platform = only(m.of_type("mlops:platform:Platform"))
        assert platform["parent"].split("::")[2] == "pulumi:pulumi:Stack"
        for component in m.of_type("mlops:storage:SecureBucket"):
            assert component["parent"] == platform["urn"], "buckets are children of the platform component"


def test_local_stack_points_every_service_at_localstack(manifests):
    provider = only(manifests["local"].of_type("pulumi:providers:aws"))["inputs"]
    assert provider["skipCredentialsValidation"] == "true" or provider["skipCredentialsValidation"] is True
    endpoints = only(__import__("json").loads(provider["endpoints"]) if isinstance(provider["endpoints"], str) else provider["endpoints"])
    assert endpoints["s3"] == endpoints["sts"] == endpoints["sfn"] == "http://127.0.0.1:4566"
    assert provider["s3UsePathStyle"] in (True, "true")
    assert provider["accessKey"] == provider["secretKey"] == "[secret]", "secrets never reach the manifest"
    assert "endpoints" not in only(manifests["prod"].of_type("pulumi:providers:aws"))["inputs"]


def test_outputs_name_what_they_are(manifests):
    out = manifests["dev"].outputs
    assert out["data_bucket_name"] == "mlops-dev-data-123456789012-us-east-1"
    assert out["topic_arn"].startswith("arn:aws:sns:us-east-1:123456789012:")
    assert out["environment"] == "dev"


def test_existing_key_is_used_instead_of_creating_one():
    arn = "arn:aws:kms:eu-west-1:123456789012:key/abcdefab-1234-5678-9abc-def012345678"
    m = synth_keys("byok", {"mlops:environment": "dev", "mlops:region": "eu-west-1", "mlops:keys": {"key_arn": arn}}, "eu-west-1")
    assert not m.of_type("aws:kms/key:Key")
    for r in m.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
        algo = r["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]
        assert algo.get("kmsMasterKeyId", arn) == arn
    assert only(m.of_type("aws:sns/topic:Topic"))["inputs"]["kmsMasterKeyId"] == arn


def test_bad_config_stops_the_program_before_any_resource():
    import pulumi

    monitor = RecordingMonitor(SynthMocks("us-east-1"))
    with pytest.raises(pulumi.RunError) as exc:
        synth_keys("typo", {"mlops:environment": "prod", "mlops:region": "us-east-1", "mlops:storag": {}}, "us-east-1", monitor)
    assert "config.mlops:storag: unknown key (did you mean 'mlops:storage'?)" in str(exc.value)
    assert monitor.records == []


def _sdk_names(args_class) -> set[str]:
    """The wire names of an SDK input type's properties (``lambda_`` is sent as ``lambda``)."""
    return {getattr(v.fget, "_pulumi_name", k) for k, v in vars(args_class).items() if isinstance(v, property)}


def test_every_key_the_local_provider_receives_is_one_it_knows(manifests):
    import json

    import pulumi_aws as aws

    from infra.program import LOCALSTACK_SERVICES

    provider = only(manifests["local"].of_type("pulumi:providers:aws"))["inputs"]
    assert set(provider) <= _sdk_names(aws.ProviderArgs), set(provider) - _sdk_names(aws.ProviderArgs)
    endpoints = only(json.loads(provider["endpoints"]))
    known = _sdk_names(aws.ProviderEndpointArgs)
    assert set(endpoints) <= known, f"the provider would refuse {set(endpoints) - known}"
    assert "lambda" in endpoints and len(endpoints) == len(LOCALSTACK_SERVICES)
    assert set(endpoints.values()) == {"http://127.0.0.1:4566"}


def _pin(stack: str, arn: str) -> dict:
    import yaml

    from infra.config import STACKS_DIR

    keys = yaml.safe_load((STACKS_DIR / "Pulumi.prod.yaml").read_text())["config"]
    keys["mlops:models"]["churn"]["endpoint"] = {"model_package": arn}
    return keys


@pytest.mark.parametrize(
    "arn, why",
    [
        ("arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-other-churn/3", "is not a version of this model's group"),
        ("arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-pinx-churn/3", "is not a version of this model's group"),
        ("arn:aws:sagemaker:us-east-1:999999999999:model-package/mlops-pinx-churn/3", "is in another account"),
    ],
)
def test_rejects_a_pinned_model_package_of_another_group_region_or_account(arn, why):
    import pulumi

    with pytest.raises((pulumi.RunError, Exception)) as exc:
        synth_keys("pinx", _pin("pinx", arn), "us-east-1")
    assert why in str(exc.value)


def test_accepts_a_pinned_model_package_of_the_models_own_group():
    m = synth_keys("pinx", _pin("pinx", "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-pinx-churn/3"), "us-east-1")
    assert m.of_type("aws:sagemaker/model:Model")


def test_rejects_a_stack_whose_name_prefixes_another_stacks(tmp_path):
    """`prod` and `prod-eu` share the IAM scope mlops-prod-*: the second stack file is refused, naming both."""
    from infra.config import ConfigError, config_from_keys
    from infra.program import refuse_overlapping_scopes

    body = "config:\n  mlops:environment: dev\n  mlops:region: us-east-1\n"
    for name in ("prod", "prod-eu", "staging"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text(body)
    cfg = config_from_keys({"mlops:environment": "dev", "mlops:region": "us-east-1"}, "t")
    with pytest.raises(ConfigError, match=r"stack 'prod' \(names mlops-prod-\*\) prefixes stack 'prod-eu'"):
        refuse_overlapping_scopes(cfg, "prod-eu", tmp_path)
    refuse_overlapping_scopes(cfg, "staging", tmp_path)  # no overlap: no error
    (tmp_path / "Pulumi.prod-eu.yaml").write_text(body + "  mlops:name_prefix: eu\n")
    refuse_overlapping_scopes(cfg, "prod", tmp_path)  # another prefix separates them
