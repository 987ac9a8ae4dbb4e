"""The security rules on hand-built resources: each passes a compliant resource and names the broken one."""

from __future__ import annotations

import copy
import fnmatch
import json

import parliament
import pytest

from components.security import iam
from infra.review import rules
from infra.review.rules import RULES, UNKNOWN, evaluate

ACCOUNT = "123456789012"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"


def res(token: str, resource_name: str, /, **inputs) -> dict:
    return {"type": token, "name": resource_name, "urn": f"urn:pulumi:t::p::{token}::{resource_name}", "inputs": inputs, "protect": False}


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def violated(resources: list[dict]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for v in evaluate(resources):
        found.setdefault(v.rule.id, []).append(str(v))
    return found


def bucket(name: str = "mlops-t-data", log_target: str | None = "mlops-t-logs") -> list[dict]:
    """A bucket with every configuration resource SecureBucket gives it, referencing it by name."""
    parts = [
        res(rules.BUCKET, f"{name}-bucket", bucket=name),
        res(rules.PUBLIC_ACCESS_BLOCK, f"{name}-pab", bucket=name, blockPublicAcls=True, blockPublicPolicy=True,
            ignorePublicAcls=True, restrictPublicBuckets=True),
        res(rules.OWNERSHIP, f"{name}-own", bucket=name, rule={"objectOwnership": "BucketOwnerEnforced"}),
        res(rules.ENCRYPTION, f"{name}-sse", bucket=name, rules=[
            {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}, "bucketKeyEnabled": True}]),
        res(rules.BUCKET_POLICY, f"{name}-policy", bucket=name, policy=doc({
            "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}, *iam.deny_foreign_encryption(f"arn:aws:s3:::{name}", KEY_ARN))),
        res(rules.NOTIFICATION, f"{name}-events", bucket=name, eventbridge=True),
        res(rules.VERSIONING, f"{name}-ver", bucket=name, versioningConfiguration={"status": "Enabled"}),
        res(rules.LIFECYCLE, f"{name}-lc", bucket=name, rules=[
            {"id": "a", "status": "Enabled", "filter": {}, "noncurrentVersionExpiration": {"noncurrentDays": 90}},
            {"id": "b", "status": "Enabled", "filter": {}, "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}]),
    ]
    if log_target:
        parts.append(res(rules.LOGGING, f"{name}-log", bucket=name, targetBucket=log_target, targetPrefix="x/"))
    return parts


def log_bucket(name: str = "mlops-t-logs") -> list[dict]:
    parts = bucket(name, log_target=None)
    sse = next(r for r in parts if r["type"] == rules.ENCRYPTION)
    sse["inputs"]["rules"] = [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]
    return parts


def without(resources: list[dict], token: str) -> list[dict]:
    return [r for r in resources if r["type"] != token]


def with_inputs(resources: list[dict], token: str, **inputs) -> list[dict]:
    out = copy.deepcopy(resources)
    for r in out:
        if r["type"] == token:
            r["inputs"].update(inputs)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Buckets


def test_a_secure_bucket_and_its_log_bucket_pass_every_rule():
    assert evaluate(bucket() + log_bucket()) == []


@pytest.mark.parametrize(
    "mutate, rule_id, text",
    [
        (lambda b: without(b, rules.PUBLIC_ACCESS_BLOCK), "s3-public-access-blocked", "no BucketPublicAccessBlock"),
        (lambda b: with_inputs(b, rules.PUBLIC_ACCESS_BLOCK, restrictPublicBuckets=False), "s3-public-access-blocked", "restrictPublicBuckets"),
        (lambda b: with_inputs(b, rules.OWNERSHIP, rule={"objectOwnership": "ObjectWriter"}), "s3-owner-enforced", "BucketOwnerEnforced"),
        (lambda b: without(b, rules.ENCRYPTION), "s3-kms-encrypted", "no default encryption"),
        (lambda b: with_inputs(b, rules.ENCRYPTION, rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
         "s3-kms-encrypted", "uses AES256"),
        (lambda b: with_inputs(b, rules.ENCRYPTION, rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}]),
         "s3-kms-encrypted", "without kmsMasterKeyId"),
        (lambda b: without(b, rules.BUCKET_POLICY), "s3-tls-only", "without TLS"),
        (lambda b: with_inputs(b, rules.BUCKET_POLICY, policy=doc({
            "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::mlops-t-data/*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}})), "s3-tls-only", "without TLS"),
        (lambda b: with_inputs(b, rules.VERSIONING, versioningConfiguration={"status": "Suspended"}), "s3-versioned", "not enabled"),
        (lambda b: without(b, rules.VERSIONING), "s3-versioned", "not enabled"),
        (lambda b: with_inputs(b, rules.LIFECYCLE, rules=[
            {"id": "b", "status": "Enabled", "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}]),
         "s3-lifecycle", "noncurrent versions"),
        (lambda b: with_inputs(b, rules.LIFECYCLE, rules=[
            {"id": "a", "status": "Disabled", "noncurrentVersionExpiration": {"noncurrentDays": 90}},
            {"id": "b", "status": "Enabled", "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}}]),
         "s3-lifecycle", "noncurrent versions"),
        (lambda b: without(b, rules.LOGGING), "s3-access-logs", "access logs are off"),
    ],
)
def test_rejects_a_bucket_missing_a_guardrail(mutate, rule_id, text):
    found = violated(mutate(bucket()) + bucket("mlops-t-models") + log_bucket())
    # Replacing the bucket policy also drops its encryption denies (s3-uploads-use-stack-key says so too).
    assert rule_id in found and set(found) - {rule_id} <= {"s3-uploads-use-stack-key"}
    assert any(text in m and "mlops-t-data-bucket" in m for m in found[rule_id]), found


def test_only_the_access_log_target_may_use_sse_s3_and_skip_its_own_logging():
    # The same SSE-S3, unlogged bucket is fine as the log target, and refused once nothing logs to it.
    assert evaluate(bucket() + log_bucket()) == []
    found = violated(log_bucket())
    assert set(found) == {"s3-kms-encrypted", "s3-access-logs"}


def test_bucket_configuration_is_joined_by_dependency_when_the_name_is_unknown():
    """A preview of a new stack: the bucket's name is unknown, the children point at it through dependencies."""
    parts = bucket() + log_bucket()
    data_urn = parts[0]["urn"]
    for r in parts[1:len(bucket())]:
        r["inputs"]["bucket"] = UNKNOWN
        r["property_dependencies"] = {"bucket": [data_urn]}
    parts[0]["inputs"]["bucket"] = UNKNOWN
    assert [v for v in evaluate(parts) if v.name == "mlops-t-data-bucket"] == []
    assert "s3-versioned" in violated(without(parts, rules.VERSIONING))


def test_unknown_values_are_not_reported():
    key = res(rules.KEY, "k", enableKeyRotation=UNKNOWN)
    topic = res(rules.TOPIC, "t", kmsMasterKeyId=UNKNOWN)
    policy = res(rules.ROLE_POLICY, "p", policy=UNKNOWN)
    watcher = res(rules.EVENT_RULE, "w", eventPattern=UNKNOWN)
    assert evaluate([key, topic, policy, watcher]) == []


# ---------------------------------------------------------------------------------------------------------------
# Keys, topics, queues, log groups, alarms


def test_key_rotation():
    assert [v for v in evaluate([res(rules.KEY, "k", enableKeyRotation=True)]) if v.rule.id == "kms-key-rotation"] == []
    assert "kms-key-rotation" in violated([res(rules.KEY, "k", enableKeyRotation=False)])
    assert "kms-key-rotation" in violated([res(rules.KEY, "k")])
    # AWS cannot rotate asymmetric keys: nothing to ask for.
    assert "kms-key-rotation" not in violated([res(rules.KEY, "k", customerMasterKeySpec="RSA_2048", keyUsage="SIGN_VERIFY")])


def test_topics_and_queues_are_encrypted():
    assert evaluate([res(rules.TOPIC, "t", kmsMasterKeyId=KEY_ARN), res(rules.QUEUE, "q")]) == []
    found = violated([res(rules.TOPIC, "t"), res(rules.QUEUE, "q", sqsManagedSseEnabled=False)])
    assert set(found) == {"sns-encrypted", "sqs-encrypted"}


def test_log_groups_are_encrypted_and_retained():
    assert evaluate([res(rules.LOG_GROUP, "g", kmsKeyId=KEY_ARN, retentionInDays=90)]) == []
    found = violated([res(rules.LOG_GROUP, "g", namePrefix="/mlops/x")])
    assert len(found["logs-encrypted-retained"]) == 2


def test_alarms_have_actions_and_dimensions():
    good = res(rules.METRIC_ALARM, "a", metricName="CPUUtilization", namespace="/aws/sagemaker/Endpoints",
               dimensions={"EndpointName": "e"}, alarmActions=["arn:aws:sns:us-east-1:1:t"])
    assert evaluate([good]) == []
    found = violated([res(rules.METRIC_ALARM, "a", metricName="CPUUtilization", actionsEnabled=False)])
    messages = " ".join(found["cloudwatch-alarm-actionable"])
    assert "actionsEnabled = false" in messages and "no alarmActions" in messages and "no dimensions" in messages
    math = res(rules.METRIC_ALARM, "m", alarmActions=["x"], metricQueries=[
        {"id": "errors", "metric": {"metricName": "Invocation5XXErrors", "namespace": "AWS/SageMaker", "dimensions": {}}},
        {"id": "rate", "expression": "100 * errors"}])
    assert "metric query 'errors' has no dimensions" in violated([math])["cloudwatch-alarm-actionable"][0]


# ---------------------------------------------------------------------------------------------------------------
# IAM


def role_policy(*statements: dict) -> dict:
    return res(rules.ROLE_POLICY, "p", role="r", policy=doc(*statements))


def test_rejects_wildcard_actions_but_not_prefix_wildcards_or_denies():
    found = violated([role_policy({"Effect": "Allow", "Action": ["s3:*"], "Resource": "arn:aws:s3:::b/*"})])
    assert "s3:*" in found["iam-no-wildcard-actions"][0]
    assert "iam-no-wildcard-actions" in violated([role_policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::b"})])
    assert evaluate([role_policy(
        {"Effect": "Allow", "Action": "s3:GetBucket*", "Resource": "arn:aws:s3:::b"},
        {"Effect": "Deny", "Action": "iam:*", "Resource": "arn:aws:iam::1:role/x"},
    )]) == []


@pytest.mark.parametrize(
    "statement, ok",
    [
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}, False),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*"}, False),
        ({"Effect": "Allow", "Action": "iam:GetRole", "Resource": "arn:aws:iam::1:role/*"}, False),
        ({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-east-1:1:key/*",
          "Condition": {"Bool": {"aws:SecureTransport": "true"}}}, False),
        ({"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}, False),
        ({"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}, True),
        ({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-east-1:1:key/*",
          "Condition": {"StringEquals": {"aws:ResourceTag/mlops:stack": "dev"}}}, True),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mlops-dev-data/*"}, True),
    ],
)
def test_unconstrained_resources(statement, ok):
    found = violated([role_policy(statement)])
    assert ("iam-no-unconstrained-resources" not in found) is ok, found


def test_passrole_needs_passed_to_service():
    bare = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/mlops-dev-x"}
    assert "PassedToService" in violated([role_policy(bare)])["iam-passrole-conditioned"][0]
    wildcard = {"Effect": "Allow", "Action": "iam:Pass*", "Resource": "arn:aws:iam::1:role/mlops-dev-x"}
    assert "iam-passrole-conditioned" in violated([role_policy(wildcard)])
    scoped = {**bare, "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}}
    assert evaluate([role_policy(scoped)]) == []


def test_rejects_admin_and_full_access_managed_policies():
    attach = res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a", role="r",
                 policyArn="arn:aws:iam::aws:policy/AmazonSageMakerFullAccess")
    assert "AmazonSageMakerFullAccess" in violated([attach])["iam-no-admin-managed-policies"][0]
    role = res(rules.ROLE, "r", assumeRolePolicy=doc({"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                                                       "Action": "sts:AssumeRole"}),
               managedPolicyArns=["arn:aws:iam::aws:policy/AdministratorAccess"],
               inlinePolicies=[{"name": "x", "policy": doc({"Effect": "Allow", "Action": "*", "Resource": "*"})}])
    found = violated([role])
    assert {"iam-no-admin-managed-policies", "iam-role-policies-as-resources", "iam-no-wildcard-actions"} <= set(found)
    own = res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a", role="r",
              policyArn=f"arn:aws:iam::{ACCOUNT}:policy/mlops-dev-deploy-storage")
    assert evaluate([own]) == []


def github_trust(condition: dict) -> dict:
    return res(rules.ROLE, "deploy", assumeRolePolicy=doc({
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"},
        "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition}))


def test_github_trust_pins_audience_and_subject():
    exact = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                              "token.actions.githubusercontent.com:sub": "repo:o/r:environment:prod"}}
    assert evaluate([github_trust(exact)]) == []
    any_branch = {"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                  "StringLike": {"token.actions.githubusercontent.com:sub": "repo:o/r:*"}}
    assert "no wildcards" in violated([github_trust(any_branch)])["iam-web-identity-trust-scoped"][0]
    no_aud = {"StringEquals": {"token.actions.githubusercontent.com:sub": "repo:o/r:environment:prod"}}
    assert len(violated([github_trust(no_aud)])["iam-web-identity-trust-scoped"]) == 2


def test_resource_policies_are_not_public():
    public = res(rules.TOPIC_POLICY, "tp", arn="t", policy=doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sns:Publish", "Resource": "t"}))
    assert "resource-policy-not-public" in violated([public])
    bound = res(rules.TOPIC_POLICY, "tp", arn="t", policy=doc({
        "Effect": "Allow", "Principal": "*", "Action": "sns:Publish", "Resource": "t",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}))
    tls_only = res(rules.TOPIC_POLICY, "tp2", arn="t", policy=doc({
        "Effect": "Allow", "Principal": "*", "Action": "sns:Publish", "Resource": "t",
        "Condition": {"Bool": {"aws:SecureTransport": "true"}}}))
    assert evaluate([bound]) == []
    assert "resource-policy-not-public" in violated([tls_only])


# ---------------------------------------------------------------------------------------------------------------
# SageMaker and Step Functions


def test_models_are_network_isolated():
    assert evaluate([res(rules.SAGEMAKER_MODEL, "m", enableNetworkIsolation=True)]) == []
    assert "sagemaker-model-network-isolated" in violated([res(rules.SAGEMAKER_MODEL, "m")])


def test_endpoint_configs_encrypt_volumes_and_capture():
    realtime = [{"variantName": "primary", "instanceType": "ml.m5.large", "initialInstanceCount": 1}]
    capture = {"enableCapture": True, "destinationS3Uri": "s3://b/m/", "kmsKeyId": KEY_ARN}
    assert evaluate([res(rules.ENDPOINT_CONFIG, "c", kmsKeyArn=KEY_ARN, productionVariants=realtime, dataCaptureConfig=capture)]) == []
    found = violated([res(rules.ENDPOINT_CONFIG, "c", productionVariants=realtime, dataCaptureConfig={**capture, "kmsKeyId": None})])
    assert len(found["sagemaker-endpoint-config-encrypted"]) == 2
    serverless = [{"variantName": "primary", "serverlessConfig": {"memorySizeInMb": 2048, "maxConcurrency": 5}}]
    assert evaluate([res(rules.ENDPOINT_CONFIG, "s", productionVariants=serverless)]) == []


def state_machine(states: dict, **inputs) -> dict:
    defaults = {
        "loggingConfiguration": {"level": "ERROR", "logDestination": "arn:aws:logs:us-east-1:1:log-group:/mlops/x:*"},
        "tracingConfiguration": {"enabled": True},
    }
    return res(rules.STATE_MACHINE, "ct", definition=json.dumps({"StartAt": next(iter(states)), "States": states}), **{**defaults, **inputs})


TRAIN = {
    "Type": "Task",
    "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
    "Parameters": {"ResourceConfig": {"VolumeKmsKeyId": KEY_ARN}, "OutputDataConfig": {"KmsKeyId": KEY_ARN},
                   "EnableNetworkIsolation": True},
    "End": True,
}
UNISOLATED_TRAIN = {**TRAIN, "Parameters": {k: v for k, v in TRAIN["Parameters"].items() if k != "EnableNetworkIsolation"}}


def test_state_machine_jobs_are_encrypted():
    assert evaluate([state_machine({"Train": TRAIN})]) == []
    bare = {**TRAIN, "Parameters": {"ResourceConfig": {"InstanceCount": 1}, "OutputDataConfig": {"S3OutputPath": "s3://b/"}}}
    found = violated([state_machine({"Train": bare})])
    assert any("ResourceConfig.VolumeKmsKeyId" in m for m in found["sagemaker-jobs-encrypted"])
    # Inside a Parallel branch, through the AWS-SDK integration, with JSONata Arguments.
    process = {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sagemaker:createProcessingJob", "Arguments": {}, "End": True}
    nested = {"Type": "Parallel", "Branches": [{"StartAt": "P", "States": {"P": process}}], "End": True}
    assert len(violated([state_machine({"Fan": nested})])["sagemaker-jobs-encrypted"]) == 2
    # Supplied at run time (JSONPath): the definition cannot tell, so it is not reported.
    dynamic = {**TRAIN, "Parameters": {"ResourceConfig.$": "$.resources", "OutputDataConfig": {"KmsKeyId.$": "$.key"},
                                       "EnableNetworkIsolation.$": "$.isolated"}}
    assert evaluate([state_machine({"Train": dynamic})]) == []


def test_models_and_endpoint_configs_created_at_run_time_follow_the_same_rules():
    create_model = {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createModel",
                    "Parameters": {"ModelName.$": "$.name", "EnableNetworkIsolation": True}, "Next": "Config"}
    create_config = {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createEndpointConfig", "End": True,
                     "Parameters": {"ProductionVariants": [{"InstanceType": "ml.m5.large"}], "KmsKeyId": KEY_ARN,
                                    "DataCaptureConfig": {"EnableCapture": True, "KmsKeyId": KEY_ARN}}}
    assert evaluate([state_machine({"Model": create_model, "Config": create_config})]) == []
    open_model = {**create_model, "Parameters": {"ModelName.$": "$.name"}}
    plain_config = {**create_config, "Parameters": {"ProductionVariants": [{"InstanceType": "ml.m5.large"}],
                                                    "DataCaptureConfig": {"EnableCapture": True}}}
    found = violated([state_machine({"Model": open_model, "Config": plain_config})])
    assert found["sagemaker-model-network-isolated"] == [
        "[high] sagemaker-model-network-isolated: aws:sfn/stateMachine:StateMachine 'ct': "
        "state 'Model' (createModel) does not set EnableNetworkIsolation = true"]
    assert len(found["sagemaker-endpoint-config-encrypted"]) == 2


def test_monitoring_jobs_are_encrypted():
    ok = res(rules.DATA_QUALITY_JOB, "dq", jobResources={"clusterConfig": {"volumeKmsKeyId": KEY_ARN}},
             dataQualityJobOutputConfig={"kmsKeyId": KEY_ARN})
    assert evaluate([ok]) == []
    bad = res(rules.DATA_QUALITY_JOB, "dq", jobResources={"clusterConfig": {"instanceCount": 1}}, dataQualityJobOutputConfig={})
    assert len(violated([bad])["sagemaker-jobs-encrypted"]) == 2


def test_state_machines_are_logged_and_traced():
    found = violated([state_machine({"Train": TRAIN}, loggingConfiguration={"level": "OFF"}, tracingConfiguration={"enabled": False})])
    assert len(found["sfn-logged-traced"]) == 2
    assert "sfn-logged-traced" in violated([state_machine({"Train": TRAIN}, loggingConfiguration=None)])


# ---------------------------------------------------------------------------------------------------------------
# The rule set itself


def test_unknown_types_and_components_are_ignored():
    """A resource of a type no rule knows is ignored, and components (custom=False) are never checked."""
    assert evaluate([res("aws:ec2/internetGateway:InternetGateway", "v"), {**res(rules.BUCKET, "c"), "custom": False}]) == []


def test_actions_listed_as_without_resource_types_have_none():
    """The allow-list that excuses Resource "*" matches the IAM definitions parliament ships."""
    services = {s["prefix"]: s for s in parliament.iam_definition}
    wrong = []
    for action in sorted(rules.ACTIONS_WITHOUT_RESOURCE_TYPES):
        prefix, name = action.split(":")
        privileges = {p["privilege"]: p for p in services[prefix]["privileges"]}
        assert name in privileges, f"{action} is not an IAM action"
        if any(rt["resource_type"] for rt in privileges[name]["resource_types"]):
            wrong.append(action)
    assert wrong == []


# One minimal violating example per rule: the set must cover the whole rule set.
FAILING_EXAMPLES = {
    "s3-public-access-blocked": lambda: without(bucket(), rules.PUBLIC_ACCESS_BLOCK) + log_bucket(),
    "s3-owner-enforced": lambda: without(bucket(), rules.OWNERSHIP) + log_bucket(),
    "s3-kms-encrypted": lambda: without(bucket(), rules.ENCRYPTION) + log_bucket(),
    "s3-tls-only": lambda: without(bucket(), rules.BUCKET_POLICY) + log_bucket(),
    "s3-versioned": lambda: without(bucket(), rules.VERSIONING) + log_bucket(),
    "s3-lifecycle": lambda: without(bucket(), rules.LIFECYCLE) + log_bucket(),
    "s3-access-logs": lambda: without(bucket(), rules.LOGGING) + log_bucket(),
    "kms-key-rotation": lambda: [res(rules.KEY, "k", enableKeyRotation=False)],
    "sns-encrypted": lambda: [res(rules.TOPIC, "t")],
    "sqs-encrypted": lambda: [res(rules.QUEUE, "q", sqsManagedSseEnabled=False)],
    "iam-no-wildcard-actions": lambda: [role_policy({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"})],
    "iam-no-unconstrained-resources": lambda: [role_policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})],
    "iam-passrole-conditioned": lambda: [role_policy({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/x"})],
    "iam-no-admin-managed-policies": lambda: [res("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "a",
                                                   policyArn="arn:aws:iam::aws:policy/AdministratorAccess")],
    "iam-role-policies-as-resources": lambda: [res(rules.ROLE, "r", managedPolicyArns=["arn:aws:iam::1:policy/x"])],
    "iam-web-identity-trust-scoped": lambda: [github_trust({})],
    "resource-policy-not-public": lambda: [res(rules.BUCKET_POLICY, "bp", bucket="b", policy=doc(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"}))],
    "sagemaker-model-network-isolated": lambda: [res(rules.SAGEMAKER_MODEL, "m", enableNetworkIsolation=False)],
    "sagemaker-endpoint-config-encrypted": lambda: [res(rules.ENDPOINT_CONFIG, "c", productionVariants=[{"instanceType": "ml.m5.large"}])],
    "sagemaker-jobs-encrypted": lambda: [state_machine({"Train": {**TRAIN, "Parameters": {}}})],
    "sfn-logged-traced": lambda: [state_machine({"Train": TRAIN}, tracingConfiguration={"enabled": False})],
    "logs-encrypted-retained": lambda: [res(rules.LOG_GROUP, "g", retentionInDays=30)],
    "cloudwatch-alarm-actionable": lambda: [res(rules.METRIC_ALARM, "a", metricName="X", dimensions={"A": "b"})],
    "iam-roles-bounded": lambda: [service_role()],
    "iam-boundary-blocks-escalation": lambda: bounded(boundary_statements()[:1]),
    "iam-role-writes-bounded": lambda: [role_policy({"Effect": "Allow", "Action": ["iam:CreateRole", "iam:PutRolePolicy"],
                                                     "Resource": "arn:aws:iam::1:role/mlops-prod-*"})],
    "kms-keys-by-arn": lambda: [role_policy({"Effect": "Allow", "Action": "kms:TagResource", "Resource": "arn:aws:kms:us-east-1:1:key/*",
                                             "Condition": {"StringEquals": {"aws:RequestTag/mlops:stack": "prod"}}})],
    "kms-key-deletion-guarded": lambda: [res(rules.KEY, "k", enableKeyRotation=True, policy=doc(ROOT_ADMIN))],
    "kms-key-events-watched": lambda: [res(rules.KEY, "k", enableKeyRotation=True, policy=doc(ROOT_ADMIN, *KEY_GUARD))],
    "iam-passrole-paired": lambda: [role_policy({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/mlops-prod-*",
                                                 "Condition": {"StringEquals": {"iam:PassedToService": ["lambda.amazonaws.com", "scheduler.amazonaws.com"]}}})],
    "iam-s3-account-scoped": lambda: [role_policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mlops-prod-*/*"})],
    "iam-no-account-wide-writes": lambda: [role_policy({"Effect": "Allow", "Action": "sns:SetSubscriptionAttributes", "Resource": "*"})],
    "s3-uploads-use-stack-key": lambda: with_policy(bucket(), deny_tls("mlops-t-data")) + log_bucket(),
    "s3-artifact-writers-restricted": lambda: tagged(bucket("mlops-t-models"), "models") + log_bucket(),
    "ci-cannot-read-data": lambda: ci_role_reading("mlops-t-data"),
    "ci-preview-role-read-only": lambda: [github_trust({"StringEquals": {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": ["repo:o/r:pull_request", "repo:o/r:environment:prod"]}})],
    "iam-service-trust-source-account": lambda: [res(rules.ROLE, "r", assumeRolePolicy=doc(
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}))],
    "sns-publishers-scoped": lambda: [res(rules.TOPIC_POLICY, "tp", arn="arn:aws:sns:us-east-1:1:t", policy=doc(
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sns:Publish", "Resource": "arn:aws:sns:us-east-1:1:t",
         "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}))],
    "s3-eventbridge-notifications": lambda: without(bucket(), rules.NOTIFICATION) + log_bucket(),
    "s3-capture-expires": lambda: tagged(bucket("mlops-t-capture"), "capture") + log_bucket(),
    "logs-prod-retention": lambda: [res(rules.LOG_GROUP, "g", kmsKeyId=KEY_ARN, retentionInDays=90, tags={"mlops:environment": "prod"})],
    "ecr-pulls-scoped": lambda: [role_policy({"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                                              "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/*"})],
    "sagemaker-jobs-network-isolated": lambda: [state_machine({"Train": UNISOLATED_TRAIN})],
    "vpc-private-with-flow-logs": lambda: [r for r in private_vpc() if r["type"] != rules.FLOW_LOG],
}


def private_vpc() -> list[dict]:
    """A VPC as PrivateNetwork makes it (referenced by id, as the policy pack sees resolved values)."""
    return [
        res(rules.VPC, "vpc", id="vpc-1", cidrBlock="10.42.0.0/16"),
        res(rules.SUBNET, "subnet-0", id="subnet-0", vpcId="vpc-1", cidrBlock="10.42.0.0/17", mapPublicIpOnLaunch=False),
        res(rules.ROUTE_TABLE, "routes-0", id="rtb-0", vpcId="vpc-1"),
        res(rules.FLOW_LOG, "flow-log", vpcId="vpc-1", trafficType="ALL", logDestinationType="cloud-watch-logs"),
    ]


def test_rejects_a_vpc_with_a_way_to_the_internet_or_without_flow_logs():
    assert "vpc-private-with-flow-logs" not in violated(private_vpc())
    flawed = {
        "internet gateway": private_vpc() + [res(rules.INTERNET_GATEWAY, "igw", vpcId="vpc-1")],
        "gateway attachment": private_vpc() + [res(rules.INTERNET_GATEWAY_ATTACHMENT, "igw-attach", vpcId="vpc-1", internetGatewayId="igw-1")],
        "NAT": private_vpc() + [res(rules.NAT_GATEWAY, "nat", subnetId="subnet-0", allocationId="eipalloc-1")],
        "public IPs": [res(rules.SUBNET, "subnet-0", id="subnet-0", vpcId="vpc-1", mapPublicIpOnLaunch=True) if r["name"] == "subnet-0" else r
                       for r in private_vpc()],
        "inline route": [res(rules.ROUTE_TABLE, "routes-0", id="rtb-0", vpcId="vpc-1", routes=[{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-9"}])
                         if r["name"] == "routes-0" else r for r in private_vpc()],
        "route": private_vpc() + [res(rules.ROUTE, "default", routeTableId="rtb-0", destinationCidrBlock="0.0.0.0/0", natGatewayId="nat-1")],
        "rejected-only flow log": [res(rules.FLOW_LOG, "flow-log", vpcId="vpc-1", trafficType="REJECT") if r["type"] == rules.FLOW_LOG else r
                                   for r in private_vpc()],
    }
    for what, resources in flawed.items():
        assert "vpc-private-with-flow-logs" in violated(resources), what
    # Another VPC's gateway is not this one's.
    assert "vpc-private-with-flow-logs" not in violated(private_vpc() + [res(rules.INTERNET_GATEWAY, "igw", vpcId="vpc-2")])


def test_every_rule_has_a_failing_example():
    assert set(FAILING_EXAMPLES) == set(rules.RULES_BY_ID)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.id)
def test_rule_is_complete_and_fires_on_its_example(rule):
    assert rule.severity in rules.SEVERITIES and rule.description and rule.types
    violations = [v for v in evaluate(FAILING_EXAMPLES[rule.id]()) if v.rule is rule]
    assert violations
    for v in violations:
        # The message names the resource (through the record) and how to fix it.
        assert v.name and v.type in rule.types and len(v.message) > 20


# ---------------------------------------------------------------------------------------------------------------
# Escalation, key takeover, data access: the rules the audit's findings taught (issue 11)

BOUNDARY_ARN = "arn:aws:iam::1:policy/mlops-t-boundary"
ROOT_ADMIN = {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*"}
KEY_GUARD = [s for s in iam.key_policy("1", "aws", "us-east-1", "/mlops/t/", topic_arn="arn:aws:sns:us-east-1:1:t", stem="mlops-t",
                                       break_glass_arn="arn:aws:iam::1:role/mlops-break-glass")["Statement"] if s["Effect"] == "Deny"]


def service_role(boundary: str | None = None, name: str = "r") -> dict:
    extra = {"permissionsBoundary": boundary} if boundary else {}
    return res(rules.ROLE, name, name=f"mlops-t-{name}", assumeRolePolicy=doc(
        {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole",
         "Condition": {"StringEquals": {"aws:SourceAccount": "1"}}}), **extra)


def boundary_statements(subnets: list[str] | None = None) -> list[dict]:
    return iam.permissions_boundary("aws", "us-east-1", "1", subnets)["Statement"]


def bounded(statements: list[dict]) -> list[dict]:
    return [res(rules.MANAGED_POLICY, "boundary", name="mlops-t-boundary", policy=doc(*statements)), service_role(BOUNDARY_ARN)]


def with_policy(resources: list[dict], *statements: dict) -> list[dict]:
    return with_inputs(resources, rules.BUCKET_POLICY, policy=doc(*statements))


def deny_tls(name: str) -> dict:
    return iam.deny_insecure_transport(f"arn:aws:s3:::{name}")


def tagged(resources: list[dict], role: str) -> list[dict]:
    return with_inputs(resources, rules.BUCKET, tags={"mlops:bucket": role})


def ci_role_reading(bucket_name: str, *extra: dict) -> list[dict]:
    trust = github_trust({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                                           "token.actions.githubusercontent.com:sub": "repo:o/r:environment:prod"}})
    grant = res(rules.ROLE_POLICY, "ci-grant", role="deploy", policy=doc(
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::mlops-t-*/*"}, *extra))
    grant["property_dependencies"] = {"role": [trust["urn"]]}
    return tagged(bucket(bucket_name), "data") + log_bucket() + [trust, grant]


def test_rejects_a_role_without_the_boundary_but_not_the_deploy_identity():
    assert "iam-roles-bounded" in violated([service_role()])
    assert "iam-roles-bounded" not in violated([service_role(BOUNDARY_ARN)])
    deploy = github_trust({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                                            "token.actions.githubusercontent.com:sub": "repo:o/r:environment:prod"}})
    assert "iam-roles-bounded" not in violated([deploy])


def test_rejects_a_boundary_that_lets_a_role_escalate_or_run_unisolated_jobs():
    assert "iam-boundary-blocks-escalation" not in violated(bounded(boundary_statements()))
    no_iam_deny = [s for s in boundary_statements() if s["Sid"] != "NoIamWrites"]
    assert "iam:CreateRole" in violated(bounded(no_iam_deny))["iam-boundary-blocks-escalation"][0]
    no_isolation = [s for s in boundary_statements() if "NetworkIsolation" not in s["Sid"]]
    assert "network isolation" in " ".join(violated(bounded(no_isolation))["iam-boundary-blocks-escalation"])
    # The boundary's own Allow of service prefixes is a ceiling, not a grant: the wildcard rules skip it.
    assert not {"iam-no-wildcard-actions", "iam-passrole-conditioned"} & set(violated(bounded(boundary_statements())))


def test_rejects_role_writes_without_the_boundary_condition_and_every_trust_write():
    ok = {"Effect": "Allow", "Action": "iam:PutRolePolicy", "Resource": "arn:aws:iam::1:role/mlops-t-*",
          "Condition": {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN}}}
    assert "iam-role-writes-bounded" not in violated([role_policy(ok)])
    retrust = {"Effect": "Allow", "Action": "iam:UpdateAssumeRolePolicy", "Resource": "arn:aws:iam::1:role/mlops-t-*",
               "Condition": {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY_ARN}}}
    assert "iam:UpdateAssumeRolePolicy" in violated([role_policy(retrust)])["iam-role-writes-bounded"][0]
    assert "iam-role-writes-bounded" in violated([role_policy({"Effect": "Allow", "Action": "iam:*", "Resource": "arn:aws:iam::1:role/x"})])


def test_rejects_key_wildcards_and_key_creation_outside_dev():
    assert "kms-keys-by-arn" not in violated([role_policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN})])
    prod = res(rules.MANAGED_POLICY, "p", name="x", tags={"mlops:environment": "prod"}, policy=doc(
        {"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/a": "b"}}}))
    assert "create keys" in violated([prod])["kms-keys-by-arn"][0]
    prod["inputs"]["tags"] = {"mlops:environment": "dev"}
    assert "kms-keys-by-arn" not in violated([prod])


def test_rejects_a_key_policy_any_admin_can_use_to_delete_the_key_or_unbound_service_grants():
    assert "kms-key-deletion-guarded" in violated([res(rules.KEY, "k", enableKeyRotation=True, policy=doc(ROOT_ADMIN))])
    full = iam.key_policy("1", "aws", "us-east-1", "/mlops/t/", topic_arn="arn:aws:sns:us-east-1:1:t", stem="mlops-t",
                          break_glass_arn="arn:aws:iam::1:role/b")
    assert "kms-key-deletion-guarded" not in violated([res(rules.KEY, "k", enableKeyRotation=True, policy=json.dumps(full))])
    loose = copy.deepcopy(full)
    next(s for s in loose["Statement"] if s["Sid"] == "StackAlarmsPublishToEncryptedTopic")["Condition"]["StringEquals"].pop(
        "kms:EncryptionContext:aws:sns:topicArn")
    assert "kms:EncryptionContext" in violated([res(rules.KEY, "k", enableKeyRotation=True, policy=json.dumps(loose))])["kms-key-deletion-guarded"][0]


def test_key_events_need_a_rule_with_a_target():
    key = res(rules.KEY, "k", enableKeyRotation=True, policy=doc(ROOT_ADMIN, *KEY_GUARD))
    rule = res(rules.EVENT_RULE, "key-changes", name="mlops-t-key-changes", eventPattern=json.dumps(
        {"source": ["aws.kms"], "detail": {"eventName": ["ScheduleKeyDeletion", "DisableKey"]}}))
    target = res(rules.EVENT_TARGET, "key-changes-target", rule="mlops-t-key-changes", arn="arn:aws:sns:us-east-1:1:t")
    assert "kms-key-events-watched" in violated([key, rule])
    assert "kms-key-events-watched" not in violated([key, rule, target])


def test_rejects_passrole_to_several_services_or_by_wildcard():
    one = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/mlops-t-churn-states",
           "Condition": {"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}}}
    assert "iam-passrole-paired" not in violated([role_policy(one)])
    assert "wildcard" in violated([role_policy({**one, "Resource": "arn:aws:iam::1:role/mlops-t-*"})])["iam-passrole-paired"][0]


def test_rejects_bucket_wildcards_without_the_resource_account():
    scoped = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::mlops-t-*/*",
              "Condition": {"StringEquals": {"s3:ResourceAccount": "1"}}}
    assert "iam-s3-account-scoped" not in violated([role_policy(scoped)])
    assert "iam-s3-account-scoped" not in violated([role_policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::exact/*"})])


def test_rejects_uploads_with_a_foreign_key_but_not_on_the_access_log_bucket():
    found = violated(with_policy(bucket(), deny_tls("mlops-t-data")) + with_policy(log_bucket(), deny_tls("mlops-t-logs")))
    assert len(found["s3-uploads-use-stack-key"]) == 1 and "mlops-t-data" in found["s3-uploads-use-stack-key"][0]


def test_rejects_a_models_bucket_anyone_may_write_code_to():
    models = tagged(bucket("mlops-t-models"), "models")
    restricted = with_policy(models, deny_tls("mlops-t-models"), *iam.deny_foreign_encryption("arn:aws:s3:::mlops-t-models", KEY_ARN),
                             *iam.restrict_writers("arn:aws:s3:::mlops-t-models", {"code/": ["arn:aws:iam::1:role/mlops-t-deploy"]}))
    assert "s3-artifact-writers-restricted" in violated(models + log_bucket())
    assert "s3-artifact-writers-restricted" not in violated(restricted + log_bucket())


def test_rejects_a_ci_role_that_reads_data_unless_an_explicit_deny_stops_it():
    assert "s3:GetObject" in " ".join(violated(ci_role_reading("mlops-t-data"))["ci-cannot-read-data"])
    deny = {"Effect": "Deny", "Action": ["s3:GetObject*", "s3:DeleteObject*", "s3:BypassGovernanceRetention"],
            "Resource": "arn:aws:s3:::mlops-t-data/*"}
    assert "ci-cannot-read-data" not in violated(ci_role_reading("mlops-t-data", deny))


def test_rejects_a_pull_request_role_that_can_write():
    trust = github_trust({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                                           "token.actions.githubusercontent.com:sub": "repo:o/r:pull_request"}})
    write = res(rules.ROLE_POLICY, "w", role="deploy", policy=doc({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::state/x"}))
    write["property_dependencies"] = {"role": [trust["urn"]]}
    assert "locks" in violated([trust, write])["ci-preview-role-read-only"][0]
    assert "ci-preview-role-read-only" not in violated([trust])


def test_capture_expires_and_prod_logs_are_kept_a_year():
    capture = tagged(bucket("mlops-t-capture"), "capture")
    expiring = copy.deepcopy(capture)
    next(r for r in expiring if r["type"] == rules.LIFECYCLE)["inputs"]["rules"].append(
        {"id": "c", "status": "Enabled", "filter": {}, "expiration": {"days": 30}})
    assert "s3-capture-expires" in violated(capture + log_bucket()) and "s3-capture-expires" not in violated(expiring + log_bucket())
    year = res(rules.LOG_GROUP, "g", kmsKeyId=KEY_ARN, retentionInDays=365, tags={"mlops:environment": "prod"})
    assert "logs-prod-retention" not in violated([year])


def test_condition_keys_and_actions_of_the_new_statements_exist_in_iam():
    """Every action and condition key the boundary, the key policy and the bucket denies use is in the IAM definitions."""
    services = {s["prefix"]: s for s in parliament.iam_definition}
    stmts = (boundary_statements(["subnet-0123456789abcdef0"])
             + iam.deny_foreign_encryption("arn:aws:s3:::b", KEY_ARN)
             + iam.restrict_writers("arn:aws:s3:::b", {"code/": ["arn:aws:iam::1:role/x"]}))
    for s in stmts:
        for action in _as_list(s["Action"]):
            prefix, name = action.split(":")
            privileges = {p["privilege"]: p for p in services[prefix]["privileges"]}
            matching = [p for n, p in privileges.items() if fnmatch.fnmatchcase(n, name)]
            assert matching, action
            for key in _condition_keys_of(s):
                if key.startswith("aws:"):
                    continue
                for p in matching:
                    keys = {k.lower() for rt in p["resource_types"] for k in rt["condition_keys"]}
                    keys |= {c["condition"].lower() for c in services[prefix].get("conditions", [])} if key.startswith("s3:") else set()
                    assert key.lower() in keys, (action, p["privilege"], key)


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _condition_keys_of(stmt: dict) -> list[str]:
    return [k for block in (stmt.get("Condition") or {}).values() for k in block]


def test_rejects_state_machine_jobs_that_are_not_network_isolated():
    process = {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync", "End": True,
               "Parameters": {"ProcessingResources": {"ClusterConfig": {"VolumeKmsKeyId": KEY_ARN}},
                              "ProcessingOutputConfig": {"KmsKeyId": KEY_ARN}}}
    found = violated([state_machine({"Train": UNISOLATED_TRAIN, "Validate": process})])["sagemaker-jobs-network-isolated"]
    assert len(found) == 2 and "NetworkConfig.EnableNetworkIsolation" in " ".join(found)
    isolated = {**process, "Parameters": {**process["Parameters"], "NetworkConfig": {"EnableNetworkIsolation": True}}}
    assert "sagemaker-jobs-network-isolated" not in violated([state_machine({"Train": TRAIN, "Validate": isolated})])
