"""Chains the per-statement linters cannot see: every object write a stack role's own policy allows in the models
bucket must also be allowed by the bucket policy's named-writer denies (else it fails on AWS at run time, as the
CT flow's pending new-data marker once would have)."""

from __future__ import annotations

import fnmatch
import json

import pytest


def _list(v):
    return v if isinstance(v, list) else [v]


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_role_write_in_the_models_bucket_passes_its_named_writer_deny(manifests, stack):
    m = manifests[stack]
    [bucket_policy] = [p for p in m.of_type("aws:s3/bucketPolicy:BucketPolicy") if "models" in p["name"]]
    denies = [s for s in json.loads(bucket_policy["inputs"]["policy"])["Statement"] if s.get("Sid", "").startswith("OnlyNamedWriters")]
    assert denies, "the models bucket names its writers"
    roles = {r["inputs"]["name"]: r for r in m.of_type("aws:iam/role:Role")}
    checked = 0
    for policy in m.of_type("aws:iam/rolePolicy:RolePolicy"):
        role = policy["inputs"]["role"]
        role_arn = f"arn:aws:iam::123456789012:role/{role}"
        for st in json.loads(policy["inputs"]["policy"])["Statement"]:
            if st["Effect"] != "Allow" or not any(fnmatch.fnmatch("s3:PutObject", a) for a in _list(st["Action"])):
                continue
            for resource in _list(st["Resource"]):
                if "-models-" not in resource:
                    continue
                for deny in denies:
                    # A grant inside a named-writer prefix (a broader grant that the deny carves a prefix out of is fine).
                    if fnmatch.fnmatch(resource, deny["Resource"]):
                        allowed = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
                        assert role_arn in allowed or role not in roles, (
                            f"{role} may write {resource} by its policy, but the bucket policy lets only {allowed} write {deny['Resource']}"
                        )
                        checked += 1
    assert checked >= 2, "the flow's run marker and snapshot writes were found and checked"


def test_the_check_finds_a_role_the_bucket_policy_forgets(manifests):
    """The failing case: drop the flow role from the runs/ writers and the check must refuse it."""
    import copy

    m = copy.deepcopy(manifests["prod"])
    [bucket_policy] = [p for p in m.resources if p["type"] == "aws:s3/bucketPolicy:BucketPolicy" and "models" in p["name"]]
    doc = json.loads(bucket_policy["inputs"]["policy"])
    for st in doc["Statement"]:
        if st.get("Sid", "").startswith("OnlyNamedWriters") and st["Resource"].endswith("/churn/runs/*"):
            st["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] = [a for a in st["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] if not a.endswith("-states")]
    bucket_policy["inputs"]["policy"] = json.dumps(doc)
    with pytest.raises(AssertionError, match="mlops-prod-churn-states may write"):
        test_every_role_write_in_the_models_bucket_passes_its_named_writer_deny({"prod": m}, "prod")
