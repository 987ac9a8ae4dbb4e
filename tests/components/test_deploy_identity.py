"""DeployIdentity: GitHub OIDC trust pinned to one repository and environment, permissions only for its stack."""

from __future__ import annotations

import fnmatch
import json

import pytest
from helpers import children_of, only, policy, write_stack

from components.delivery.identity import (
    CONCERNS,
    DeployIdentity,
    DeployIdentityArgs,
    DeployScope,
    concerns,
    deploy_statements,
    trust_policy,
)
from infra.config import ConfigError, DeployConfig, STACKS_DIR, load_stack_file
from infra.review.synth import MOCK_ACCOUNT, synth_file

REPO = "example-org/mlops-stack"
PROVIDER_ARN = f"arn:aws:iam::{MOCK_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
DEPLOY_TYPE = "mlops:delivery:DeployIdentity"


KEY = f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BOUNDARY = f"arn:aws:iam::{MOCK_ACCOUNT}:policy/mlops-prod-boundary"


def args(**overrides) -> DeployIdentityArgs:
    base = dict(github_repository=REPO, environment="prod", name_prefix="mlops", stack="prod", region="us-east-1",
                account_id=MOCK_ACCOUNT, partition="aws", key_arn=KEY, boundary_arn=BOUNDARY, tags={"mlops:stack": "prod"})
    return DeployIdentityArgs(**{**base, **overrides})


# ---------------------------------------------------------------------------------------------------------------
# The component under the mock engine


def test_creates_the_github_provider_and_a_role_only_its_environment_can_assume(register):
    m = register(lambda: DeployIdentity("deploy", args()), stack="prod")
    component = only(m.of_type(DEPLOY_TYPE))
    provider = only(m.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider"))
    assert provider["inputs"]["url"] == "https://token.actions.githubusercontent.com"
    assert provider["inputs"]["clientIdLists"] == ["sts.amazonaws.com"]
    role = only([r for r in m.of_type("aws:iam/role:Role") if r["name"] == "deploy-role"])
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
    assert len(children_of(m, component["urn"])) == 3 + 2 * len(CONCERNS)
    assert all(DEPLOY_TYPE in r["urn"] for r in m.resources if r["custom"])
    # The preview role: trusted only for pull requests, no policies without a state bucket (Pulumi Cloud).
    preview = only([r for r in m.of_type("aws:iam/role:Role") if r["name"] == "deploy-preview-role"])
    assert preview["inputs"]["name"] == "mlops-prod-preview"
    assert policy(preview, "assumeRolePolicy")["Statement"][0]["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"] == "repo:example-org/mlops-stack:pull_request"
    assert m.of_type("aws:iam/rolePolicy:RolePolicy") == []


def test_brings_an_existing_provider(register):
    m = register(lambda: DeployIdentity("deploy", args(oidc_provider_arn=PROVIDER_ARN, state_bucket="org-pulumi-state")), stack="prod")
    assert m.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    role = only([r for r in m.of_type("aws:iam/role:Role") if r["name"] == "deploy-role"])
    assert policy(role, "assumeRolePolicy")["Statement"][0]["Principal"] == {"Federated": PROVIDER_ARN}
    preview = only(m.of_type("aws:iam/rolePolicy:RolePolicy"))
    assert {s["Sid"] for s in policy(preview)["Statement"]} == {"ListStackState", "ReadStackState", "TakeTheBackendLock"}
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
    role = only([r for r in m.of_type("aws:iam/role:Role") if r["name"] == "deploy-role"])
    assert policy(role, "assumeRolePolicy")["Statement"][0]["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"] == f"repo:{REPO}:environment:staging-eu"
    assert m.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider") == []
    assert m.outputs["deploy_role_arn"] == f"arn:aws:iam::{MOCK_ACCOUNT}:role/mlops-staging-eu-deploy"


def test_shipped_stacks_deploy_from_their_environment(manifests):
    for stack in ("dev", "staging", "prod"):
        cfg = load_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")
        role = only([r for r in manifests[stack].of_type("aws:iam/role:Role") if r["name"] == "deploy-role"])
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


def _values(v) -> list[str]:
    return [str(x) for x in (v if isinstance(v, list) else [v])]


def _condition_holds(op: str, actual, expected) -> bool:
    """One condition operator as IAM evaluates it (the subset the stack's policies use)."""
    qualifier, _, base = op.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    wanted = _values(expected)
    if base == "Null":
        return (actual is None) == (wanted[0].lower() == "true")
    if actual is None:
        return if_exists
    got = _values(actual)
    eq = lambda a, e: a == e if base.startswith(("String", "Arn", "Bool")) and "Like" not in base else fnmatch.fnmatchcase(a, e)  # noqa: E731
    if base in ("StringEquals", "ArnEquals", "Bool", "StringLike", "ArnLike"):
        test = lambda a: any(eq(a, e) for e in wanted)  # noqa: E731
    elif base in ("StringNotEquals", "ArnNotEquals", "StringNotLike", "ArnNotLike"):
        test = lambda a: not any(eq(a, e) for e in wanted)  # noqa: E731
    else:
        raise AssertionError(f"evaluator does not know {op}")
    return any(test(a) for a in got) if qualifier == "ForAnyValue" else all(test(a) for a in got)


def _conditions_hold(stmt: dict, context: dict) -> bool:
    lower = {k.lower(): v for k, v in context.items()}
    return all(
        _condition_holds(op, lower.get(key.lower()), expected)
        for op, block in (stmt.get("Condition") or {}).items()
        for key, expected in block.items()
    )


def _applies(s: dict, action: str, resource: str, context: dict) -> bool:
    if "Action" in s and not _matches(s["Action"], action):
        return False
    if "NotAction" in s and _matches(s["NotAction"], action):
        return False
    if "Resource" in s and not _matches(s["Resource"], resource):
        return False
    if "NotResource" in s and _matches(s["NotResource"], resource):
        return False
    return _conditions_hold(s, context)


def _decides(statements: list[dict], action: str, resource: str, context: dict) -> bool:
    hits = [s for s in statements if _applies(s, action, resource, context)]
    return any(s["Effect"] == "Allow" for s in hits) and not any(s["Effect"] == "Deny" for s in hits)


def allowed(statements: list[dict], action: str, resource: str, context: dict | None = None,
            boundary: list[dict] | None = None) -> bool:
    """Identity policies allow and nothing denies; with a permissions boundary, it must allow too."""
    context = context or {}
    if not _decides(statements, action, resource, context):
        return False
    return boundary is None or _decides(boundary, action, resource, context)


def scope_for(stack: str, **kw) -> DeployScope:
    kw.setdefault("key_arn", KEY)
    kw.setdefault("boundary_arn", f"arn:aws:iam::{MOCK_ACCOUNT}:policy/mlops-{stack}-boundary")
    return DeployScope("aws", "us-east-1", MOCK_ACCOUNT, "mlops", stack, f"mlops-{stack}-deploy", PROVIDER_ARN, **kw)


def statements_for(stack: str, **kw) -> list[dict]:
    return [s for group in deploy_statements(scope_for(stack, **kw)).values() for s in group]


def _s3(r):
    return f"arn:aws:s3:::{r['inputs']['bucket']}"


def _sm(kind):
    return lambda r, name_key="name": f"arn:aws:sagemaker:us-east-1:{MOCK_ACCOUNT}:{kind}/{r['inputs'].get(name_key) or r['inputs'].get('namePrefix', '') + 'x'}"


# What `pulumi up` calls to create each resource type of the stack: (action, ARN of the resource).
def _ec2(kind: str):
    return lambda r: f"arn:aws:ec2:us-east-1:{MOCK_ACCOUNT}:{kind}/*"


# The network (mlops:vpc.create) is the perimeter of every job: like roles, an administrator's `pulumi up`
# creates and changes it; CI only reads it (ReadNetwork), so a deploy cannot open a way out of the VPC.
NETWORK_CREATES = {
    "aws:ec2/vpc:Vpc": [("ec2:CreateVpc", _ec2("vpc")), ("ec2:ModifyVpcAttribute", _ec2("vpc"))],
    "aws:ec2/subnet:Subnet": [("ec2:CreateSubnet", _ec2("subnet"))],
    "aws:ec2/routeTable:RouteTable": [("ec2:CreateRouteTable", _ec2("route-table"))],
    "aws:ec2/routeTableAssociation:RouteTableAssociation": [("ec2:AssociateRouteTable", _ec2("route-table"))],
    "aws:ec2/securityGroup:SecurityGroup": [("ec2:CreateSecurityGroup", _ec2("security-group")),
                                            ("ec2:RevokeSecurityGroupEgress", _ec2("security-group"))],
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": [("ec2:RevokeSecurityGroupIngress", _ec2("security-group"))],
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": [("ec2:AuthorizeSecurityGroupIngress", _ec2("security-group"))],
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": [("ec2:AuthorizeSecurityGroupEgress", _ec2("security-group"))],
    "aws:ec2/vpcEndpoint:VpcEndpoint": [("ec2:CreateVpcEndpoint", _ec2("vpc-endpoint")), ("ec2:ModifyVpcEndpoint", _ec2("vpc-endpoint"))],
    "aws:ec2/flowLog:FlowLog": [("ec2:CreateFlowLogs", _ec2("vpc-flow-log")),
                                ("iam:PassRole", lambda r: r["inputs"]["iamRoleArn"], "vpc-flow-logs.amazonaws.com")],
}

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
    "aws:s3/bucketObjectv2:BucketObjectv2": [("s3:PutObject", lambda r: f"{_s3(r)}/{r['inputs']['key']}"),
                                              ("kms:GenerateDataKey", lambda r: "key/new",
                                               lambda r: {"kms:ViaService": "s3.us-east-1.amazonaws.com",
                                                          "kms:EncryptionContext:aws:s3:arn": _s3(r)})],
    "aws:kms/key:Key": [("kms:CreateKey", lambda r: "*"), ("kms:PutKeyPolicy", lambda r: "key/new"),
                        ("kms:EnableKeyRotation", lambda r: "key/new")],
    "aws:kms/alias:Alias": [("kms:CreateAlias", lambda r: f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:{r['inputs']['name']}"),
                            ("kms:CreateAlias", lambda r: f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/{r['inputs']['targetKeyId']}")],
    "aws:iam/role:Role": [("iam:CreateRole", lambda r: f"arn:aws:iam::{MOCK_ACCOUNT}:role/{r['inputs']['name']}")],
    "aws:iam/policy:Policy": [("iam:CreatePolicy", lambda r: f"arn:aws:iam::{MOCK_ACCOUNT}:policy/{r['inputs']['name']}")],
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
    "aws:sagemaker/model:Model": [("sagemaker:CreateModel", _sm("model"),
                                   lambda r: {"sagemaker:VpcSubnets": r["inputs"]["vpcConfig"]["subnets"]} if r["inputs"].get("vpcConfig") else {}),
                                  ("iam:PassRole", lambda r: r["inputs"]["executionRoleArn"])],
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration": [("sagemaker:CreateEndpointConfig", _sm("endpoint-config")),
                                                                   ("kms:CreateGrant", lambda r: "key/new")],
    "aws:sagemaker/endpoint:Endpoint": [("sagemaker:CreateEndpoint", _sm("endpoint"))],
    "aws:cloudwatch/metricAlarm:MetricAlarm": [("cloudwatch:PutMetricAlarm", lambda r: f"arn:aws:cloudwatch:us-east-1:{MOCK_ACCOUNT}:alarm:{r['inputs']['name']}")],
    "aws:cloudwatch/dashboard:Dashboard": [("cloudwatch:PutDashboard", lambda r: f"arn:aws:cloudwatch::{MOCK_ACCOUNT}:dashboard/{r['inputs']['dashboardName']}")],
    "aws:cloudwatch/logGroup:LogGroup": [("logs:CreateLogGroup", lambda r: f"arn:aws:logs:us-east-1:{MOCK_ACCOUNT}:log-group:{r['inputs']['name']}"),
                                         ("logs:AssociateKmsKey", lambda r: f"arn:aws:logs:us-east-1:{MOCK_ACCOUNT}:log-group:{r['inputs']['name']}")],
    "aws:cloudwatch/eventRule:EventRule": [("events:PutRule", lambda r: f"arn:aws:events:us-east-1:{MOCK_ACCOUNT}:rule/{r['inputs']['name']}")],
    "aws:cloudwatch/eventTarget:EventTarget": [("events:PutTargets", lambda r: f"arn:aws:events:us-east-1:{MOCK_ACCOUNT}:rule/{r['inputs']['rule']}"),
                                               ("iam:PassRole", lambda r: r["inputs"].get("roleArn"), "events.amazonaws.com")],
    "aws:sfn/stateMachine:StateMachine": [("states:CreateStateMachine", lambda r: f"arn:aws:states:us-east-1:{MOCK_ACCOUNT}:stateMachine:{r['inputs']['name']}"),
                                          ("states:PublishStateMachineVersion", lambda r: f"arn:aws:states:us-east-1:{MOCK_ACCOUNT}:stateMachine:{r['inputs']['name']}"),
                                          ("iam:PassRole", lambda r: r["inputs"]["roleArn"], "states.amazonaws.com")],
    "aws:sfn/alias:Alias": [("states:CreateStateMachineAlias", lambda r: r["inputs"]["routingConfigurations"][0]["stateMachineVersionArn"]
                             .rsplit(":", 1)[0] + ":" + r["inputs"]["name"])],
    "aws:scheduler/schedule:Schedule": [("scheduler:CreateSchedule", lambda r: f"arn:aws:scheduler:us-east-1:{MOCK_ACCOUNT}:schedule/default/{r['inputs']['name']}"),
                                        ("iam:PassRole", lambda r: r["inputs"]["target"]["roleArn"], "scheduler.amazonaws.com")],
    "aws:lambda/function:Function": [("lambda:CreateFunction", lambda r: f"arn:aws:lambda:us-east-1:{MOCK_ACCOUNT}:function:{r['inputs']['name']}",
                                      lambda r: {"lambda:SubnetIds": r["inputs"]["vpcConfig"]["subnetIds"]} if r["inputs"].get("vpcConfig") else {}),
                                     ("lambda:PutFunctionConcurrency", lambda r: f"arn:aws:lambda:us-east-1:{MOCK_ACCOUNT}:function:{r['inputs']['name']}"),
                                     ("iam:PassRole", lambda r: r["inputs"]["role"], "lambda.amazonaws.com"),
                                     ("s3:GetObject", lambda r: f"arn:aws:s3:::{r['inputs']['s3Bucket']}/{r['inputs']['s3Key']}"),
                                     ("kms:CreateGrant", lambda r: "key/new"),
                                     # Lambda requires these of whoever creates or updates a function with a VpcConfig.
                                     *((describe, lambda r: "*" if r["inputs"].get("vpcConfig") else None)
                                       for describe in ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"))],
    **NETWORK_CREATES,
    "aws:sqs/queue:Queue": [("sqs:CreateQueue", lambda r: f"arn:aws:sqs:us-east-1:{MOCK_ACCOUNT}:{r['inputs']['name']}")],
    # A queue policy is the queue's Policy attribute; its statements name the queue (by the mock's
    # arn:...:queue/<name>; AWS's is arn:...:<name>).
    "aws:sqs/queuePolicy:QueuePolicy": [("sqs:SetQueueAttributes", lambda r: policy(r)["Statement"][0]["Resource"].replace(":queue/", ":"))],
    "aws:appautoscaling/target:Target": [("application-autoscaling:RegisterScalableTarget",
                                          lambda r: f"arn:aws:application-autoscaling:us-east-1:{MOCK_ACCOUNT}:scalable-target/0123abcd")],
    "aws:appautoscaling/policy:Policy": [("application-autoscaling:PutScalingPolicy",
                                          lambda r: f"arn:aws:application-autoscaling:us-east-1:{MOCK_ACCOUNT}:scalable-target/0123abcd")],
}


# What only an administrator's `pulumi up` does (the first one, and any change to these): CI is denied them.
ADMINISTRATIVE = {
    ("aws:iam/role:Role", "iam:CreateRole"),
    ("aws:iam/policy:Policy", "iam:CreatePolicy"),
    ("aws:kms/key:Key", "kms:CreateKey"),
    ("aws:kms/key:Key", "kms:PutKeyPolicy"),
    ("aws:s3/bucketPolicy:BucketPolicy", "s3:PutBucketPolicy"),
    ("aws:s3/bucketOwnershipControls:BucketOwnershipControls", "s3:PutBucketOwnershipControls"),
    ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "s3:PutBucketPublicAccessBlock"),
    ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "s3:PutLifecycleConfiguration"),
    *((token, call[0]) for token, calls in NETWORK_CREATES.items() for call in calls),
}


def context(stack: str, manifest=None, extra=None) -> dict:
    """What AWS would evaluate the conditions with when the stack's program makes the call."""
    out = {
        "aws:RequestTag/mlops:stack": stack,
        "aws:ResourceTag/mlops:stack": stack,
        "iam:PassedToService": "sagemaker.amazonaws.com",
        "application-autoscaling:service-namespace": "sagemaker",
        "kms:GrantIsForAWSResource": "true",
        "sagemaker:NetworkIsolation": "true",
    }
    if manifest is not None:
        out["iam:PermissionsBoundary"] = boundary_arn(manifest)
    if isinstance(extra, str):
        out["iam:PassedToService"] = extra
    elif isinstance(extra, dict):
        out.update(extra)
    return out


def stack_resources(manifest, deploy: bool = False) -> list[dict]:
    """Custom resources of a manifest, without (or only) the deploy identity, which an administrator applies."""
    return [r for r in manifest.resources if r["custom"] and not r["type"].startswith("pulumi:providers:")
            and (DEPLOY_TYPE in r["urn"]) == deploy]


def deployed(manifest) -> list[dict]:
    """Every statement of the deploy role's managed policies, as synthesized (not as the builder would make them)."""
    return [s for r in stack_resources(manifest, deploy=True) if r["type"] == "aws:iam/policy:Policy" for s in policy(r)["Statement"]]


def key_arn(manifest) -> str:
    return manifest.outputs["kms_key_arn"]


def boundary_arn(manifest) -> str:
    return only([r for r in manifest.of_type("aws:iam/role:Role") if r["name"] == "model-churn-sagemaker-role"])["inputs"]["permissionsBoundary"]


def boundary_of(manifest) -> list[dict]:
    return policy(only([r for r in manifest.of_type("aws:iam/policy:Policy") if r["name"] == "platform-boundary"]))["Statement"]


def calls(manifest, r):
    for action, arn, *extra in CREATES[r["type"]]:
        resource = arn(r)
        if resource is None:
            continue  # e.g. a rule target that needs no role (the key events' topic)
        extra = extra[0] if extra else None
        yield action, (key_arn(manifest) if resource == "key/new" else resource), (extra(r) if callable(extra) else extra)


@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_the_role_may_update_every_resource_of_its_stack_and_an_administrator_creates_the_rest(manifests, stack):
    m = manifests[stack]
    statements = deployed(m)
    missing = sorted({r["type"] for r in stack_resources(m) if r["type"] not in CREATES})
    assert missing == [], "add the deploy role's permissions (components/delivery/identity.py) and a row to CREATES"
    for r in stack_resources(m):
        for action, arn, extra in calls(m, r):
            ctx = context(stack, m, extra)
            if (r["type"], action) in ADMINISTRATIVE:
                assert not allowed(statements, action, arn, ctx), ("CI may", r["name"], action, arn)
            else:
                assert allowed(statements, action, arn, ctx), (r["type"], r["name"], action, arn)


def test_the_role_cannot_touch_another_stack(manifests):
    """The prod role, pointed at every resource of the dev stack: not one call is allowed."""
    statements = deployed(manifests["prod"])
    for r in stack_resources(manifests["dev"]):
        for action, arn, extra in calls(manifests["dev"], r):
            if arn == "*" or "scalable-target" in arn or ":key/" in arn:
                continue  # conditions, below; the mock gives both stacks' keys one ARN (AWS: random, distinct)
            assert not allowed(statements, action, arn, context("dev", manifests["dev"], extra)), (r["name"], action, arn)
    assert not allowed(statements, "application-autoscaling:RegisterScalableTarget",
                       f"arn:aws:application-autoscaling:us-east-1:{MOCK_ACCOUNT}:scalable-target/x",
                       {"application-autoscaling:service-namespace": "ecs"})


# ---------------------------------------------------------------------------------------------------------------
# The attacker's questions, asked of the synthesized prod manifest: each answer must be "denied".

ROLE = f"arn:aws:iam::{MOCK_ACCOUNT}:role"


@pytest.fixture(scope="module")
def prod(manifests):
    return manifests["prod"]


def test_attacker_cannot_create_an_unbounded_role_or_one_with_the_boundary(prod):
    statements = deployed(prod)
    for boundary in (None, boundary_arn(prod), f"arn:aws:iam::{MOCK_ACCOUNT}:policy/anything"):
        ctx = {"iam:PermissionsBoundary": boundary} if boundary else {}
        assert not allowed(statements, "iam:CreateRole", f"{ROLE}/mlops-prod-escalate", ctx)
    # Nor attach a managed policy, nor write an inline policy on a role without the stack's boundary.
    assert not allowed(statements, "iam:AttachRolePolicy", f"{ROLE}/mlops-prod-churn-states", context("prod", prod))
    assert not allowed(statements, "iam:PutRolePolicy", f"{ROLE}/mlops-prod-unbounded", {})
    assert not allowed(statements, "iam:PutRolePolicy", f"{ROLE}/mlops-prod-unbounded",
                       {"iam:PermissionsBoundary": f"arn:aws:iam::{MOCK_ACCOUNT}:policy/other"})
    # Writing a policy on a bounded stack role is allowed (that is deploying) ...
    assert allowed(statements, "iam:PutRolePolicy", f"{ROLE}/mlops-prod-churn-scheduler-start", context("prod", prod))


def test_attacker_with_a_star_policy_on_a_bounded_role_still_cannot_escalate(prod):
    """... but even an inline Allow * on it yields no IAM write, no role assumption, no un-isolated job."""
    star = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    boundary = boundary_of(prod)
    for action, resource in (("iam:CreateRole", f"{ROLE}/x"), ("iam:PutRolePolicy", f"{ROLE}/mlops-prod-churn-states"),
                             ("iam:AttachRolePolicy", f"{ROLE}/x"), ("iam:UpdateAssumeRolePolicy", f"{ROLE}/x"),
                             ("iam:DeleteRolePermissionsBoundary", f"{ROLE}/x"), ("iam:CreatePolicyVersion", boundary_arn(prod)),
                             ("sts:AssumeRole", f"{ROLE}/OrganizationAccountAccessRole"), ("iam:CreateUser", "x")):
        assert not allowed(star, action, resource, {}, boundary=boundary), action
    job = f"arn:aws:sagemaker:us-east-1:{MOCK_ACCOUNT}:training-job/x"
    assert not allowed(star, "sagemaker:CreateTrainingJob", job, {"sagemaker:NetworkIsolation": "false"}, boundary=boundary)
    assert not allowed(star, "sagemaker:CreateProcessingJob", job, {}, boundary=boundary)  # isolation not asked for, no VPC
    # Prod creates its VPC: an isolated job is allowed in the stack's subnets only, never outside a VPC.
    subnets = next(s for s in boundary if s.get("Sid") == "NoSageMakerWorkloadOutsideStackSubnets")["Condition"][
        "ForAnyValue:StringNotEquals"]["sagemaker:VpcSubnets"]
    isolated = {"sagemaker:NetworkIsolation": "true"}
    assert allowed(star, "sagemaker:CreateTrainingJob", job, {**isolated, "sagemaker:VpcSubnets": subnets}, boundary=boundary)
    assert not allowed(star, "sagemaker:CreateTrainingJob", job, isolated, boundary=boundary)
    assert not allowed(star, "sagemaker:CreateTrainingJob", job, {**isolated, "sagemaker:VpcSubnets": [subnets[0], "subnet-0123456789abcdef0"]},
                       boundary=boundary)


def test_a_processing_job_may_skip_isolation_only_inside_the_stacks_private_subnets(prod, manifests):
    """The drift job's processing engine talks to S3 and CloudWatch through the VPC's endpoints (no internet
    route there); training jobs and models stay isolated, and without a VPC (dev) every processing job does."""
    star = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    boundary = boundary_of(prod)
    job = f"arn:aws:sagemaker:us-east-1:{MOCK_ACCOUNT}:processing-job/x"
    subnets = next(s for s in boundary if s.get("Sid") == "NoSageMakerWorkloadOutsideStackSubnets")["Condition"][
        "ForAnyValue:StringNotEquals"]["sagemaker:VpcSubnets"]
    open_in_stack = {"sagemaker:NetworkIsolation": "false", "sagemaker:VpcSubnets": subnets}
    assert allowed(star, "sagemaker:CreateProcessingJob", job, open_in_stack, boundary=boundary)
    assert not allowed(star, "sagemaker:CreateTrainingJob", job, open_in_stack, boundary=boundary)
    assert not allowed(star, "sagemaker:CreateModel", job, open_in_stack, boundary=boundary)
    assert not allowed(star, "sagemaker:CreateProcessingJob", job, {"sagemaker:NetworkIsolation": "false"}, boundary=boundary)
    assert not allowed(star, "sagemaker:CreateProcessingJob", job,
                       {"sagemaker:NetworkIsolation": "false", "sagemaker:VpcSubnets": ["subnet-0123456789abcdef0"]}, boundary=boundary)
    dev = boundary_of(manifests["dev"])
    assert not allowed(star, "sagemaker:CreateProcessingJob", job,
                       {"sagemaker:NetworkIsolation": "false", "sagemaker:VpcSubnets": ["subnet-0123456789abcdef0"]}, boundary=dev)


def test_every_stack_role_is_bounded_and_its_own_policies_reach_no_iam_write(prod):
    boundary = boundary_of(prod)
    roles = [r for r in stack_resources(prod) if r["type"] == "aws:iam/role:Role"]
    assert len(roles) >= 6
    for role in roles:
        assert role["inputs"]["permissionsBoundary"] == boundary_arn(prod), role["name"]
        own = [s for p in prod.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role["inputs"]["name"]
               for s in policy(p)["Statement"]]
        for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "sts:AssumeRole"):
            assert not allowed(own, action, f"{ROLE}/mlops-prod-x", {}, boundary=boundary), (role["name"], action)


def test_attacker_cannot_retrust_or_unbound_a_role(prod):
    statements = deployed(prod)
    for name in ("mlops-prod-churn-states", "mlops-prod-churn-sagemaker", "mlops-prod-deploy", "mlops-prod-preview"):
        for action in ("iam:UpdateAssumeRolePolicy", "iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary",
                       "iam:DeleteRole"):
            assert not allowed(statements, action, f"{ROLE}/{name}", context("prod", prod)), (name, action)
    for action in ("iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion", "iam:DeletePolicy"):
        assert not allowed(statements, action, boundary_arn(prod), {}), action
    assert not allowed(statements, "iam:UpdateOpenIDConnectProviderThumbprint", PROVIDER_ARN)
    for r in stack_resources(prod, deploy=True):
        if r["type"] == "aws:iam/policy:Policy":
            assert not allowed(statements, "iam:CreatePolicyVersion", f"arn:aws:iam::{MOCK_ACCOUNT}:policy/{r['inputs']['name']}")


def test_attacker_cannot_tag_a_foreign_key_into_scope_or_destroy_the_stack_key(prod):
    statements = deployed(prod)
    foreign = f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/99999999-9999-9999-9999-999999999999"
    tagged = {"aws:RequestTag/mlops:stack": "prod", "aws:ResourceTag/mlops:stack": "prod"}
    for action in ("kms:TagResource", "kms:Decrypt", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant",
                   "kms:GenerateDataKey", "kms:DescribeKey"):
        assert not allowed(statements, action, foreign, {**tagged, "kms:GrantIsForAWSResource": "true",
                                                         "kms:ViaService": "s3.us-east-1.amazonaws.com"}), action
    assert not allowed(statements, "kms:CreateKey", "*", tagged)
    for action in ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey", "kms:DisableKeyRotation"):
        assert not allowed(statements, action, key_arn(prod), tagged), action
    # The key policy denies the same to every principal but the break-glass role, CI included.
    key_policy = policy(only(prod.of_type("aws:kms/key:Key")))["Statement"]
    root_grant = [{**s, "Resource": key_arn(prod)} for s in key_policy]
    for who, ok in ((f"{ROLE}/mlops-prod-deploy", False), (f"{ROLE}/Admin", False), (f"{ROLE}/mlops-break-glass", True)):
        assert allowed(root_grant, "kms:ScheduleKeyDeletion", key_arn(prod), {"aws:PrincipalArn": who}) is ok, who


def test_attacker_cannot_read_data_or_delete_versions(prod):
    statements = deployed(prod)
    bucket = lambda role: f"arn:aws:s3:::mlops-prod-{role}-{MOCK_ACCOUNT}-us-east-1"  # noqa: E731
    for role in ("data", "capture", "logs"):
        for action in ("s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion",
                       "s3:BypassGovernanceRetention", "s3:PutObject"):
            assert not allowed(statements, action, f"{bucket(role)}/churn/train/part-0.csv", {}), (role, action)
        for action in ("s3:PutBucketPolicy", "s3:PutLifecycleConfiguration", "s3:PutBucketAcl", "s3:PutReplicationConfiguration"):
            assert not allowed(statements, action, bucket(role), {}), (role, action)
        # KMS through S3 in the data's encryption context: no.
        assert not allowed(statements, "kms:Decrypt", key_arn(prod),
                           {"kms:ViaService": "s3.us-east-1.amazonaws.com", "kms:EncryptionContext:aws:s3:arn": bucket(role)})
    for action in ("s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:GetObject"):
        assert not allowed(statements, action, f"{bucket('models')}/churn/runs/r1/output/model.tar.gz", {}), action
    assert not allowed(statements, "kms:Decrypt", key_arn(prod), {})  # direct use of the key


def test_attacker_cannot_pass_a_role_to_the_wrong_service(prod):
    statements = deployed(prod)
    roles = {r["inputs"]["name"]: r for r in stack_resources(prod) if r["type"] == "aws:iam/role:Role"}
    services = ("sagemaker.amazonaws.com", "states.amazonaws.com", "events.amazonaws.com", "scheduler.amazonaws.com",
                "lambda.amazonaws.com", "ec2.amazonaws.com", "ecs-tasks.amazonaws.com")
    for name, role in roles.items():
        trusted = policy(role, "assumeRolePolicy")["Statement"][0]["Principal"]["Service"]
        for service in services:
            ok = allowed(statements, "iam:PassRole", f"{ROLE}/{name}", {"iam:PassedToService": service})
            assert ok == (service == trusted), (name, service)
    assert not allowed(statements, "iam:PassRole", f"{ROLE}/mlops-prod-deploy", {"iam:PassedToService": "lambda.amazonaws.com"})


def test_the_preview_role_reads_state_and_nothing_else(manifests, tmp_path):
    from components.delivery.identity import preview_statements

    statements = preview_statements(scope_for("prod", state_bucket="org-state", preview_role_name="mlops-prod-preview"))
    state = "arn:aws:s3:::org-state/.pulumi"
    assert allowed(statements, "s3:GetObject", f"{state}/stacks/mlops-stack/prod.json")
    assert allowed(statements, "s3:PutObject", f"{state}/locks/org/mlops-stack/prod/1.json")
    assert not allowed(statements, "s3:PutObject", f"{state}/stacks/mlops-stack/prod.json")
    assert not allowed(statements, "iam:PassRole", f"{ROLE}/mlops-prod-churn-states", {"iam:PassedToService": "states.amazonaws.com"})
    preview = only([r for r in manifests["prod"].of_type("aws:iam/role:Role") if r["name"] == "deploy-preview-role"])
    deploy = only([r for r in manifests["prod"].of_type("aws:iam/role:Role") if r["name"] == "deploy-role"])
    assert policy(preview, "assumeRolePolicy")["Statement"][0]["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"] == f"repo:{REPO}:pull_request"
    assert "pull_request" not in json.dumps(policy(deploy, "assumeRolePolicy"))


def test_state_backend_access_is_this_stacks_state_only():
    statements = statements_for("prod", state_bucket="org-pulumi-state")
    own = "arn:aws:s3:::org-pulumi-state/.pulumi/stacks/mlops-stack/prod.json"
    other = "arn:aws:s3:::org-pulumi-state/.pulumi/stacks/mlops-stack/dev.json"
    assert allowed(statements, "s3:PutObject", own) and allowed(statements, "s3:GetObject", own + ".bak")
    assert allowed(statements, "s3:PutObject", "arn:aws:s3:::org-pulumi-state/.pulumi/locks/organization/mlops-stack/prod/1.json")
    assert not allowed(statements, "s3:GetObject", other)
    assert tuple(deploy_statements(scope_for("prod", state_bucket="b"))) == concerns(True)
    assert tuple(deploy_statements(scope_for("prod"))) == concerns(False)


def test_the_key_is_reached_by_its_arn_and_only_through_s3_and_lambda():
    key = f"arn:aws:kms:us-east-1:{MOCK_ACCOUNT}:key/0000-brought"
    statements = statements_for("prod", key_arn=key)
    models = f"arn:aws:s3:::mlops-prod-models-{MOCK_ACCOUNT}-us-east-1"
    assert allowed(statements, "kms:GenerateDataKey", key, {"kms:ViaService": "s3.us-east-1.amazonaws.com",
                                                            "kms:EncryptionContext:aws:s3:arn": models})
    assert not allowed(statements, "kms:GenerateDataKey", key)
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
    models = tuple(f"model{i:02d}xxxxxxxxxxxxxxxx" for i in range(5))
    roles = tuple((svc, f"abcdefghijkl-{'x' * 40}-{m}-{kind}"[:64]) for m in models
                  for svc, kind in (("sagemaker.amazonaws.com", "sagemaker"), ("states.amazonaws.com", "states"),
                                    ("events.amazonaws.com", "events-start"), ("scheduler.amazonaws.com", "scheduler-start"),
                                    ("lambda.amazonaws.com", "drift"), ("scheduler.amazonaws.com", "drift-schedule")))
    long_scope = DeployScope("aws-us-gov", "us-gov-west-1", MOCK_ACCOUNT, "abcdefghijkl", "x" * 40, "r", PROVIDER_ARN,
                             KEY, BOUNDARY, models=models, passed_roles=roles, subnet_ids=("subnet-0123456789abcdef0",) * 3,
                             preview_role_name="p" * 64, state_bucket="s" * 63)
    sizes = {}
    for concern, statements in deploy_statements(long_scope).items():
        sizes[concern] = len(json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":")))
    assert max(sizes.values()) <= 6144, sizes
    # Ten models at the shipped name lengths fit as well.
    ten = scope_for("prod", models=tuple(f"model-{i}" for i in range(10)), passed_roles=tuple(
        (svc, f"mlops-prod-model-{i}-{kind}") for i in range(10)
        for svc, kind in (("sagemaker.amazonaws.com", "sagemaker"), ("states.amazonaws.com", "states"),
                          ("events.amazonaws.com", "events-start"), ("scheduler.amazonaws.com", "scheduler-start"),
                          ("lambda.amazonaws.com", "drift"), ("scheduler.amazonaws.com", "drift-schedule"))))
    assert max(len(json.dumps({"Version": "2012-10-17", "Statement": st}, separators=(",", ":")))
               for st in deploy_statements(ten).values()) <= 6144



@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_the_boundary_leaves_every_stack_role_what_its_own_policies_grant(manifests, stack):
    """A boundary that cut a needed action would break the flow at run time: every Allow of every stack role's
    policies is inside it (for isolated jobs in the stack's subnets, which is all the stack starts)."""
    m = manifests[stack]
    boundary = boundary_of(m)
    star = [{"Effect": "Allow", "Action": "*", "Resource": "*"}]
    ctx = {"sagemaker:NetworkIsolation": "true"}
    inside = [s for s in boundary if s.get("Sid") == "NoSageMakerWorkloadOutsideStackSubnets"]
    if inside:
        ctx["sagemaker:VpcSubnets"] = inside[0]["Condition"]["ForAnyValue:StringNotEquals"]["sagemaker:VpcSubnets"]
    for p in m.of_type("aws:iam/rolePolicy:RolePolicy"):
        if DEPLOY_TYPE in p["urn"]:
            continue
        for s in policy(p)["Statement"]:
            if s["Effect"] != "Allow":
                continue
            for action in s["Action"] if isinstance(s["Action"], list) else [s["Action"]]:
                resource = (s["Resource"] if isinstance(s["Resource"], str) else s["Resource"][0]).replace("*", "x")
                assert allowed(star, action, resource, ctx, boundary=boundary), (p["name"], action)


def test_attacker_cannot_move_a_function_into_another_subnet_nor_change_the_network(prod):
    """The created VPC is the administrator's: CI neither changes it nor puts a function in a subnet outside it."""
    statements = deployed(prod)
    function = f"arn:aws:lambda:us-east-1:{MOCK_ACCOUNT}:function:mlops-prod-churn-drift"
    subnets = only([r for r in prod.of_type("aws:lambda/function:Function") if r["name"] == "drift-churn-function"])["inputs"]["vpcConfig"]["subnetIds"]
    ctx = context("prod", prod)
    assert allowed(statements, "lambda:UpdateFunctionConfiguration", function, {**ctx, "lambda:SubnetIds": subnets})
    for action in ("lambda:UpdateFunctionConfiguration", "lambda:CreateFunction"):
        assert not allowed(statements, action, function, {**ctx, "lambda:SubnetIds": [*subnets, "subnet-0123456789abcdef0"]}), action
    for action, kind in (("ec2:AuthorizeSecurityGroupEgress", "security-group"), ("ec2:CreateRoute", "route-table"),
                         ("ec2:CreateInternetGateway", "internet-gateway"), ("ec2:AttachInternetGateway", "vpc"),
                         ("ec2:CreateNatGateway", "natgateway"), ("ec2:ModifyVpcEndpoint", "vpc-endpoint"),
                         ("ec2:DeleteFlowLogs", "vpc-flow-log")):
        assert not allowed(statements, action, f"arn:aws:ec2:us-east-1:{MOCK_ACCOUNT}:{kind}/x", ctx), action
