"""The policy pack, run as the Pulumi CLI runs it (`python -m pulumi.policy <engine> policy/`) and asked over gRPC.

No Pulumi CLI here: the test plays the engine's side of the Analyzer protocol. It proves the pack serves
one policy per rule of infra.review.rules, and reports exactly what `mlops check` reports on the same resources.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from infra.review import rules

ROOT = Path(__file__).resolve().parents[1]
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's sentinel for a value known only after an update


@pytest.fixture(scope="module")
def analyzer():
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policy")],
        cwd=ROOT / "policy",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            proc.kill()
            pytest.fail(f"the policy pack did not start:\n{proc.stderr.read()[-3000:]}", pytrace=False)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        yield analyzer_pb2_grpc.AnalyzerStub(channel)
        channel.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def props(inputs: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(inputs)
    return s


def as_resource(r: dict) -> analyzer_pb2.AnalyzerResource:
    deps = {k: analyzer_pb2.AnalyzerPropertyDependencies(urns=v) for k, v in (r.get("property_dependencies") or {}).items()}
    return analyzer_pb2.AnalyzerResource(
        type=r["type"], properties=props(r["inputs"]), urn=r["urn"], name=r["name"],
        options=analyzer_pb2.AnalyzerResourceOptions(protect=r.get("protect", False)), propertyDependencies=deps,
    )


def pack_findings(stub, resources: list[dict]) -> set[tuple[str, str]]:
    """(policy name, URN) of every diagnostic: per-resource analysis of each resource, then the stack analysis."""
    found: set[tuple[str, str]] = set()
    for r in resources:
        response = stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type=r["type"], properties=props(r["inputs"]), urn=r["urn"], name=r["name"],
            options=analyzer_pb2.AnalyzerResourceOptions(protect=r.get("protect", False))))
        found |= {(d.policyName, r["urn"]) for d in response.diagnostics}
    response = stub.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[as_resource(r) for r in resources]))
    found |= {(d.policyName, d.urn) for d in response.diagnostics}
    return found


def custom(manifest) -> list[dict]:
    return [r for r in copy.deepcopy(manifest.resources) if r["custom"]]


def test_the_pack_serves_one_mandatory_policy_per_rule(analyzer):
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == "mlops-stack-guardrails"
    by_name = {p.name: p for p in info.policies}
    assert list(by_name) == [r.id for r in rules.RULES]
    for rule in rules.RULES:
        p = by_name[rule.id]
        assert p.description == rule.description
        assert p.policy_type == (analyzer_pb2.POLICY_TYPE_STACK if rule.needs_stack else analyzer_pb2.POLICY_TYPE_RESOURCE)
        assert analyzer_pb2.PolicySeverity.Name(p.severity) == f"POLICY_SEVERITY_{rule.severity.upper()}"
        assert p.enforcementLevel == analyzer_pb2.MANDATORY  # a violation fails the preview or update


def test_the_pack_and_mlops_check_report_the_same_violations(analyzer, manifests):
    resources = custom(manifests["prod"])
    for r in resources:
        if r["type"] == rules.VERSIONING and "data" in r["name"]:
            r["inputs"]["versioningConfiguration"]["status"] = "Suspended"
        elif r["type"] == rules.KEY:
            r["inputs"]["enableKeyRotation"] = False
        elif r["type"] == rules.SAGEMAKER_MODEL:
            r["inputs"]["enableNetworkIsolation"] = False
        elif r["type"] == rules.METRIC_ALARM and "dimensions" in r["inputs"]:
            r["inputs"]["dimensions"] = {}
    expected = {(v.rule.id, v.urn) for v in rules.evaluate(resources)}
    assert {rule for rule, _ in expected} >= {"s3-versioned", "kms-key-rotation", "sagemaker-model-network-isolated",
                                              "cloudwatch-alarm-actionable"}
    assert pack_findings(analyzer, resources) == expected


def test_a_violation_names_the_resource_and_the_fix(analyzer, manifests):
    resources = [r for r in custom(manifests["dev"]) if r["type"] != rules.VERSIONING or "capture" not in r["name"]]
    response = analyzer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=[as_resource(r) for r in resources]))
    [d] = [d for d in response.diagnostics if d.policyName == "s3-versioned"]
    assert d.urn.endswith("::platform-capture-bucket")
    assert "platform-capture-bucket" in d.message and "status = Enabled" in d.message
    assert d.enforcementLevel == analyzer_pb2.MANDATORY


def test_a_preview_with_unknown_values_is_judged_on_what_is_known(analyzer, manifests):
    """A new stack's preview: the bucket name is unknown, configuration resources depend on the bucket by URN."""
    resources = custom(manifests["dev"])
    bucket = next(r for r in resources if r["type"] == rules.BUCKET and "data" in r["name"])
    name = bucket["inputs"]["bucket"]
    for r in resources:
        if r["inputs"].get("bucket") == name:
            r["inputs"]["bucket"] = UNKNOWN_STRING
            r["property_dependencies"] = {"bucket": [bucket["urn"]]}
    key = next(r for r in resources if r["type"] == rules.KEY)
    key["inputs"]["enableKeyRotation"] = UNKNOWN_STRING
    response = analyzer.Analyze(analyzer_pb2.AnalyzeRequest(type=key["type"], properties=props(key["inputs"]), urn=key["urn"], name=key["name"]))
    assert list(response.diagnostics) == []
    findings = pack_findings(analyzer, resources)
    assert {rule for rule, urn in findings if urn == bucket["urn"]} == set()
    # Still joined by dependency: without its versioning the data bucket is reported.
    resources = [r for r in resources if not (r["type"] == rules.VERSIONING and r.get("property_dependencies"))]
    assert ("s3-versioned", bucket["urn"]) in pack_findings(analyzer, resources)
