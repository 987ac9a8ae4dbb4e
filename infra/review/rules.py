"""The stack's security rules: one rule set, two runners.

``mlops check`` runs them offline on a synth manifest; the Pulumi policy pack in ``policy/`` runs the
same functions during ``pulumi preview``/``up`` (``--policy-pack policy/``). Pure Python, standard
library only, so the policy pack's interpreter can import this module as it is.

A rule looks at one resource record::

    {"type": "aws:s3/bucket:Bucket", "name": "...", "urn": "...", "inputs": {...camelCase...},
     "protect": bool, "property_dependencies": {"bucket": [urn, ...]}  # optional}

and, where it needs to, at the other resources of the stack (a bucket's versioning lives in a separate
``BucketVersioning`` resource, found through its ``bucket`` reference). ``inputs`` are the property
values as the provider receives them. A value Pulumi cannot know yet (during a preview) is
:data:`UNKNOWN`; a rule never reports what it cannot see (``pulumi up`` evaluates again with the
values known).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

Record = dict[str, Any]


class _Unknown:
    """A value only known after an earlier resource is created (a preview of a new stack)."""

    _instance: "_Unknown | None" = None

    def __new__(cls) -> "_Unknown":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()

SEVERITIES = ("low", "medium", "high", "critical")

# --------------------------------------------------------------------------------------------------------------
# Type tokens

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LOGGING = "aws:s3/bucketLogging:BucketLogging"
KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
POLICY_ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)
SAGEMAKER_MODEL = "aws:sagemaker/model:Model"
ENDPOINT_CONFIG = "aws:sagemaker/endpointConfiguration:EndpointConfiguration"
DATA_QUALITY_JOB = "aws:sagemaker/dataQualityJobDefinition:DataQualityJobDefinition"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ROUTE = "aws:ec2/route:Route"
INTERNET_GATEWAY = "aws:ec2/internetGateway:InternetGateway"
INTERNET_GATEWAY_ATTACHMENT = "aws:ec2/internetGatewayAttachment:InternetGatewayAttachment"
EGRESS_ONLY_GATEWAY = "aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
NOTIFICATION = "aws:s3/bucketNotification:BucketNotification"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

# Identity-based policies: the documents that grant a principal permissions (property holding the JSON).
IDENTITY_POLICIES = {ROLE_POLICY: "policy", MANAGED_POLICY: "policy", USER_POLICY: "policy", GROUP_POLICY: "policy"}
# Resource-based policies: who may act on the resource (including a role's trust policy).
RESOURCE_POLICIES = {
    BUCKET_POLICY: "policy",
    TOPIC_POLICY: "policy",
    QUEUE_POLICY: "policy",
    KEY: "policy",
    KEY_POLICY: "policy",
    ROLE: "assumeRolePolicy",
}

# Actions that have no resource type in the Service Authorization Reference: AWS only accepts
# ``"Resource": "*"`` for them, so ``*`` there is not a missing scope. tests/infra/review/test_rules.py checks
# every entry against the IAM definitions shipped with parliament.
ACTIONS_WITHOUT_RESOURCE_TYPES = frozenset(
    {
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:DescribeScalingActivities",
        "application-autoscaling:DescribeScalingPolicies",
        "cloudwatch:PutMetricData",
        "cloudwatch:GetMetricData",
        "cloudwatch:ListMetrics",
        "ec2:DescribeAvailabilityZones",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeFlowLogs",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribePrefixLists",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeVpcs",
        "ecr:GetAuthorizationToken",
        "events:ListRules",
        "kms:ListAliases",
        "kms:ListKeys",
        "logs:CreateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:DescribeLogGroups",
        "logs:DescribeResourcePolicies",
        "logs:GetLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:UpdateLogDelivery",
        "sagemaker:ListEndpointConfigs",
        "sagemaker:ListEndpoints",
        "sagemaker:ListModelPackageGroups",
        "sagemaker:ListModels",
        "sns:GetSubscriptionAttributes",
        "sns:ListTopics",
        "sns:Unsubscribe",
        "states:ListStateMachines",
        "sts:GetCallerIdentity",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "xray:PutTelemetryRecords",
        "xray:PutTraceSegments",
    }
)

# Global condition keys that do not narrow *which* resources a statement reaches.
NON_SCOPING_CONDITION_KEYS = frozenset(
    {
        "aws:securetransport",
        "aws:multifactorauthpresent",
        "aws:multifactorauthage",
        "aws:currenttime",
        "aws:epochtime",
        "aws:useragent",
        "aws:sourceip",
        "aws:tokenissuetime",
        "aws:viaawsservice",
        "aws:requestedregion",
        "aws:calledvia",
        "aws:calledviafirst",
        "aws:calledvialast",
    }
)

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"


# --------------------------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    description: str
    """What must hold, for people (also the policy's description in the pack)."""
    types: tuple[str, ...]
    """The resource types the rule looks at."""
    check: Callable[[Record, "Stack"], Iterable[str]]
    """Yields one message per problem: what is wrong and how to fix it."""
    needs_stack: bool = False
    """True when the rule reads other resources (a stack policy in the pack, not a resource policy)."""

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES, self.severity


@dataclass(frozen=True)
class Violation:
    rule: Rule
    urn: str
    type: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule.severity}] {self.rule.id}: {self.type} {self.name!r}: {self.message}"


class Stack:
    """The resources of one stack, with the joins the rules need."""

    def __init__(self, resources: Iterable[Record]):
        self.resources = [r for r in resources if r.get("custom", True)]
        self._by_type: dict[str, list[Record]] = {}
        for r in self.resources:
            self._by_type.setdefault(r["type"], []).append(r)

    def of_type(self, token: str) -> list[Record]:
        return self._by_type.get(token, [])

    def referencing(self, token: str, prop: str, target: Record) -> list[Record]:
        """Resources of type ``token`` whose ``prop`` points at ``target`` (by value or by dependency)."""
        ids = identities(target)
        found = []
        for r in self.of_type(token):
            deps = (r.get("property_dependencies") or {}).get(prop) or []
            value = inputs(r).get(prop)
            if target.get("urn") in deps or (isinstance(value, str) and value in ids):
                found.append(r)
        return found

    def log_targets(self) -> set[str]:
        """Names and URNs of the buckets that receive S3 server access logs."""
        out: set[str] = set()
        for r in self.of_type(LOGGING):
            value = inputs(r).get("targetBucket")
            if isinstance(value, str):
                out.add(value)
            out.update((r.get("property_dependencies") or {}).get("targetBucket") or [])
        return out


def inputs(r: Record) -> dict[str, Any]:
    value = r.get("inputs")
    return value if isinstance(value, dict) else {}


def identities(r: Record) -> set[str]:
    """The strings other resources use to refer to ``r`` (its physical name, id, ARN)."""
    props = inputs(r)
    out = {str(r["urn"])} if r.get("urn") else set()
    for key in ("bucket", "name", "arn", "id"):
        v = props.get(key)
        if isinstance(v, str) and v:
            out.add(v)
    return out


def known(value: Any) -> bool:
    return value is not UNKNOWN and not _contains_unknown(value)


def _contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_unknown(v) for v in value)
    return False


def truthy(value: Any) -> bool:
    """Pulumi may hand booleans over as strings (``"true"``) in some paths."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def falsy_explicit(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def _dig(value: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(value, dict):
            return None
        value = value.get(p)
    return value


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------------------------------------------
# Policy documents


def policy_document(value: Any) -> dict[str, Any] | None:
    """A policy property (JSON string or dict) as a dict; None when unknown, absent or not a policy."""
    if not known(value) or value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return None
    return value if isinstance(value, dict) else None


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in _as_list(doc.get("Statement")) if isinstance(s, dict)]


def _sid(stmt: dict[str, Any], index: int) -> str:
    return f"statement {stmt['Sid']!r}" if stmt.get("Sid") else f"statement #{index + 1}"


def _condition_keys(stmt: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """Condition key (lower-case) → (operator, value)."""
    out: dict[str, tuple[str, Any]] = {}
    for op, block in (stmt.get("Condition") or {}).items():
        if isinstance(block, dict):
            for key, value in block.items():
                out[key.lower()] = (op, value)
    return out


def _has_scoping_condition(stmt: dict[str, Any]) -> bool:
    return any(k not in NON_SCOPING_CONDITION_KEYS for k in _condition_keys(stmt))


def _action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def _is_wildcard_action(action: str) -> bool:
    return action == "*" or bool(re.fullmatch(r"[a-z0-9-]+:\*", action, flags=re.IGNORECASE))


def _is_unscoped_resource(resource: str) -> bool:
    """``*``, or an ARN whose resource part names no particular resource (``arn:aws:s3:::*``, ``role/*``)."""
    if resource == "*":
        return True
    parts = resource.split(":", 5)
    if len(parts) < 6:
        return False
    if parts[2] == "s3":  # the resource part is a bucket name (and object key)
        return parts[5] in ("*", "*/*")
    return bool(re.fullmatch(r"([A-Za-z-]+[/:])?\*(/\*)?", parts[5]))


def _principal_is_public(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any(v == "*" or (isinstance(v, list) and "*" in v) for v in principal.values())
    return False


# --------------------------------------------------------------------------------------------------------------
# Rules: S3 buckets (joined with their configuration resources)


def _bucket_children(stack: Stack, bucket: Record, token: str) -> list[Record]:
    return stack.referencing(token, "bucket", bucket)


def _is_log_target(stack: Stack, bucket: Record) -> bool:
    return bool(identities(bucket) & stack.log_targets())


def check_bucket_public_access(bucket: Record, stack: Stack) -> Iterator[str]:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    blocks = _bucket_children(stack, bucket, PUBLIC_ACCESS_BLOCK)
    if not blocks:
        yield "has no BucketPublicAccessBlock; add one with all four flags true (SecureBucket does)"
        return
    for b in blocks:
        off = [f for f in flags if known(inputs(b).get(f)) and not truthy(inputs(b).get(f))]
        if off:
            yield f"public access block {b['name']!r} leaves {', '.join(off)} off; set all four flags to true"


def check_bucket_owner_enforced(bucket: Record, stack: Stack) -> Iterator[str]:
    controls = _bucket_children(stack, bucket, OWNERSHIP)
    modes = [_dig(inputs(c), "rule", "objectOwnership") for c in controls]
    if any(not known(m) for m in modes):
        return
    if "BucketOwnerEnforced" not in modes:
        yield (
            "object ownership is not BucketOwnerEnforced (ACLs stay active); add BucketOwnershipControls "
            "with rule.objectOwnership = BucketOwnerEnforced"
        )


def check_bucket_kms_encrypted(bucket: Record, stack: Stack) -> Iterator[str]:
    configs = _bucket_children(stack, bucket, ENCRYPTION)
    if not configs:
        yield "has no default encryption; add BucketServerSideEncryptionConfiguration with aws:kms and the stack key"
        return
    log_target = _is_log_target(stack, bucket)
    for c in configs:
        for rule in _as_list(inputs(c).get("rules")):
            default = _dig(rule, "applyServerSideEncryptionByDefault") or {}
            algorithm, key = default.get("sseAlgorithm"), default.get("kmsMasterKeyId")
            if not known(algorithm) or not known(key):
                continue
            if algorithm in ("aws:kms", "aws:kms:dsse"):
                if not key:
                    yield (
                        f"encryption {c['name']!r} uses aws:kms without kmsMasterKeyId (the AWS-managed key, whose "
                        "policy you cannot scope); set kmsMasterKeyId to the stack key"
                    )
            elif not (algorithm == "AES256" and log_target):
                # S3 server access logging cannot deliver to an SSE-KMS bucket: SSE-S3 is the only choice there.
                yield f"encryption {c['name']!r} uses {algorithm}; use aws:kms with the stack key"


def _denies_insecure_transport(stmt: dict[str, Any], bucket_names: set[str]) -> bool:
    if stmt.get("Effect") != "Deny" or not _principal_is_public(stmt.get("Principal")):
        return False
    if not any(_action_matches(a, "s3:GetObject") and _action_matches(a, "s3:PutBucketPolicy") for a in _as_list(stmt.get("Action"))):
        return False
    cond = _condition_keys(stmt).get("aws:securetransport")
    if cond is None or cond[0] != "Bool" or str(_as_list(cond[1])[0]).lower() != "false":
        return False
    resources = [r for r in _as_list(stmt.get("Resource")) if isinstance(r, str)]
    if not bucket_names:
        return True
    # The deny must cover the bucket itself and every object in it.
    for name in bucket_names:
        bucket_arn = f"arn:aws:s3:::{name}"
        covers = lambda arn: any(fnmatch.fnmatchcase(arn, re.sub(r"^arn:aws[a-z-]*:", "arn:aws:", r)) for r in resources)
        if covers(bucket_arn) and covers(f"{bucket_arn}/some-object"):
            return True
    return False


def check_bucket_tls_only(bucket: Record, stack: Stack) -> Iterator[str]:
    policies = _bucket_children(stack, bucket, BUCKET_POLICY)
    if any(not known(inputs(p).get("policy")) for p in policies):
        return
    docs = [policy_document(inputs(p).get("policy")) for p in policies]
    name = inputs(bucket).get("bucket")
    names = {name} if isinstance(name, str) else set()
    if not any(_denies_insecure_transport(s, names) for d in docs if d for s in statements(d)):
        yield (
            "no bucket policy denies requests without TLS; add a Deny on s3:* for the bucket and its objects "
            "when aws:SecureTransport is false (components.security.iam.deny_insecure_transport)"
        )


def check_bucket_versioned(bucket: Record, stack: Stack) -> Iterator[str]:
    statuses = [_dig(inputs(v), "versioningConfiguration", "status") for v in _bucket_children(stack, bucket, VERSIONING)]
    if any(not known(s) for s in statuses):
        return
    if "Enabled" not in statuses:
        yield "versioning is not enabled; add BucketVersioning with versioningConfiguration.status = Enabled"


def check_bucket_lifecycle(bucket: Record, stack: Stack) -> Iterator[str]:
    configs = _bucket_children(stack, bucket, LIFECYCLE)
    rules = [r for c in configs for r in _as_list(inputs(c).get("rules")) if isinstance(r, dict)]
    if any(not known(r) for r in rules):
        return
    enabled = [r for r in rules if r.get("status") == "Enabled"]
    if not any(r.get("noncurrentVersionExpiration") for r in enabled):
        yield (
            "no enabled lifecycle rule expires noncurrent versions (a versioned bucket then grows forever); add one "
            "with noncurrentVersionExpiration"
        )
    if not any(r.get("abortIncompleteMultipartUpload") for r in enabled):
        yield "no enabled lifecycle rule aborts incomplete multipart uploads; add one with abortIncompleteMultipartUpload"


def check_bucket_access_logs(bucket: Record, stack: Stack) -> Iterator[str]:
    if _is_log_target(stack, bucket):
        return  # the access-log bucket itself: logging it to itself would log its own log deliveries forever
    loggings = _bucket_children(stack, bucket, LOGGING)
    if not any(inputs(l).get("targetBucket") for l in loggings):
        yield "server access logs are off; add BucketLogging with a targetBucket (the stack's logs bucket)"


# --------------------------------------------------------------------------------------------------------------
# Rules: keys, topics, queues, log groups, alarms


def check_key_rotation(key: Record, _: Stack) -> Iterator[str]:
    props = inputs(key)
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec != "SYMMETRIC_DEFAULT" or not known(props.get("enableKeyRotation")):
        return  # AWS rotates only symmetric encryption keys
    if not truthy(props.get("enableKeyRotation")):
        yield "automatic rotation is off; set enableKeyRotation = true"


def check_topic_encrypted(topic: Record, _: Stack) -> Iterator[str]:
    key = inputs(topic).get("kmsMasterKeyId")
    if known(key) and not key:
        yield "is not encrypted at rest; set kmsMasterKeyId to the stack key"


def check_queue_encrypted(queue: Record, _: Stack) -> Iterator[str]:
    props = inputs(queue)
    if not known(props.get("kmsMasterKeyId")) or props.get("kmsMasterKeyId"):
        return
    if falsy_explicit(props.get("sqsManagedSseEnabled")):
        yield "is not encrypted at rest; set kmsMasterKeyId to the stack key"


def check_log_group(group: Record, _: Stack) -> Iterator[str]:
    props = inputs(group)
    if known(props.get("kmsKeyId")) and not props.get("kmsKeyId"):
        yield "is not encrypted with a customer key; set kmsKeyId to the stack key"
    retention = props.get("retentionInDays")
    if known(retention) and not retention:
        yield "keeps events forever; set retentionInDays"


def check_alarm(alarm: Record, _: Stack) -> Iterator[str]:
    props = inputs(alarm)
    if falsy_explicit(props.get("actionsEnabled")):
        yield "has actionsEnabled = false; an alarm nobody hears is not monitoring"
    actions = props.get("alarmActions")
    if known(actions) and not actions:
        yield "has no alarmActions; send it to the stack's notification topic"
    queries = props.get("metricQueries")
    if queries and known(queries):
        for q in _as_list(queries):
            metric = _dig(q, "metric")
            if isinstance(metric, dict) and not metric.get("dimensions"):
                yield f"metric query {q.get('id')!r} has no dimensions; it watches no particular resource"
    elif props.get("metricName") is not None and known(props.get("dimensions")) and not props.get("dimensions"):
        yield "has no dimensions; it watches no particular resource (set dimensions, e.g. EndpointName)"


# --------------------------------------------------------------------------------------------------------------
# Rules: IAM


def _identity_allows(r: Record, stack: "Stack | None" = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, statement) of every Allow statement of ``r``'s identity documents (see :func:`_identity_documents`)."""
    for doc in _identity_documents(r, stack):
        for i, s in enumerate(statements(doc)):
            if s.get("Effect") == "Allow":
                yield i, s


def _identity_documents(r: Record, stack: "Stack | None" = None) -> Iterator[dict[str, Any]]:
    """The documents that grant ``r``'s principals permissions. A managed policy used as a permissions
    boundary grants nothing (it is a ceiling): its own rule (iam-boundary-blocks-escalation) reads it."""
    if stack is not None and r["type"] == MANAGED_POLICY and is_boundary(stack, r):
        return
    if r["type"] in IDENTITY_POLICIES:
        doc = policy_document(inputs(r).get(IDENTITY_POLICIES[r["type"]]))
        if doc is not None:
            yield doc
    elif r["type"] == ROLE:
        for inline in _as_list(inputs(r).get("inlinePolicies")):
            doc = policy_document(_dig(inline, "policy"))
            if doc is not None:
                yield doc


def check_no_wildcard_actions(r: Record, stack: Stack) -> Iterator[str]:
    for i, s in _identity_allows(r, stack):
        if "NotAction" in s:
            yield f"{_sid(s, i)} allows NotAction (everything but a list); list the actions it needs"
        wild = [a for a in _as_list(s.get("Action")) if isinstance(a, str) and _is_wildcard_action(a)]
        if wild:
            yield f"{_sid(s, i)} allows {', '.join(wild)}; list the actions it needs"


def check_no_unconstrained_resources(r: Record, stack: Stack) -> Iterator[str]:
    for i, s in _identity_allows(r, stack):
        if "NotResource" in s:
            yield f"{_sid(s, i)} uses NotResource; name the resources it applies to"
            continue
        unscoped = [x for x in _as_list(s.get("Resource")) if isinstance(x, str) and _is_unscoped_resource(x)]
        actions = [a for a in _as_list(s.get("Action")) if isinstance(a, str)]
        if _new_interface_in_named_subnets(actions, _as_list(s.get("Resource"))):
            unscoped = [x for x in unscoped if not x.endswith(":network-interface/*")]
        if not unscoped or _has_scoping_condition(s):
            continue
        scopable = [a for a in actions if a not in ACTIONS_WITHOUT_RESOURCE_TYPES]
        if scopable:
            yield (
                f"{_sid(s, i)} grants {', '.join(scopable)} on {', '.join(unscoped)}; these actions accept "
                "resource ARNs: name the resources (or add a condition that scopes them, e.g. aws:ResourceTag)"
            )


ECR_PULL_ACTIONS = ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability")
_ECR_REPOSITORY = re.compile(r"^arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository/[a-z0-9][a-z0-9._/-]*$")


def check_ecr_pulls_scoped(r: Record, stack: Stack) -> Iterator[str]:
    """Image pulls name each repository (a model role pulls its own images and the platform's, no other)."""
    for i, s in _identity_allows(r, stack):
        actions = [a for a in _as_list(s.get("Action")) if isinstance(a, str)]
        pulls = [a for a in actions if any(_action_matches(a, p) for p in ECR_PULL_ACTIONS)]
        if not pulls:
            continue
        loose = [x for x in _as_list(s.get("Resource")) if isinstance(x, str) and not _ECR_REPOSITORY.match(x)]
        if loose or "NotResource" in s:
            yield (
                f"{_sid(s, i)} lets {', '.join(pulls)} pull from {', '.join(loose) or 'NotResource'}; name each "
                "repository ARN (arn:aws:ecr:<region>:<account>:repository/<name>) the role's images live in"
            )


def _new_interface_in_named_subnets(actions: list[str], resources: list[Any]) -> bool:
    """``ec2:CreateNetworkInterface`` on ``network-interface/*`` plus named subnets: the interface does not exist
    before the call, the subnets scope it (the EC2 User Guide's example policy for this)."""
    subnets = [r for r in resources if isinstance(r, str) and ":subnet/" in r and not r.endswith("/*")]
    return actions == ["ec2:CreateNetworkInterface"] and bool(subnets)


def _linked(stack: Stack, token: str, prop: str, target: Record) -> list[Record]:
    """Resources of ``token`` whose ``prop`` points at ``target``, by value or by property dependency."""
    return stack.referencing(token, prop, target)


def _internet_route(route: dict[str, Any]) -> bool:
    gateway = str(route.get("gatewayId") or "")
    return gateway.startswith(("igw-", "eigw-")) or bool(route.get("natGatewayId") or route.get("egressOnlyGatewayId"))


def check_vpc_private(vpc: Record, stack: Stack) -> Iterator[str]:
    for token in (INTERNET_GATEWAY, INTERNET_GATEWAY_ATTACHMENT, EGRESS_ONLY_GATEWAY):
        for gw in _linked(stack, token, "vpcId", vpc):
            yield f"{token.rsplit(':', 1)[1]} {gw['name']!r} gives the VPC a way to the internet; remove it (use VPC endpoints)"
    subnets = _linked(stack, SUBNET, "vpcId", vpc)
    for subnet in subnets:
        if truthy(inputs(subnet).get("mapPublicIpOnLaunch")):
            yield f"subnet {subnet['name']!r} gives instances public IPs (mapPublicIpOnLaunch); set it false"
        for nat in _linked(stack, NAT_GATEWAY, "subnetId", subnet):
            yield f"NAT gateway {nat['name']!r} in subnet {subnet['name']!r} lets the VPC reach the internet; remove it"
    for table in _linked(stack, ROUTE_TABLE, "vpcId", vpc):
        routes = [r for r in _as_list(inputs(table).get("routes")) if isinstance(r, dict)]
        routes += [inputs(r) for r in _linked(stack, ROUTE, "routeTableId", table)]
        if any(_internet_route(r) for r in routes):
            yield f"route table {table['name']!r} routes to an internet or NAT gateway; private subnets route only locally and to endpoints"
    logs = [f for f in _linked(stack, FLOW_LOG, "vpcId", vpc) if str(inputs(f).get("trafficType", "")).upper() == "ALL"]
    if not logs:
        yield "no flow log records ALL traffic of the VPC; add an aws.ec2.FlowLog (traffic_type ALL) to an encrypted log group"


def check_passrole_conditioned(r: Record, stack: Stack) -> Iterator[str]:
    for i, s in _identity_allows(r, stack):
        if not any(isinstance(a, str) and _action_matches(a, "iam:PassRole") for a in _as_list(s.get("Action"))):
            continue
        if "iam:passedtoservice" not in _condition_keys(s):
            yield (
                f"{_sid(s, i)} allows iam:PassRole without an iam:PassedToService condition; add "
                "StringEquals iam:PassedToService = the one service that needs the role"
            )


def check_no_admin_policies(r: Record, _: Stack) -> Iterator[str]:
    props = inputs(r)
    arns = [props.get("policyArn")] if r["type"] in POLICY_ATTACHMENTS else _as_list(props.get("managedPolicyArns"))
    for arn in arns:
        if isinstance(arn, str) and re.search(r":policy/(.*/)?(AdministratorAccess|PowerUserAccess|IAMFullAccess|[A-Za-z0-9]*FullAccess)$", arn):
            yield f"attaches {arn.rsplit('/', 1)[-1]}; grant the actions the role needs in a RolePolicy instead"


def check_role_policies_as_resources(r: Record, _: Stack) -> Iterator[str]:
    props = inputs(r)
    if props.get("inlinePolicies"):
        yield "declares inlinePolicies on the role; use aws.iam.RolePolicy resources (one per concern) instead"
    if props.get("managedPolicyArns"):
        yield "declares managedPolicyArns on the role; use RolePolicy (or RolePolicyAttachment) resources instead"


def check_web_identity_trust(role: Record, _: Stack) -> Iterator[str]:
    doc = policy_document(inputs(role).get("assumeRolePolicy"))
    if doc is None:
        return
    for i, s in enumerate(statements(doc)):
        actions = [a for a in _as_list(s.get("Action")) if isinstance(a, str)]
        if s.get("Effect") != "Allow" or not any(_action_matches(a, "sts:AssumeRoleWithWebIdentity") for a in actions):
            continue
        conds = _condition_keys(s)
        federated = " ".join(str(p) for p in _as_list(_dig(s, "Principal", "Federated")))
        if not any(k.endswith(":aud") for k in conds):
            yield f"{_sid(s, i)} trusts a web identity without an audience (:aud) condition; require the expected aud"
        if GITHUB_OIDC_HOST in federated:
            aud = conds.get(f"{GITHUB_OIDC_HOST}:aud")
            sub = conds.get(f"{GITHUB_OIDC_HOST}:sub")
            if aud is None or aud[0] != "StringEquals" or _as_list(aud[1]) != ["sts.amazonaws.com"]:
                yield f"{_sid(s, i)} must require StringEquals {GITHUB_OIDC_HOST}:aud = sts.amazonaws.com"
            if sub is None or sub[0] != "StringEquals" or any(any(c in str(v) for c in "*?") for v in _as_list(sub[1])):
                yield (
                    f"{_sid(s, i)} must pin {GITHUB_OIDC_HOST}:sub with StringEquals to "
                    "repo:<owner>/<repo>:environment:<env> (no wildcards: any branch or fork could assume the role)"
                )


def check_resource_policy_not_public(r: Record, _: Stack) -> Iterator[str]:
    doc = policy_document(inputs(r).get(RESOURCE_POLICIES[r["type"]]))
    if doc is None:
        return
    for i, s in enumerate(statements(doc)):
        if s.get("Effect") == "Allow" and _principal_is_public(s.get("Principal")) and not _has_scoping_condition(s):
            yield (
                f"{_sid(s, i)} allows any principal (\"*\") without a condition that narrows it; name the principals "
                "or condition on aws:SourceAccount / aws:PrincipalOrgID"
            )


def is_boundary(stack: Stack, policy: Record) -> bool:
    """Whether some role of the stack carries ``policy`` as its permissions boundary."""
    name = inputs(policy).get("name")
    for role in stack.of_type(ROLE):
        value = inputs(role).get("permissionsBoundary")
        if isinstance(name, str) and isinstance(value, str) and value.endswith(f":policy/{name}"):
            return True
        deps = (role.get("property_dependencies") or {}).get("permissionsBoundary") or []
        if policy.get("urn") in deps:
            return True
    return False


def _trust_kinds(role: Record) -> set[str]:
    """'web-identity' and/or 'service' and/or 'aws': who the role's trust policy lets in."""
    doc = policy_document(inputs(role).get("assumeRolePolicy"))
    kinds: set[str] = set()
    for s in statements(doc or {}):
        principal = s.get("Principal")
        if isinstance(principal, dict):
            kinds |= {"web-identity" if k == "Federated" else k.lower() for k in principal}
    return kinds


def _github_subjects(role: Record) -> list[str]:
    doc = policy_document(inputs(role).get("assumeRolePolicy"))
    out = []
    for s in statements(doc or {}):
        cond = _condition_keys(s).get(f"{GITHUB_OIDC_HOST}:sub")
        if cond:
            out += [str(v) for v in _as_list(cond[1])]
    return out


def check_roles_bounded(role: Record, _: Stack) -> Iterator[str]:
    props = inputs(role)
    if not known(props.get("assumeRolePolicy")) or not known(props.get("permissionsBoundary")):
        return
    if _trust_kinds(role) == {"web-identity"}:
        return  # the deploy identity: applied by an administrator, its own denies stop escalation
    if not props.get("permissionsBoundary"):
        yield (
            "has no permissionsBoundary; give every stack role the stack's boundary (Platform.boundary_arn), which "
            "denies IAM writes, role assumption and un-isolated SageMaker jobs"
        )


def _denies(stmts: list[dict[str, Any]], action: str, unconditioned: bool = True) -> bool:
    return any(
        s.get("Effect") == "Deny"
        and any(isinstance(a, str) and _action_matches(a, action) for a in _as_list(s.get("Action")))
        and (not unconditioned or not s.get("Condition"))
        for s in stmts
    )


BOUNDARY_MUST_DENY = (
    "iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary", "iam:CreatePolicyVersion",
    "sts:AssumeRole",
)


def check_boundary(policy: Record, stack: Stack) -> Iterator[str]:
    if not is_boundary(stack, policy):
        return
    doc = policy_document(inputs(policy).get("policy"))
    if doc is None:
        return
    stmts = statements(doc)
    missing = [a for a in BOUNDARY_MUST_DENY if not _denies(stmts, a)]
    if missing:
        yield f"is a permissions boundary that does not deny {', '.join(missing)}; a bounded role could escalate through them"
    isolation = [
        s for s in stmts
        if s.get("Effect") == "Deny"
        and any(_action_matches(a, "sagemaker:CreateTrainingJob") for a in _as_list(s.get("Action")) if isinstance(a, str))
        and "sagemaker:networkisolation" in _condition_keys(s)
    ]
    if not isolation:
        yield (
            "is a permissions boundary that lets bounded roles create SageMaker jobs without network isolation; deny "
            "sagemaker:Create*Job/CreateModel with BoolIfExists sagemaker:NetworkIsolation = false"
        )


# Writes that create or re-trust principals, or move boundaries: never conditionable to safety.
UNBOUNDABLE_IAM_WRITES = (
    "iam:UpdateAssumeRolePolicy", "iam:DeleteRolePermissionsBoundary", "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion", "iam:CreateUser", "iam:CreateAccessKey",
)
BOUNDABLE_IAM_WRITES = ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary")


def check_role_writes_bounded(r: Record, stack: Stack) -> Iterator[str]:
    for i, s in _identity_allows(r, stack):
        actions = [a for a in _as_list(s.get("Action")) if isinstance(a, str)]
        bad = sorted({w for a in actions for w in UNBOUNDABLE_IAM_WRITES if _action_matches(a, w)})
        if bad:
            yield (
                f"{_sid(s, i)} allows {', '.join(bad)}: a principal with it can trust anyone or lift its own "
                "limits; leave role trust and policy versions to an administrator"
            )
        needs = sorted({w for a in actions for w in BOUNDABLE_IAM_WRITES if _action_matches(a, w)})
        if needs and "iam:permissionsboundary" not in _condition_keys(s):
            yield (
                f"{_sid(s, i)} allows {', '.join(needs)} without an iam:PermissionsBoundary condition; a role it "
                "writes could be given any permission (condition on the stack's boundary ARN)"
            )


def _is_wild_key(resource: Any) -> bool:
    return isinstance(resource, str) and resource.startswith("arn:") and ":kms:" in resource and "key/" in resource and "*" in resource


def check_kms_by_arn(r: Record, stack: Stack) -> Iterator[str]:
    env = (inputs(r).get("tags") or {}).get("mlops:environment") if isinstance(inputs(r).get("tags"), dict) else None
    for i, s in _identity_allows(r, stack):
        actions = [a for a in _as_list(s.get("Action")) if isinstance(a, str)]
        kms = [a for a in actions if a.lower().startswith("kms:") and a not in ACTIONS_WITHOUT_RESOURCE_TYPES]
        if kms and any(_is_wild_key(x) for x in _as_list(s.get("Resource"))):
            yield (
                f"{_sid(s, i)} grants {', '.join(kms)} on a key wildcard; whoever can tag a key (or match the "
                "condition) takes it over: name the stack key's ARN"
            )
        if env not in (None, "dev") and any(_action_matches(a, "kms:CreateKey") for a in actions):
            yield f"{_sid(s, i)} lets a {env} principal create keys; the stack key is created by an administrator"


def check_key_guarded(key: Record, _: Stack) -> Iterator[str]:
    doc = policy_document(inputs(key).get("policy"))
    if doc is None:
        return
    guarded = set()
    for s in statements(doc):
        if s.get("Effect") != "Deny" or not _principal_is_public(s.get("Principal")):
            continue
        conds = _condition_keys(s)
        if "aws:principalarn" not in conds or not conds["aws:principalarn"][0].startswith("ArnNot"):
            continue
        guarded |= {g for g in ("kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey")
                    for a in _as_list(s.get("Action")) if isinstance(a, str) and _action_matches(a, g)}
    missing = sorted({"kms:ScheduleKeyDeletion", "kms:PutKeyPolicy", "kms:DisableKey"} - guarded)
    if missing:
        yield (
            f"the key policy lets any IAM principal of the account {', '.join(missing)}; deny them to all but the "
            "break-glass principal (Deny, Principal *, ArnNotEquals aws:PrincipalArn)"
        )
    for i, s in enumerate(statements(doc)):
        service = _dig(s, "Principal", "Service")
        if s.get("Effect") == "Allow" and service and not any(k.startswith("kms:encryptioncontext") for k in _condition_keys(s)):
            yield f"{_sid(s, i)} lets {service} use the key for anything it encrypts; bind it with kms:EncryptionContext"


def check_key_events(key: Record, stack: Stack) -> Iterator[str]:
    watched = []
    for rule in stack.of_type(EVENT_RULE):
        pattern = inputs(rule).get("eventPattern")
        if not known(pattern):
            return
        text = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "aws.kms" in text and "ScheduleKeyDeletion" in text and "DisableKey" in text:
            if stack.referencing(EVENT_TARGET, "rule", rule):
                watched.append(rule)
    if not watched:
        yield (
            "no EventBridge rule with a target watches ScheduleKeyDeletion/DisableKey of the key; add one to the "
            "stack topic so someone hears before the data becomes unreadable"
        )


def check_passrole_paired(r: Record, stack: Stack) -> Iterator[str]:
    for doc in _identity_documents(r, stack):
        for i, s in enumerate(statements(doc)):
            if s.get("Effect") != "Allow" or not any(
                isinstance(a, str) and _action_matches(a, "iam:PassRole") for a in _as_list(s.get("Action"))
            ):
                continue
            services = _condition_keys(s).get("iam:passedtoservice")
            if services is not None and len(_as_list(services[1])) > 1:
                yield (
                    f"{_sid(s, i)} passes roles to {len(_as_list(services[1]))} services at once; any of the roles can "
                    "go to any of them (a scheduler-trusted role to Lambda...): one statement per service and its roles"
                )
            wild = [x for x in _as_list(s.get("Resource")) if isinstance(x, str) and "*" in x.split(":role/", 1)[-1]]
            if wild:
                yield f"{_sid(s, i)} passes roles by wildcard ({', '.join(wild)}); name each role"


def check_s3_account_scoped(r: Record, stack: Stack) -> Iterator[str]:
    for i, s in _identity_allows(r, stack):
        actions = [a for a in _as_list(s.get("Action")) if isinstance(a, str)]
        if not any(a.lower().startswith("s3:") for a in actions):
            continue
        wild = [x for x in _as_list(s.get("Resource")) if isinstance(x, str) and x.startswith("arn:")
                and ":s3:::" in x and "*" in x.split(":::", 1)[1].split("/", 1)[0]]
        if wild and "s3:resourceaccount" not in _condition_keys(s):
            yield (
                f"{_sid(s, i)} names buckets by wildcard ({', '.join(wild)}), which also matches buckets of other "
                "accounts; name the exact buckets or condition on s3:ResourceAccount"
            )


ACCOUNT_WIDE_WRITES = ("sns:SetSubscriptionAttributes",)


def check_no_account_wide_writes(r: Record, stack: Stack) -> Iterator[str]:
    for doc in _identity_documents(r, stack):
        for i, s in enumerate(statements(doc)):
            if s.get("Effect") != "Allow" or "*" not in _as_list(s.get("Resource")):
                continue
            bad = [w for w in ACCOUNT_WIDE_WRITES for a in _as_list(s.get("Action")) if isinstance(a, str) and _action_matches(a, w)]
            if bad:
                yield f"{_sid(s, i)} allows {', '.join(sorted(set(bad)))} on every resource of the account; drop it"


def _bucket_role(bucket: Record) -> Any:
    tags = inputs(bucket).get("tags")
    return tags.get("mlops:bucket") if isinstance(tags, dict) else None


def _bucket_policy_statements(stack: Stack, bucket: Record) -> list[dict[str, Any]] | None:
    policies = _bucket_children(stack, bucket, BUCKET_POLICY)
    if any(not known(inputs(p).get("policy")) for p in policies):
        return None
    return [s for p in policies for s in statements(policy_document(inputs(p).get("policy")) or {})]


def check_uploads_use_stack_key(bucket: Record, stack: Stack) -> Iterator[str]:
    if _is_log_target(stack, bucket):
        return
    stmts = _bucket_policy_statements(stack, bucket)
    if stmts is None:
        return
    ok = any(
        s.get("Effect") == "Deny" and any(_action_matches(str(a), "s3:PutObject") for a in _as_list(s.get("Action")))
        and "s3:x-amz-server-side-encryption-aws-kms-key-id" in _condition_keys(s)
        for s in stmts
    )
    if not ok:
        yield (
            "accepts uploads that name SSE-S3 or another key; deny s3:PutObject whose encryption headers name anything "
            "but the stack key (components.security.iam.deny_foreign_encryption)"
        )


def check_artifact_writers(bucket: Record, stack: Stack) -> Iterator[str]:
    if _bucket_role(bucket) != "models":
        return
    stmts = _bucket_policy_statements(stack, bucket)
    if stmts is None:
        return
    restricted = [
        s for s in stmts
        if s.get("Effect") == "Deny" and any(_action_matches(str(a), "s3:PutObject") for a in _as_list(s.get("Action")))
        and str(_condition_keys(s).get("aws:principalarn", ("",))[0]).startswith("ArnNot")
    ]
    if not restricted:
        yield (
            "lets any principal with s3:PutObject replace the code and models the jobs execute (joblib is pickle); "
            "deny PutObject under code/, bootstrap and runs/ to all but their writers (components.security.iam.restrict_writers)"
        )


def _policies_of_role(stack: Stack, role: Record) -> list[Record]:
    out = stack.referencing(ROLE_POLICY, "role", role)
    for att in stack.referencing(ROLE_POLICY_ATTACHMENT, "role", role):
        deps = (att.get("property_dependencies") or {}).get("policyArn") or []
        arn = inputs(att).get("policyArn")
        for p in stack.of_type(MANAGED_POLICY):
            name = inputs(p).get("name")
            if p.get("urn") in deps or (isinstance(arn, str) and isinstance(name, str) and arn.endswith(f"/{name}")):
                out.append(p)
    return out


def _allowed_without_deny(stmts: list[dict[str, Any]], action: str, resource: str) -> bool:
    def hits(s: dict[str, Any]) -> bool:
        acts = [a for a in _as_list(s.get("Action")) if isinstance(a, str)]
        res = [x for x in _as_list(s.get("Resource")) if isinstance(x, str)]
        if "NotResource" in s:
            return any(_action_matches(a, action) for a in acts) and not any(fnmatch.fnmatchcase(resource, x) for x in _as_list(s["NotResource"]))
        return any(_action_matches(a, action) for a in acts) and any(fnmatch.fnmatchcase(resource, x) for x in res)

    allowed = any(s.get("Effect") == "Allow" and hits(s) for s in stmts)
    denied = any(s.get("Effect") == "Deny" and hits(s) and not s.get("Condition") for s in stmts)
    return allowed and not denied


def check_ci_cannot_read_data(role: Record, stack: Stack) -> Iterator[str]:
    if "web-identity" not in _trust_kinds(role):
        return
    stmts = []
    for p in _policies_of_role(stack, role):
        doc = policy_document(inputs(p).get("policy"))
        if doc is None:
            return
        stmts += statements(doc)
    for b in stack.of_type(BUCKET):
        name = inputs(b).get("bucket")
        if _bucket_role(b) not in ("data", "capture", "logs") or not isinstance(name, str):
            continue
        obj = f"arn:aws:s3:::{name}/some/object"
        for action in ("s3:GetObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"):
            if _allowed_without_deny(stmts, action, obj):
                yield (
                    f"the CI role may {action} in the {_bucket_role(b)} bucket {name}; CI deploys data, it never reads or "
                    "destroys it (explicit Deny on data, capture and logs objects)"
                )


def check_preview_role_read_only(role: Record, stack: Stack) -> Iterator[str]:
    if not any(sub.endswith(":pull_request") or ":pull_request:" in sub for sub in _github_subjects(role)):
        return
    if any(s.endswith(":pull_request") is False and ":environment:" in s for s in _github_subjects(role)):
        yield "is trusted both for pull requests and for a deploy environment; give previews their own read-only role"
    if stack.referencing(ROLE_POLICY_ATTACHMENT, "role", role):
        yield "is trusted for pull requests (unreviewed code) and has managed policies attached; previews get read-only state access only"
    for p in stack.referencing(ROLE_POLICY, "role", role):
        doc = policy_document(inputs(p).get("policy"))
        for i, s in enumerate(statements(doc or {})):
            writes = [a for a in _as_list(s.get("Action")) if isinstance(a, str) and s.get("Effect") == "Allow"
                      and a not in ("s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:DeleteObject")]
            if writes:
                yield f"is trusted for pull requests and {_sid(s, i)} allows {', '.join(writes)}; previews read state only"
            if s.get("Effect") == "Allow" and any(a in ("s3:PutObject", "s3:DeleteObject") for a in _as_list(s.get("Action"))):
                if any("/.pulumi/locks/" not in str(x) for x in _as_list(s.get("Resource"))):
                    yield f"is trusted for pull requests and {_sid(s, i)} writes outside the backend's locks"


def _service_grants_without(doc: Any, condition_key: str) -> Iterator[tuple[str, Any]]:
    """(statement label, service principal) of each Allow to a service principal that does not condition on ``condition_key``."""
    for i, s in enumerate(statements(doc or {})):
        if s.get("Effect") == "Allow" and _dig(s, "Principal", "Service") and condition_key not in _condition_keys(s):
            yield _sid(s, i), _dig(s, "Principal", "Service")


def check_service_trust_source_account(role: Record, _: Stack) -> Iterator[str]:
    for label, service in _service_grants_without(policy_document(inputs(role).get("assumeRolePolicy")), "aws:sourceaccount"):
        yield f"{label} lets {service} assume the role on anyone's behalf; condition on aws:SourceAccount (confused deputy)"


def check_topic_publishers(policy: Record, _: Stack) -> Iterator[str]:
    for label, service in _service_grants_without(policy_document(inputs(policy).get("policy")), "aws:sourcearn"):
        yield f"{label} lets every {service} source of the account publish; condition on aws:SourceArn (the stack's alarms and rules)"


def check_bucket_eventbridge(bucket: Record, stack: Stack) -> Iterator[str]:
    notes = _bucket_children(stack, bucket, NOTIFICATION)
    if any(not known(inputs(n).get("eventbridge")) for n in notes):
        return
    if not any(truthy(inputs(n).get("eventbridge")) for n in notes):
        yield "sends no EventBridge notifications; add BucketNotification with eventbridge = true (audit and triggers)"


def check_capture_expires(bucket: Record, stack: Stack) -> Iterator[str]:
    if _bucket_role(bucket) != "capture":
        return
    rules_ = [r for c in _bucket_children(stack, bucket, LIFECYCLE) for r in _as_list(inputs(c).get("rules")) if isinstance(r, dict)]
    if not any(r.get("status") == "Enabled" and _dig(r, "expiration", "days") for r in rules_):
        yield "keeps captured customer payloads forever; add a lifecycle rule that expires them (storage.capture_expiration_days)"


def check_prod_log_retention(group: Record, _: Stack) -> Iterator[str]:
    props = inputs(group)
    tags = props.get("tags") if isinstance(props.get("tags"), dict) else {}
    retention = props.get("retentionInDays")
    if tags.get("mlops:environment") == "prod" and known(retention) and retention and float(retention) < 365:
        yield f"keeps prod logs {int(float(retention))} days; prod keeps logs at least 365 days (Security Hub CloudWatch.16)"


# --------------------------------------------------------------------------------------------------------------
# Rules: SageMaker and Step Functions


def check_model_network_isolation(model: Record, _: Stack) -> Iterator[str]:
    if model["type"] == STATE_MACHINE:  # models the continuous-training flow creates at run time
        for state_name, api, params in sagemaker_tasks(model):
            if api.lower() == "createmodel" and _path_state(params, ("EnableNetworkIsolation",)) != "dynamic" and not truthy(
                _dig(params, "EnableNetworkIsolation")
            ):
                yield f"state {state_name!r} (createModel) does not set EnableNetworkIsolation = true"
        return
    value = inputs(model).get("enableNetworkIsolation")
    if known(value) and not truthy(value):
        yield "is not network-isolated; set enableNetworkIsolation = true (the container then cannot call out)"


def check_endpoint_config_encrypted(config: Record, _: Stack) -> Iterator[str]:
    if config["type"] == STATE_MACHINE:  # configurations the continuous-training flow creates at run time
        for state_name, api, params in sagemaker_tasks(config):
            if api.lower() != "createendpointconfig":
                continue
            variants = _dig(params, "ProductionVariants")
            serverless = isinstance(variants, list) and bool(variants) and all(_dig(v, "ServerlessConfig") for v in variants)
            if _path_state(params, ("KmsKeyId",)) == "missing" and not serverless:
                yield f"state {state_name!r} (createEndpointConfig) does not set KmsKeyId; pass the stack key"
            capture = _dig(params, "DataCaptureConfig")
            if isinstance(capture, dict) and capture.get("EnableCapture") is not False and _path_state(params, ("DataCaptureConfig", "KmsKeyId")) == "missing":
                yield f"state {state_name!r} (createEndpointConfig) captures data without DataCaptureConfig.KmsKeyId"
        return
    props = inputs(config)
    variants = [v for v in _as_list(props.get("productionVariants")) if isinstance(v, dict)]
    # Serverless variants have no storage volume, and SageMaker refuses KmsKeyId for them.
    all_serverless = bool(variants) and all(v.get("serverlessConfig") for v in variants)
    if known(props.get("kmsKeyArn")) and not props.get("kmsKeyArn") and not all_serverless:
        yield "does not encrypt the instances' storage volumes; set kmsKeyArn to the stack key"
    capture = props.get("dataCaptureConfig")
    if isinstance(capture, dict) and capture.get("enableCapture") is not False and known(capture.get("kmsKeyId")) and not capture.get("kmsKeyId"):
        yield "captures requests and responses without a KMS key; set dataCaptureConfig.kmsKeyId to the stack key"


def check_monitoring_job_encrypted(job: Record, _: Stack) -> Iterator[str]:
    props = inputs(job)
    volume = _dig(props, "jobResources", "clusterConfig", "volumeKmsKeyId")
    output = _dig(props, "dataQualityJobOutputConfig", "kmsKeyId")
    if known(volume) and not volume:
        yield "does not encrypt its processing volume; set jobResources.clusterConfig.volumeKmsKeyId"
    if known(output) and not output:
        yield "does not encrypt its reports; set dataQualityJobOutputConfig.kmsKeyId"


# SageMaker job-creating API → the parameter paths that must carry a KMS key.
SAGEMAKER_JOB_KMS_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "createtrainingjob": (("ResourceConfig", "VolumeKmsKeyId"), ("OutputDataConfig", "KmsKeyId")),
    "createprocessingjob": (("ProcessingResources", "ClusterConfig", "VolumeKmsKeyId"), ("ProcessingOutputConfig", "KmsKeyId")),
    "createtransformjob": (("TransformResources", "VolumeKmsKeyId"), ("TransformOutput", "KmsKeyId")),
    "createhyperparametertuningjob": (
        ("TrainingJobDefinition", "ResourceConfig", "VolumeKmsKeyId"),
        ("TrainingJobDefinition", "OutputDataConfig", "KmsKeyId"),
    ),
}


def _task_states(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in (states or {}).items():
        if not isinstance(state, dict):
            continue
        if state.get("Type") == "Task":
            yield name, state
        for branch in _as_list(state.get("Branches")):
            yield from _task_states(_dig(branch, "States") or {})
        for key in ("ItemProcessor", "Iterator"):
            yield from _task_states(_dig(state, key, "States") or {})


def _path_state(params: Any, path: tuple[str, ...]) -> str:
    """'set', 'missing' or 'dynamic' (supplied at run time through a JSONPath / JSONata expression)."""
    node = params
    for part in path:
        if not isinstance(node, dict):
            return "missing"
        if f"{part}.$" in node:
            return "dynamic"
        if isinstance(node.get(part), str) and node[part].startswith("{%"):
            return "dynamic"
        node = node.get(part)
    return "set" if node else "missing"


def sagemaker_tasks(machine: Record) -> Iterator[tuple[str, str, Any]]:
    """(state name, SageMaker API as written, parameters) of each SageMaker task of a state machine."""
    definition = inputs(machine).get("definition")
    if not known(definition) or not definition:
        return
    try:
        doc = json.loads(definition) if isinstance(definition, str) else definition
    except json.JSONDecodeError:
        return
    for state_name, state in _task_states(doc.get("States") or {}):
        m = re.search(r":(?:aws-sdk:)?sagemaker:([A-Za-z]+)", str(state.get("Resource", "")))
        if m:
            yield state_name, m.group(1), state.get("Parameters", state.get("Arguments"))


def check_state_machine_jobs_encrypted(machine: Record, _: Stack) -> Iterator[str]:
    for state_name, api, params in sagemaker_tasks(machine):
        for path in SAGEMAKER_JOB_KMS_PATHS.get(api.lower(), ()):
            if _path_state(params, path) == "missing":
                yield f"state {state_name!r} ({api}) does not set {'.'.join(path)}; pass the stack key"


def check_jobs_encrypted(r: Record, stack: Stack) -> Iterator[str]:
    if r["type"] == STATE_MACHINE:
        yield from check_state_machine_jobs_encrypted(r, stack)
    else:
        yield from check_monitoring_job_encrypted(r, stack)


# SageMaker job-creating API → where its request asks for network isolation.
SAGEMAKER_JOB_ISOLATION_PATHS: dict[str, tuple[str, ...]] = {
    "createtrainingjob": ("EnableNetworkIsolation",),
    "createprocessingjob": ("NetworkConfig", "EnableNetworkIsolation"),
    "createhyperparametertuningjob": ("TrainingJobDefinition", "EnableNetworkIsolation"),
}


def check_state_machine_jobs_isolated(machine: Record, _: Stack) -> Iterator[str]:
    for state_name, api, params in sagemaker_tasks(machine):
        path = SAGEMAKER_JOB_ISOLATION_PATHS.get(api.lower())
        if path is None or _path_state(params, path) == "dynamic":
            continue
        value = params
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if not truthy(value):
            yield (
                f"state {state_name!r} ({api}) does not set {'.'.join(path)} = true; a job that reads the model's data "
                "could send it anywhere (the stack's boundary denies such a job at run time)"
            )


def check_state_machine_logged_traced(machine: Record, _: Stack) -> Iterator[str]:
    props = inputs(machine)
    logging = props.get("loggingConfiguration")
    if known(logging):
        level = _dig(logging, "level") if isinstance(logging, dict) else None
        if level not in ("ALL", "ERROR", "FATAL") or not _dig(logging, "logDestination"):
            yield (
                "execution logging is off; set loggingConfiguration with level ERROR or ALL and a logDestination "
                "(an encrypted log group with retention)"
            )
    tracing = props.get("tracingConfiguration")
    if known(tracing) and not truthy(_dig(tracing, "enabled")):
        yield "X-Ray tracing is off; set tracingConfiguration.enabled = true"


# --------------------------------------------------------------------------------------------------------------
# The rule set

RULES: tuple[Rule, ...] = (
    Rule("s3-public-access-blocked", "critical", "S3 buckets block every form of public access.",
         (BUCKET,), check_bucket_public_access, needs_stack=True),
    Rule("s3-owner-enforced", "high", "S3 buckets disable ACLs (object ownership BucketOwnerEnforced).",
         (BUCKET,), check_bucket_owner_enforced, needs_stack=True),
    Rule("s3-kms-encrypted", "high", "S3 buckets encrypt by default with a customer KMS key (SSE-S3 only for an access-log target).",
         (BUCKET,), check_bucket_kms_encrypted, needs_stack=True),
    Rule("s3-tls-only", "high", "S3 bucket policies deny every request made without TLS.",
         (BUCKET,), check_bucket_tls_only, needs_stack=True),
    Rule("s3-versioned", "medium", "S3 buckets keep object versions.",
         (BUCKET,), check_bucket_versioned, needs_stack=True),
    Rule("s3-lifecycle", "low", "S3 buckets expire noncurrent versions and abort incomplete multipart uploads.",
         (BUCKET,), check_bucket_lifecycle, needs_stack=True),
    Rule("s3-access-logs", "medium", "S3 buckets deliver server access logs (except the log bucket itself).",
         (BUCKET,), check_bucket_access_logs, needs_stack=True),
    Rule("kms-key-rotation", "medium", "KMS keys rotate automatically.", (KEY,), check_key_rotation),
    Rule("sns-encrypted", "high", "SNS topics are encrypted with a KMS key.", (TOPIC,), check_topic_encrypted),
    Rule("sqs-encrypted", "high", "SQS queues are encrypted at rest.", (QUEUE,), check_queue_encrypted),
    Rule("iam-no-wildcard-actions", "critical", "IAM policies allow named actions, never '*' or 'service:*'.",
         (*IDENTITY_POLICIES, ROLE), check_no_wildcard_actions, needs_stack=True),
    Rule("iam-no-unconstrained-resources", "high",
         "IAM policies name their resources wherever AWS accepts resource ARNs for the action.",
         (*IDENTITY_POLICIES, ROLE), check_no_unconstrained_resources, needs_stack=True),
    Rule("iam-passrole-conditioned", "high", "iam:PassRole is always conditioned on iam:PassedToService.",
         (*IDENTITY_POLICIES, ROLE), check_passrole_conditioned, needs_stack=True),
    Rule("iam-no-admin-managed-policies", "critical", "No AdministratorAccess, PowerUserAccess or *FullAccess managed policy.",
         (*POLICY_ATTACHMENTS, ROLE), check_no_admin_policies),
    Rule("iam-role-policies-as-resources", "medium", "Roles get permissions from RolePolicy resources, not inline/managed arguments.",
         (ROLE,), check_role_policies_as_resources),
    Rule("iam-web-identity-trust-scoped", "critical",
         "Web-identity trust requires the audience; GitHub OIDC trust pins the subject to one repository and environment.",
         (ROLE,), check_web_identity_trust),
    Rule("resource-policy-not-public", "critical", "Resource policies never allow '*' without a narrowing condition.",
         tuple(RESOURCE_POLICIES), check_resource_policy_not_public),
    Rule("sagemaker-model-network-isolated", "high",
         "SageMaker models run network-isolated (declared, or created by a state machine).",
         (SAGEMAKER_MODEL, STATE_MACHINE), check_model_network_isolation),
    Rule("sagemaker-endpoint-config-encrypted", "high",
         "SageMaker endpoint configurations (declared, or created by a state machine) encrypt volumes and captured data.",
         (ENDPOINT_CONFIG, STATE_MACHINE), check_endpoint_config_encrypted),
    Rule("sagemaker-jobs-encrypted", "high",
         "SageMaker jobs (started by state machines or monitoring schedules) encrypt volumes and outputs.",
         (STATE_MACHINE, DATA_QUALITY_JOB), check_jobs_encrypted),
    Rule("sfn-logged-traced", "medium", "Step Functions state machines log executions and trace with X-Ray.",
         (STATE_MACHINE,), check_state_machine_logged_traced),
    Rule("logs-encrypted-retained", "medium", "CloudWatch log groups are KMS-encrypted and have a retention.",
         (LOG_GROUP,), check_log_group),
    Rule("cloudwatch-alarm-actionable", "medium", "CloudWatch alarms have actions and dimensions.",
         (METRIC_ALARM,), check_alarm),
)

RULES += (
    Rule("iam-roles-bounded", "critical", "Every stack role (but the administrator-applied deploy identity) carries a permissions boundary.",
         (ROLE,), check_roles_bounded),
    Rule("iam-boundary-blocks-escalation", "critical",
         "A permissions boundary denies IAM writes, role assumption and SageMaker jobs without network isolation.",
         (MANAGED_POLICY,), check_boundary, needs_stack=True),
    Rule("iam-role-writes-bounded", "critical",
         "No policy allows re-trusting roles or policy versions; role creation and policy writes require iam:PermissionsBoundary.",
         (*IDENTITY_POLICIES, ROLE), check_role_writes_bounded, needs_stack=True),
    Rule("kms-keys-by-arn", "critical", "KMS permissions name the key's ARN (no key wildcard); only dev principals may create keys.",
         (*IDENTITY_POLICIES, ROLE), check_kms_by_arn, needs_stack=True),
    Rule("kms-key-deletion-guarded", "high",
         "Key policies deny deletion, disabling and policy changes to all but a break-glass principal; service grants are bound to an encryption context.",
         (KEY, KEY_POLICY), check_key_guarded),
    Rule("kms-key-events-watched", "medium", "An EventBridge rule with a target watches each key's deletion and disabling.",
         (KEY,), check_key_events, needs_stack=True),
    Rule("iam-passrole-paired", "high", "iam:PassRole names each role and passes it to one service per statement.",
         (*IDENTITY_POLICIES, ROLE), check_passrole_paired, needs_stack=True),
    Rule("iam-s3-account-scoped", "medium", "S3 statements name exact buckets or condition on s3:ResourceAccount.",
         (*IDENTITY_POLICIES, ROLE), check_s3_account_scoped, needs_stack=True),
    Rule("iam-no-account-wide-writes", "medium", "No write on every resource of the account for actions without resource types (sns:SetSubscriptionAttributes).",
         (*IDENTITY_POLICIES, ROLE), check_no_account_wide_writes, needs_stack=True),
    Rule("s3-uploads-use-stack-key", "high", "KMS-encrypted buckets refuse uploads that name SSE-S3 or a foreign key.",
         (BUCKET,), check_uploads_use_stack_key, needs_stack=True),
    Rule("s3-artifact-writers-restricted", "high", "The models bucket lets only named principals write code, bootstrap artifacts and run outputs.",
         (BUCKET,), check_artifact_writers, needs_stack=True),
    Rule("ci-cannot-read-data", "high", "A CI (web-identity) role cannot read or permanently delete data, capture or log objects.",
         (ROLE,), check_ci_cannot_read_data, needs_stack=True),
    Rule("ci-preview-role-read-only", "high", "A role trusted for pull requests is not a deploy role and only reads state (and takes the lock).",
         (ROLE,), check_preview_role_read_only, needs_stack=True),
    Rule("iam-service-trust-source-account", "low", "Service trust policies condition on aws:SourceAccount.",
         (ROLE,), check_service_trust_source_account),
    Rule("sns-publishers-scoped", "low", "Topic policies let service principals publish only from named sources (aws:SourceArn).",
         (TOPIC_POLICY,), check_topic_publishers),
    Rule("s3-eventbridge-notifications", "low", "Every bucket sends EventBridge notifications.",
         (BUCKET,), check_bucket_eventbridge, needs_stack=True),
    Rule("s3-capture-expires", "low", "Captured payloads (the capture bucket) expire.",
         (BUCKET,), check_capture_expires, needs_stack=True),
    Rule("sagemaker-jobs-network-isolated", "high",
         "SageMaker training, processing and tuning jobs a state machine starts are network-isolated.",
         (STATE_MACHINE,), check_state_machine_jobs_isolated),
    Rule("vpc-private-with-flow-logs", "high",
         "A VPC the stack creates has no internet, egress-only or NAT gateway, no public subnets or internet routes, "
         "and flow logs of all its traffic.",
         (VPC,), check_vpc_private, needs_stack=True),
    Rule("logs-prod-retention", "medium", "Prod log groups keep events at least 365 days (Security Hub CloudWatch.16).",
         (LOG_GROUP,), check_prod_log_retention),
)

RULES += (
    Rule("ecr-pulls-scoped", "high", "ECR image pulls name each repository (no wildcard): a model role pulls only its images.",
         (*IDENTITY_POLICIES, ROLE), check_ecr_pulls_scoped, needs_stack=True),
)

RULES_BY_ID = {r.id: r for r in RULES}
assert len(RULES_BY_ID) == len(RULES), "rule ids must be unique"


def check_resource(rule: Rule, resource: Record, stack: Stack) -> list[Violation]:
    if resource["type"] not in rule.types:
        return []
    return [
        Violation(rule, str(resource.get("urn", "")), resource["type"], resource["name"], message)
        for message in rule.check(resource, stack)
    ]


def evaluate(resources: Iterable[Record], rules: Iterable[Rule] = RULES) -> list[Violation]:
    """Every violation of ``rules`` in a stack's resources (a manifest's ``resources``)."""
    stack = Stack(resources)
    return [v for rule in rules for r in stack.resources for v in check_resource(rule, r, stack)]
