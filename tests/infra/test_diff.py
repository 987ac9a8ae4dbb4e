"""`mlops diff` on pairs of manifests: what loses data or weakens a guardrail fails, the rest passes."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from infra.review import rules
from infra.cli.app import app
from infra.review.diff import REPLACE_ON_CHANGE, STATEFUL_TYPES, diff, to_markdown

runner = CliRunner()


@pytest.fixture
def prod(manifests) -> dict:
    """The prod stack's real manifest (protected, object-locked models bucket), as `mlops synth --out` writes it."""
    return copy.deepcopy(manifests["prod"].to_json())


def find(doc: dict, token: str, name_part: str) -> dict:
    matches = [r for r in doc["resources"] if r["type"] == token and name_part in r["name"]]
    assert len(matches) == 1, [r["name"] for r in matches]
    return matches[0]


def run_cli(tmp_path, old: dict, new: dict, *extra: str):
    a, b = tmp_path / "base.json", tmp_path / "head.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    return runner.invoke(app, ["diff", str(a), str(b), *extra])


def test_an_unchanged_stack_has_no_changes(prod, tmp_path):
    report = diff(prod, copy.deepcopy(prod))
    assert report.changes == []
    result = run_cli(tmp_path, prod, prod)
    assert result.exit_code == 0, result.output
    assert "no resource changes" in result.output


def test_a_tag_change_passes(prod, tmp_path):
    new = copy.deepcopy(prod)
    find(new, rules.BUCKET, "data")["inputs"]["tags"]["cost-center"] = "ml-platform"
    report = diff(prod, new)
    [change] = report.changes
    assert (change.kind, change.blocking) == ("update", ())
    assert change.reasons == ("changed: tags",)
    assert run_cli(tmp_path, prod, new).exit_code == 0


def test_a_renamed_bucket_fails(prod, tmp_path):
    new = copy.deepcopy(prod)
    data = find(new, rules.BUCKET, "data")
    data["inputs"]["bucket"] = data["inputs"]["bucket"].replace("-data-", "-datasets-")
    [change] = [c for c in diff(prod, new).changes if c.type == rules.BUCKET]
    assert change.kind == "replace"
    assert any("stateful resource would be replaced (bucket changed)" in b for b in change.blocking)
    result = run_cli(tmp_path, prod, new)
    assert result.exit_code == 1
    assert "BLOCKING" in result.output


def test_a_bucket_whose_urn_changes_is_deleted_and_created(prod):
    """Renaming the Pulumi resource (or moving it to another parent) without an alias deletes the bucket."""
    new = copy.deepcopy(prod)
    data = find(new, rules.BUCKET, "data")
    data["urn"] = data["urn"].replace("platform-data-bucket", "platform-datasets-bucket")
    data["name"] = "platform-datasets-bucket"
    report = diff(prod, new)
    deleted = [c for c in report.of_kind("delete") if c.type == rules.BUCKET]
    assert [c.name for c in deleted] == ["platform-data-bucket"]
    assert "URN changed" in deleted[0].reasons[0] and "add an alias" in deleted[0].reasons[0]
    assert "stateful resource would be deleted: its data would be lost" in deleted[0].blocking
    assert "resource is protected; Pulumi refuses to delete it" in deleted[0].blocking
    assert [c.name for c in report.of_kind("add")] == ["platform-datasets-bucket"]


def test_an_alias_keeps_a_renamed_resource(prod):
    new = copy.deepcopy(prod)
    data = find(new, rules.BUCKET, "data")
    old_urn = data["urn"]
    data["urn"], data["name"], data["aliases"] = old_urn.replace("platform-data-bucket", "data"), "data", [old_urn]
    report = diff(prod, new)
    assert report.blocking == []
    [change] = report.changes
    assert change.kind == "update" and "with an alias" in change.reasons[0]


def test_versioning_turned_off_fails(prod, tmp_path):
    new = copy.deepcopy(prod)
    find(new, rules.VERSIONING, "models")["inputs"]["versioningConfiguration"]["status"] = "Suspended"
    [change] = diff(prod, new).blocking
    assert "versioning turned off (status Enabled → Suspended)" in change.blocking[0]
    assert run_cli(tmp_path, prod, new).exit_code == 1


def test_versioning_resource_removed_fails(prod):
    new = copy.deepcopy(prod)
    gone = find(new, rules.VERSIONING, "capture")
    new["resources"].remove(gone)
    [change] = diff(prod, new).blocking
    assert change.kind == "delete" and "status Enabled → removed" in change.blocking[0]


def test_protection_dropped_fails(prod, tmp_path):
    new = copy.deepcopy(prod)
    find(new, rules.KEY, "key")["protect"] = False
    [change] = diff(prod, new).blocking
    assert change.blocking == ("protection dropped (protect: true → false)",)
    assert run_cli(tmp_path, prod, new).exit_code == 1


@pytest.mark.parametrize(
    "token, part, edit, expected",
    [
        (rules.ENCRYPTION, "data", lambda i: i.update(rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
         "bucket encryption weakened from SSE-KMS to AES256"),
        (rules.PUBLIC_ACCESS_BLOCK, "data", lambda i: i.update(blockPublicPolicy=False), "public access blocking weakened (blockPublicPolicy off)"),
        (rules.TOPIC, "notifications", lambda i: i.pop("kmsMasterKeyId"), "topic encryption removed"),
        (rules.KEY, "key", lambda i: i.update(enableKeyRotation=False), "key rotation turned off"),
    ],
)
def test_weakened_guardrails_fail(prod, token, part, edit, expected):
    new = copy.deepcopy(prod)
    edit(find(new, token, part)["inputs"])
    [change] = diff(prod, new).blocking
    assert any(expected in b for b in change.blocking), change.blocking


def test_a_changed_registry_description_replaces_the_model_registry(prod):
    """SageMaker cannot update a model package group: a new description means a new, empty registry."""
    new = copy.deepcopy(prod)
    find(new, "aws:sagemaker/modelPackageGroup:ModelPackageGroup", "registry")["inputs"]["modelPackageGroupDescription"] = "new words"
    [change] = diff(prod, new).blocking
    assert change.kind == "replace" and "modelPackageGroupDescription" in change.blocking[0]


def test_moving_the_stack_to_another_region_replaces_every_stateful_resource(prod):
    new = copy.deepcopy(prod)
    find(new, "pulumi:providers:aws", "aws")["inputs"]["region"] = "eu-west-1"
    blocked = {c.type for c in diff(prod, new).blocking}
    assert blocked >= {rules.BUCKET, rules.KEY, rules.TOPIC, "aws:sagemaker/modelPackageGroup:ModelPackageGroup"}


def test_removing_a_retained_object_or_adding_resources_passes(prod):
    new = copy.deepcopy(prod)
    code = find(new, "aws:s3/bucketObjectv2:BucketObjectv2", "sourcedir")
    new["resources"].remove(code)
    new["resources"].append({**copy.deepcopy(code), "urn": code["urn"] + "-next", "name": code["name"] + "-next"})
    report = diff(prod, new)
    assert report.blocking == []
    assert [c.kind for c in report.changes] == ["delete", "add"]


def test_a_stateful_resource_kept_in_aws_on_delete_does_not_block(prod):
    new = copy.deepcopy(prod)
    old = copy.deepcopy(prod)
    topic = find(old, rules.TOPIC, "notifications")
    topic["retain_on_delete"], topic["protect"] = True, False
    new["resources"] = [r for r in new["resources"] if r["urn"] != topic["urn"] and r["type"] != rules.TOPIC_POLICY
                        and r["type"] != "aws:sns/topicSubscription:TopicSubscription"]
    deleted = [c for c in diff(old, new).of_kind("delete") if c.type == rules.TOPIC]
    assert deleted[0].blocking == () and "retained in AWS" in deleted[0].reasons[1]


def test_markdown_summary_names_the_stack_and_the_blocking_change(prod, tmp_path):
    new = copy.deepcopy(prod)
    find(new, rules.VERSIONING, "data")["inputs"]["versioningConfiguration"]["status"] = "Suspended"
    find(new, rules.BUCKET, "capture")["inputs"]["tags"]["x"] = "y"
    text = to_markdown(diff(prod, new))
    assert text.startswith("### Stack `prod`: 0 added, 2 changed, 0 replaced, 0 removed; **1 blocking**")
    assert "| BLOCKING | changed | `platform-data-versioning` |" in text
    result = run_cli(tmp_path, prod, new, "--markdown")
    assert result.exit_code == 1 and result.output == text


def test_rejects_unreadable_or_mismatched_manifests(prod, tmp_path):
    (tmp_path / "garbage.json").write_text("{not json")
    result = runner.invoke(app, ["diff", str(tmp_path / "garbage.json"), str(tmp_path / "garbage.json")])
    assert result.exit_code == 2 and "is not JSON" in result.output
    result = runner.invoke(app, ["diff", str(tmp_path / "missing.json"), str(tmp_path / "garbage.json")])
    assert result.exit_code == 2 and "cannot read manifest" in result.output
    other = {**prod, "stack": "dev"}
    result = run_cli(tmp_path, prod, other)
    assert result.exit_code == 2 and "compare one stack at a time" in result.output
    (tmp_path / "list.json").write_text("[]")
    result = runner.invoke(app, ["diff", str(tmp_path / "list.json"), str(tmp_path / "list.json")])
    assert result.exit_code == 2 and "not a synth manifest" in result.output


def test_every_stateful_type_has_its_replacement_properties_listed():
    assert STATEFUL_TYPES <= set(REPLACE_ON_CHANGE)
