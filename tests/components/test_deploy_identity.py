"""DeployIdentity: GitHub OIDC trust pinned to one repository and environment, permissions only for its stack."""

from __future__ import annotations

import fnmatch
import json

import pytest
from helpers import children_of, only, policy, write_stack

from components.deploy_identity import (
    CONCERNS,
    DeployIdentity,
    DeployIdentityArgs,
    DeployScope,
    concerns,
    deploy_statements,
    trust_policy,
)
from infra.config import ConfigError, DeployConfig, STACKS_DIR, load_stack_file
from infra.synth import MOCK_ACCOUNT, synth_file

REPO = "example-org/mlops-stack"
PROVIDER_ARN = f"arn:aws:iam::{MOCK_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
DEPLOY_TYPE = "mlops:delivery:DeployIdentity"


def args(**overrides) -> DeployIdentityArgs:
    base = dict(github_repository=REPO, environment="prod", name_prefix="mlops", stack="prod", region="us-east-1",
                account_id=MOCK_ACCOUNT, partition="aws", tags={"mlops:stack": "prod"})
    return DeployIdentityArgs(**{**base, **overrides})


# ---------------------------------------------------------------------------------------------------------------
# The component under the mock engine


def test_creates_the_github_provider_and_a_role_only_its_environment_can_assume(register):
    m = register(lambda: DeployIdentity("deploy", args()), stack="prod")
    component = only(m.of_type(DEPLOY_TYPE))
    provider = only(m.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider"))
    assert provider["inputs"]["url"] == "https://token.actions.githubusercontent.com"
    assert provider["inputs"]["clientIdLists"] == ["sts.amazonaws.com"]
    role = only(m.of_type("aws:iam/role:Role"))
    assert role["inputs"]["name"] == "mlops-prod-deploy"
    assert role["inputs"]["maxSessionDuration"] == 7200
    [statement] = policy(role, "assumeRolePolicy")["Statement"]
    assert statement["Principal"] == {"Federated": f"arn:aws:iam::{MOCK_ACCOUNT}:openidconnectprovider/deploy-github-oidc"}
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:example-org/mlops-stack:environment:prod",
        }
    }
    # One managed policy per concern, each attached to the role; every child parented to the component.
    policies = m.of_type("aws:iam/policy:Policy")
    assert sorted(p["inputs"]["name"] for p in policies) == sorted(f"mlops-prod-deploy-{c}" for c in CONCERNS)
    attachments = m.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert {a["inputs"]["policyArn"] for a in attachments} == {f"arn:aws:iam::{MOCK_ACCOUNT}:policy/{p['inputs']['name']}" for p in policies}
    assert {a["inputs"]["role"] for a in attachments} == {"mlops-prod-deploy"}
    assert len(children_of(m, component["urn"])) == 2 + 2 * len(CONCERNS)
    assert all(DEPLOY_TYPE in r["urn"] for r in m.resources if r["custom"])


def test_brings_an_existing_provider(register):
    m = register(lambda: DeployIdentity("deploy", args(oidc_provider_arn=PROVIDER_ARN, state_bucket="org-pulumi-state")), stack="prod")
    assert m.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    role = only(m.of_type("aws:iam/role:Role"))
    assert policy(role, "assumeRolePolicy")["Statement"][0]["Principal"] == {"Federated": PROVIDER_ARN}
    state = only([p for p in m.of_type("aws:iam/policy:Policy") if p["name"] == "deploy-state"])
    assert "arn:aws:s3:::org-pulumi-state/.pulumi/stacks/mlops-stack/prod.json*" in json.dumps(policy(state))


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"github_repository": "not a repo"}, "is not <owner>/<repo>"),
        ({"oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/accounts.google.com"}, "is not the ARN of a"),
    ],
)
def test_rejects_bad_arguments_before_registering_anything(register, overrides, message):
    with pytest.raises(Exception, match=message):
        register(lambda: DeployIdentity("deploy", args(**overrides)))


def test_rejects_bad_deploy_config():
    for bad, path in (
        ({"github_repository": "mlops-stack"}, "github_repository"),
        ({"github_repository": REPO, "oidc_provider_arn": "arn:aws:iam::1:oidc-provider/x"}, "oidc_provider_arn"),
        ({"github_repository": REPO, "environment_name": "prod env"}, "environment_name"),
        ({"github_repository": REPO, "state_bucket": "Bad_Bucket"}, "state_bucket"),
    ):
        with pytest.raises(Exception, match=path):
            DeployConfig.model_validate(bad)


def test_program_deploys_with_the_configured_environment_and_backend(tmp_path):
    path = write_stack(tmp_path, f"""
config:
  mlops:environment: staging
  mlops:region: eu-west-1
  mlops:deploy:
    github_repository: {REPO}
    environment_name: staging-eu
    oidc_provider_arn: {PROVIDER_ARN}
    state_bucket: org-pulumi-state
""", name="staging-eu")
    _, m = synth_file(path)
    role = only([r for r in m.of_type("aws:iam/role:Role") if DEPLOY_TYPE in r["urn"]])
    assert policy(role, "assumeRolePolicy")["Statement"][0]["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"] == f"repo:{REPO}:environment:staging-eu"
    assert m.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert m.outputs["deploy_role_arn"] == f"arn:aws:iam::{MOCK_ACCOUNT}:role/mlops-staging-eu-deploy"


def test_shipped_stacks_deploy_from_their_environment(manifests):
    for stack in ("dev", "staging", "prod"):
        cfg = load_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")
        role = only([r for r in manifests[stack].of_type("aws:iam/role:Role") if DEPLOY_TYPE in r["urn"]])
        sub = policy(role, "assumeRolePolicy")["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]
        assert sub == f"repo:{cfg.deploy.github_repository}:environment:{cfg.environment.value}"
    assert manifests["local"].of_type(DEPLOY_TYPE) == []


def test_bad_deploy_config_is_refused_with_its_yaml_path(tmp_path):
    path = write_stack(tmp_path, "config:\n  mlops:environment: dev\n  mlops:region: us-east-1\n  mlops:deploy:\n    github_repository: nope\n")
    with pytest.raises(ConfigError, match=r"config.mlops:deploy.github_repository: 'nope' is not accepted: expected <owner>/<repo>"):
        load_stack_file(path)


# ---------------------------------------------------------------------------------------------------------------
# The permissions, evaluated (a small IAM evaluator: Allow/Deny, wildcards, the condition operators we use)


def _matches(patterns, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), p.lower()) for p in (patterns if isinstance(patterns, list) else [patterns]))


def _conditions_hold(stmt: dict, context: dict[str, str]) -> bool:
    for op, block in (stmt.get("Condition") or {}).items():
        for key, expected in block.items():
            actual = context.get(key)
            values = expected if isinstance(expected, list) else [expected]
            if actual is None:
                return False
            if op in ("StringEquals", "Bool") and str(actual) not in [str(v) for v in values]:
                return False
            if op in ("StringLike", "ArnLike") and not any(fnmatch.fnmatchcase(actual, v) for v in values):
                return False
    return True


def allowed(statements: list[dict], action: str, resource: str, context: dict[str, str] | None = None) -> bool:
    context = context or {}
    hits = [s for s in statements if _matches(s["Action"], action) and _matches(s["Resource"], resource) and _conditions_hold(s, context)]
    return any(s["Effect"] == "Allow" for s in hits) and not any(s["Effect"] == "Deny" for s in hits)


def scope_for(stack: str, **kw) -> DeployScope:
    return DeployScope("aws", "us-east-1", MOCK_ACCOUNT, "mlops", stack, f"mlops-{stack}-deploy", PROVIDER_ARN, **kw)


def statements_for(stack: str, **kw) -> list[dict]:
    return [s for group in deploy_statements(scope_for(stack, **kw)).values() for s in group]


def _s3(r):
    return f"arn:aws:s3:::{r['inputs']['bucket']}"


def _sm(kind):
    return lambda r, name_key="name": f"arn:aws:sagemaker:us-east-1:{MOCK_ACCOUNT}:{kind}/{r['inputs'].get(name_key) or r['inputs'].get('namePrefix', '') + 'x'}"


# What `pulumi up` calls to create each resource type of the stack: (action, ARN of the resource).
CREATES = {
    "aws:s3/bucket:Bucket": [("s3:CreateBucket", _s3)],
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": [("s3:PutBucketOwnershipControls", _s3)],
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": [("s3:PutBucketPublicAccessBlock", _s3)],
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": [("s3:PutEncryptionConfiguration", _s3)],
    "aws:s3/bucketVersioning:BucketVersioning": [("s3:PutBucketVersioning", _s3)],
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": [("s3:PutLifecycleConfiguration", _s3)],
    "aws:s3/bucketPolicy:BucketPolicy": [("s3:PutBucketPolicy", _s3)],
    "aws:s3/bucketLogging:BucketLogging": [("s3:PutBucketLogging", _s3)],
    "aws:s3/bucketNotification:BucketNotification": [("s3:PutBucketNotification", _s3)],
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": [("s3:PutBucketObjectLockConfiguration", _s3)],
    "aws:s3/bucketObjectv2:BucketObjectv2": [("s3:PutObject", lambda r: f"{_s3(r)}/{r['inputs']['key']}")],
    "aws:kms/key:Key": [("kms:CreateKey", lambda r: "*"), ("kms:PutKeyPolicy", lambda r: f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/new"),
                        ("kms:EnableKeyRotation", lambda r: f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/new")],
    "aws:kms/alias:Alias": [("kms:CreateAlias", lambda r: f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:{r['inputs']['name']}"),
                            ("kms:CreateAlias", lambda r: f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/{r['inputs']['targetKeyId']}")],
    "aws:iam/role:Role": [("iam:CreateRole", lambda r: f"arn:aws:iam::{MOCK_ACCOUNT}:role/{r['inputs']['name']}")],
    "aws:iam/rolePolicy:RolePolicy": [("iam:PutRolePolicy", lambda r: f"arn:aws:iam::{MOCK_ACCOUNT}:role/{r['inputs']['role']}")],
    "aws:sqs/queue:Queue": [("sqs:CreateQueue", lambda r: f"arn:aws:sqs:us-east-1:{MOCK_ACCOUNT}:{r['inputs']['name']}")],
    "aws:sqs/queuePolicy:QueuePolicy": [
        # The mock engine's queue ARN has a "queue/" part real SQS ARNs do not: the policy names the queue.
        ("sqs:SetQueueAttributes", lambda r: "arn:aws:sqs:us-east-1:{}:{}".format(
            MOCK_ACCOUNT, __import__("json").loads(r["inputs"]["policy"])["Statement"][0]["Resource"].rsplit("/", 1)[-1]))
    ],
    "aws:sns/topic:Topic": [("sns:CreateTopic", lambda r: f"arn:aws:sns:us-east-1:{MOCK_ACCOUNT}:{r['inputs']['name']}")],
    "aws:sns/topicPolicy:TopicPolicy": [("sns:SetTopicAttributes", lambda r: r["inputs"]["arn"])],
    "aws:sns/topicSubscription:TopicSubscription": [("sns:Subscribe", lambda r: r["inputs"]["topic"])],
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup": [("sagemaker:CreateModelPackageGroup", lambda r: _sm("model-package-group")(r, "modelPackageGroupName"))],
    "aws:sagemaker/model:Model": [("sagemaker:CreateModel", _sm("model")), ("iam:PassRole", lambda r: r["inputs"]["executionRoleArn"])],
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": [("sagemaker:CreateEndpointConfig", _sm("endpoint-config")),
                                                                   ("kms:CreateGrant", lambda r: f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/new")],
    "aws:sagemaker/endpoint:Endpoint": [("sagemaker:CreateEndpoint", _sm("endpoint"))],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [("cloudwatch:PutMetricAlarm", lambda r: f"arn:aws:cloudwatch:us-east-1:{MOCK_ACCOUNT}:alarm:{r['inputs']['name']}")],
    "aws:cloudwatch/dashboard:Dashboard": [("cloudwatch:PutDashboard", lambda r: f"arn:aws:cloudwatch::{MOCK_ACCOUNT}:dashboard/{r['inputs']['dashboardName']}")],
    "aws:cloudwatch/logGroup:LogGroup": [("logs:CreateLogGroup", lambda r: f"arn:aws:logs:us-east-1:{MOCK_ACCOUNT}:log-group:{r['inputs']['name']}"),
                                         ("logs:AssociateKmsKey", lambda r: f"arn:aws:logs:us-east-1:{MOCK_ACCOUNT}:log-group:{r['inputs']['name']}")],
    "aws:cloudwatch/eventRule:EventRule": [("events:PutRule", lambda r: f"arn:aws:events:us-east-1:{MOCK_ACCOUNT}:rule/{r['inputs']['name']}")],
    "aws:cloudwatch/eventTarget:EventTarget": [("events:PutTargets", lambda r: f"arn:aws:events:us-east-1:{MOCK_ACCOUNT}:rule/{r['inputs']['rule']}"),
                                               ("iam:PassRole", lambda r: r["inputs"]["roleArn"], "events.amazonaws.com")],
    "aws:sfn/stateMachine:StateMachine": [("states:CreateStateMachine", lambda r: f"arn:aws:states:us-east-1:{MOCK_ACCOUNT}:stateMachine:{r['inputs']['name']}"),
                                          ("states:PublishStateMachineVersion", lambda r: f"arn:aws:states:us-east-1:{MOCK_ACCOUNT}:stateMachine:{r['inputs']['name']}"),
                                          ("iam:PassRole", lambda r: r["inputs"]["roleArn"], "states.amazonaws.com")],
    "aws:sfn/alias:Alias": [("states:CreateStateMachineAlias", lambda r: r["inputs"]["routingConfigurations"][0]["stateMachineVersionArn"]
                             .rsplit(":", 1)[0] + ":" + r["inputs"]["name"])],
    "aws:scheduler/schedule:Schedule": [("scheduler:CreateSchedule", lambda r: f"arn:aws:scheduler:us-east-1:{MOCK_ACCOUNT}:schedule/default/{r['inputs']['name']}"),
                                        ("iam:PassRole", lambda r: r["inputs"]["target"]["roleArn"], "scheduler.amazonaws.com")],
    "aws:lambda/function:Function": [("lambda:CreateFunction", lambda r: f"arn:aws:lambda:us-east-1:{MOCK_ACCOUNT}:function:{r['inputs']['name']}"),
                                     ("iam:PassRole", lambda r: r["inputs"]["role"], "lambda.amazonaws.com"),
                                     ("s3:GetObject", lambda r: f"arn:aws:s3:::{r['inputs']['s3Bucket']}/{r['inputs']['s3Key']}"),
                                     ("kms:CreateGrant", lambda r: f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/new")],
    "aws:appautoscaling/target:Target": [("application-autoscaling:RegisterScalableTarget",
                                          lambda r: f"arn:aws:application-autoscaling:us-east-1:{MOCK_ACCOUNT}:scalable-target/0123abcd")],
    "aws:appautoscaling/policy:Policy": [("application-autoscaling:PutScalingPolicy",
                                          lambda r: f"arn:aws:application-autoscaling:us-east-1:{MOCK_ACCOUNT}:scalable-target/0123abcd")],
}


def context(stack: str, passed_to: str = "sagemaker.amazonaws.com") -> dict[str, str]:
    """What AWS would evaluate the conditions with when the stack's program makes the call."""
    return {
        "aws:RequestTag/mlops:stack": stack,
        "aws:ResourceTag/mlops:stack": stack,
        "iam:PassedToService": passed_to,
        "application-autoscaling:service-namespace": "sagemaker",
        "kms:GrantIsForAWSResource": "true",
    }


def stack_resources(manifest, deploy: bool = False) -> list[dict]:
    """Custom resources of a manifest, without (or only) the deploy identity, which an administrator applies."""
    return [r for r in manifest.resources if r["custom"] and not r["type"].startswith("pulumi:providers:")
            and (DEPLOY_TYPE in r["urn"]) == deploy]


@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_the_role_may_create_every_resource_of_its_stack(manifests, stack):
    statements = statements_for(stack)
    missing = sorted({r["type"] for r in stack_resources(manifests[stack]) if r["type"] not in CREATES})
    assert missing == [], "add the deploy role's permissions (components/deploy_identity.py) and a row to CREATES"
    for r in stack_resources(manifests[stack]):
        for action, arn, *service in CREATES[r["type"]]:
            assert allowed(statements, action, arn(r), context(stack, *service)), (r["type"], r["name"], action, arn(r))


def test_the_role_cannot_touch_another_stack(manifests):
    """The prod role, pointed at every resource of the dev stack: not one call is allowed."""
    statements = statements_for("prod")
    for r in stack_resources(manifests["dev"]):
        for action, arn, *service in CREATES[r["type"]]:
            if arn(r) == "*" or "scalable-target" in arn(r):
                continue  # checked by their conditions below
            assert not allowed(statements, action, arn(r), context("dev", *service)), (r["name"], action, arn(r))
    assert not allowed(statements, "kms:CreateKey", "*", context("dev"))
    assert not allowed(statements, "application-autoscaling:RegisterScalableTarget",
                       f"arn:aws:application-autoscaling:us-east-1:{MOCK_ACCOUNT}:scalable-target/x",
                       {"application-autoscaling:service-namespace": "ecs"})


def test_the_role_cannot_change_the_deploy_identity(manifests):
    statements = statements_for("prod")
    role = f"arn:aws:iam::{MOCK_ACCOUNT}:role/mlops-prod-deploy"
    for action in ("iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole", "iam:AttachRolePolicy", "iam:TagRole"):
        assert not allowed(statements, action, role, context("prod")), action
    assert not allowed(statements, "iam:UpdateOpenIDConnectProviderThumbprint", PROVIDER_ARN)
    for r in stack_resources(manifests["prod"], deploy=True):
        arn = f"arn:aws:iam::{MOCK_ACCOUNT}:policy/{r['inputs'].get('name', '')}"
        assert not allowed(statements, "iam:CreatePolicyVersion", arn, context("prod"))
    # Roles of the stack go only to the services that run them.
    model_role = f"arn:aws:iam::{MOCK_ACCOUNT}:role/mlops-prod-churn-sagemaker"
    assert not allowed(statements, "iam:PassRole", model_role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not allowed(statements, "iam:CreateUser", f"arn:aws:iam::{MOCK_ACCOUNT}:user/mlops-prod-x")


def test_state_backend_access_is_this_stacks_state_only():
    statements = statements_for("prod", state_bucket="org-pulumi-state")
    own = "arn:aws:s3:::org-pulumi-state/.pulumi/stacks/mlops-stack/prod.json"
    other = "arn:aws:s3:::org-pulumi-state/.pulumi/stacks/mlops-stack/dev.json"
    assert allowed(statements, "s3:PutObject", own) and allowed(statements, "s3:GetObject", own + ".bak")
    assert allowed(statements, "s3:PutObject", "arn:aws:s3:::org-pulumi-state/.pulumi/locks/organization/mlops-stack/prod/1.json")
    assert not allowed(statements, "s3:GetObject", other)
    assert tuple(deploy_statements(scope_for("prod", state_bucket="b"))) == concerns(True)
    assert tuple(deploy_statements(scope_for("prod"))) == concerns(False)


def test_a_brought_key_is_reached_by_its_arn():
    key = f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/0000-brought"
    statements = statements_for("prod", existing_key_arn=key)
    assert allowed(statements, "kms:GenerateDataKey", key)
    assert not allowed(statements, "kms:CreateKey", "*", context("prod"))
    assert not allowed(statements, "kms:Decrypt", f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/other", context("prod"))


def test_trust_policy_is_exact():
    doc = trust_policy(PROVIDER_ARN, REPO, "prod")
    assert doc == {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "GitHubEnvironmentOnly",
            "Effect": "Allow",
            "Principal": {"Federated": PROVIDER_ARN},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": "repo:example-org/mlops-stack:environment:prod",
            }},
        }],
    }


def test_each_policy_fits_the_managed_policy_size_limit():
    """6,144 characters (whitespace excluded) per managed policy, with a long prefix and stack name."""
    long_scope = DeployScope("aws-us-gov", "us-gov-west-1", MOCK_ACCOUNT, "abcdefghijkl", "x" * 40, "r", PROVIDER_ARN,
                             state_bucket="s" * 63)
    for concern, statements in deploy_statements(long_scope).items():
        size = len(json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":")))
        assert size <= 6144, (concern, size)

