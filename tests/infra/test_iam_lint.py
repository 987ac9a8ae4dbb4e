"""Every IAM policy document the shipped stacks synthesize, through parliament (with its community auditors).

Threshold: a finding of severity MEDIUM or above fails, and so do two LOW ones that are never noise
here: UNKNOWN_ACTION/UNKNOWN_PREFIX (a misspelt action grants nothing and hides a missing permission)
and RESOURCE_STAR in an identity policy (Resource "*" for an action that accepts ARNs). The other
LOW findings (Sid style, old versions) say nothing about what a principal can do.

Suppressed, each for a stated reason (:data:`SUPPRESSED`): parliament reads every document as an
identity policy and its IAM data has gaps, so some findings are false for trust or key policies.
"""

from __future__ import annotations

import json
import os
import re
from typing import Callable

import parliament

from components.delivery.identity import DeployScope, deploy_statements, preview_statements, preview_trust_policy, trust_policy
from infra.review import rules

ALWAYS_FAIL = {"UNKNOWN_ACTION", "UNKNOWN_PREFIX"}
FAILING_SEVERITIES = {"MEDIUM", "HIGH", "CRITICAL"}

# (kind of document, finding) → why it is not a problem. kind: identity | trust | resource | key.
Finding = parliament.finding.Finding


def _actions(f: Finding) -> set[str]:
    detail = f.detail if isinstance(f.detail, dict) else {}
    if "actions" in detail:
        return {a.lower() for a in detail["actions"]}
    if isinstance(f.detail, list):
        return {str(d.get("action", "")).lower() for d in f.detail if isinstance(d, dict)}
    return set()


SUPPRESSED: list[tuple[str, str, Callable[[str, Finding, str], bool], str]] = [
    ("trust", "MALFORMED", lambda name, f, text: "neither Resource nor NotResource" in str(f.detail),
     "a trust policy names principals, not resources: it has no Resource element by definition"),
    ("trust", "UNKNOWN_FEDERATION_SOURCE",
     lambda name, f, text: bool(re.match(r"^arn:aws:iam::\d{12}:(oidc-provider|openidconnectprovider)/", str(f.detail))),
     "parliament 1.6 knows SAML providers and four fixed web-identity hosts only; an IAM OIDC provider "
     "(GitHub's) is unknown to it. The synth mock names the provider openidconnectprovider/<name>."),
    ("key", "RESOURCE_STAR", lambda name, f, text: True, 'in a key policy "*" means this key; KMS accepts nothing else'),
    ("key", "PERMISSIONS_MANAGEMENT_ACTIONS", lambda name, f, text: True,
     "the account-root kms:* statement is AWS's default key policy: it hands key administration to IAM"),
    ("key", "UNKNOWN_CONDITION_FOR_ACTION", lambda name, f, text: "kms:EncryptionContext:aws:logs:arn" in str(f.detail),
     "AWS's documented key policy for CloudWatch Logs conditions its statement on the log group ARN"),
    ("key", "MISMATCHED_TYPE", lambda name, f, text: "ArnLike" in str(f.detail),
     "AWS documents ArnLike for kms:EncryptionContext:aws:logs:arn; parliament types the key as String"),
    ("identity", "PERMISSIONS_MANAGEMENT_ACTIONS", lambda name, f, text: name.startswith("deploy-"),
     "the deploy role manages this stack's roles and resource policies by design, scoped to the stack's "
     "names and tag, and denied any change to itself (tests/components/test_deploy_identity.py)"),
    ("identity", "RESOURCE_STAR", lambda name, f, text: name == "platform-boundary",
     "a permissions boundary grants nothing: its Allow of the stack's services is a ceiling that the roles' own, "
     "scoped policies grant within; its denies are what it is for (rule iam-boundary-blocks-escalation)"),
    ("identity", "PERMISSIONS_MANAGEMENT_ACTIONS", lambda name, f, text: name == "platform-boundary",
     "the boundary's Allow names kms:*/s3:* as the ceiling; its Deny of every IAM write is what bounded roles get"),
    ("identity", "PRIVILEGE_ESCALATION", lambda name, f, text: name == "platform-boundary",
     "a boundary cannot escalate: it only limits (and denies every IAM write)"),
    ("identity", "RESOURCE_POLICY_PRIVILEGE_ESCALATION", lambda name, f, text: name == "platform-boundary",
     "a boundary cannot escalate: it only limits"),
    ("identity", "PERMISSIONS_MANAGEMENT_ACTIONS", lambda name, f, text: _actions(f) <= {"kms:creategrant"},
     "kms:CreateGrant conditioned on kms:GrantIsForAWSResource: SageMaker encrypts its volumes with the stack key"),
    ("identity", "PRIVILEGE_ESCALATION", lambda name, f, text: name.startswith("deploy-"),
     "updating the stack's function code is deploying it; the functions run with the stack's roles, which "
     "the deploy role can already write, so nothing outside the stack is reached"),
    ("identity", "RESOURCE_MISMATCH",
     lambda name, f, text: _actions(f) <= {"lambda:invokefunction"} and re.search(r"arn:aws:lambda:[^\"]+:function/", text) is not None,
     "the synth mock names a function arn:aws:lambda:<region>:<account>:function/<name> (AWS: function:<name>); "
     "the statement is built from the function's arn output, which is right on AWS"),
    ("identity", "CREDENTIALS_EXPOSURE", lambda name, f, text: _actions(f) <= {"ecr:getauthorizationtoken"},
     "pulling the framework images needs an ECR token; it carries only the role's ECR rights (the image repositories)"),
    ("identity", "RESOURCE_MISMATCH", lambda name, f, text: _actions(f) <= {"kms:createalias", "kms:updatealias", "kms:deletealias"},
     "an alias call is authorized against the alias and the key; the key is reached by its tag, which an "
     "alias cannot carry, so the two are separate statements"),
    ("identity", "RESOURCE_MISMATCH", lambda name, f, text: _actions(f) <= {"states:listexecutions"},
     "ListExecutions takes a state machine or a map run; parliament reads the two as both required"),
]

# Findings in components other engineers are still writing (reported with the fix); remove when fixed.
KNOWN_OPEN: set[tuple[str, str]] = set()  # findings accepted for now, each with its reason

parliament.override_config(os.path.join(os.path.dirname(parliament.__file__), "community_auditors", "config_override.yaml"))


def documents(manifest) -> list[tuple[str, str, str]]:
    """(kind, resource name, JSON) of every policy document in a manifest."""
    out = []
    for r in manifest.resources:
        token, props = r["type"], r["inputs"]
        if token in rules.IDENTITY_POLICIES and props.get("policy"):
            out.append(("identity", r["name"], props["policy"]))
        elif token == rules.ROLE and props.get("assumeRolePolicy"):
            out.append(("trust", r["name"], props["assumeRolePolicy"]))
        elif token == rules.KEY and props.get("policy"):
            out.append(("key", r["name"], props["policy"]))
        elif token in rules.RESOURCE_POLICIES and props.get("policy"):
            out.append(("resource", r["name"], props["policy"]))
    return out


def failing(kind: str, name: str, text: str) -> list[str]:
    found = []
    for f in parliament.analyze_policy_string(text, include_community_auditors=True).findings:
        f = parliament.enhance_finding(f)
        fails = f.severity in FAILING_SEVERITIES or f.issue in ALWAYS_FAIL or (kind == "identity" and f.issue == "RESOURCE_STAR")
        if not fails or any(k == kind and issue == f.issue and ok(name, f, text) for k, issue, ok, _ in SUPPRESSED):
            continue
        found.append((name, f.issue, f"{kind} policy of {name}: {f.issue} ({f.severity}) {f.detail}"))
    return found


def test_every_policy_document_of_every_shipped_stack_passes_parliament(manifests):
    problems = []
    for manifest in manifests.values():
        docs = documents(manifest)
        assert {kind for kind, _, _ in docs} >= {"identity", "trust", "resource"}, manifest.stack
        problems += [f"{manifest.stack}: {p[2]}" for d in docs for p in failing(*d) if p[:2] not in KNOWN_OPEN]
    assert problems == [], "\n".join(problems)


def test_known_open_findings_are_still_open(manifests):
    found = {p[:2] for m in manifests.values() for d in documents(m) for p in failing(*d)}
    assert KNOWN_OPEN <= found, f"fixed: remove {sorted(KNOWN_OPEN - found)} from KNOWN_OPEN"


def test_the_deploy_identity_documents_pass_as_deployed():
    """With real ARNs (not the synth mock's): the trust policy and every deploy policy, state bucket included."""
    provider = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    assert failing("trust", "deploy-role", json.dumps(trust_policy(provider, "example-org/mlops-stack", "prod"))) == []
    scope = DeployScope("aws", "eu-west-1", "123456789012", "mlops", "prod", "mlops-prod-deploy", provider,
                        "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                        "arn:aws:iam::123456789012:policy/mlops-prod-boundary", models=("churn",),
                        passed_roles=(("sagemaker.amazonaws.com", "mlops-prod-churn-sagemaker"),
                                      ("states.amazonaws.com", "mlops-prod-churn-states")),
                        preview_role_name="mlops-prod-preview", state_bucket="org-state")
    for concern, statements in deploy_statements(scope).items():
        text = json.dumps({"Version": "2012-10-17", "Statement": statements})
        assert failing("identity", f"deploy-{concern}", text) == []
    assert failing("trust", "deploy-preview-role", json.dumps(preview_trust_policy(provider, "example-org/mlops-stack"))) == []
    text = json.dumps({"Version": "2012-10-17", "Statement": preview_statements(scope)})
    assert failing("identity", "deploy-preview-state", text) == []


def test_parliament_fails_what_it_should():
    """The threshold catches a misspelt action and an unneeded Resource "*" (the lint is not a no-op)."""
    text = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]})
    issues = {p[1] for p in failing("identity", "model-x", text)}
    assert issues == {"UNKNOWN_ACTION", "RESOURCE_STAR"}
