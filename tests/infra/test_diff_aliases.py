"""Aliases reach the manifest resolved to URNs, as the engine resolves them, and `mlops diff` honours them.

Each test synthesizes two versions of a small program under the recording mocks (real ``pulumi.Alias``
values, not hand-written manifest keys) and diffs them.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from infra.review.diff import diff


class Box(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None, child_opts: dict | None = None):
        super().__init__("test:index:Box", name, None, opts)
        child = f"{name}-bucket" if not child_opts or "name" not in child_opts else child_opts.pop("name")
        aws.s3.Bucket(child, bucket="data-bucket", opts=pulumi.ResourceOptions(parent=self, protect=True, **(child_opts or {})))
        self.register_outputs({})


def _diff(register, v1, v2):
    old, new = register(v1).to_json(), register(v2).to_json()
    return old, new, diff(old, new)


def _bucket(doc):
    [bucket] = [r for r in doc["resources"] if r["type"] == "aws:s3/bucket:Bucket"]
    return bucket


def test_a_rename_without_an_alias_deletes_the_bucket(register):
    _, _, report = _diff(register, lambda: Box("old"), lambda: Box("new"))
    assert [c.type for c in report.of_kind("delete")] == ["aws:s3/bucket:Bucket"]
    assert report.blocking


def test_a_parent_alias_keeps_its_children(register):
    """Only the component is aliased (Alias(name=...)); its bucket inherits the alias and keeps its identity."""
    old, new, report = _diff(
        register, lambda: Box("old"), lambda: Box("new", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")]))
    )
    assert _bucket(old)["urn"] in _bucket(new)["aliases"]
    assert report.of_kind("delete") == report.of_kind("replace") == report.blocking == []


def test_an_alias_with_the_root_stack_as_parent_keeps_a_resource_moved_into_a_component(register):
    def v1():
        aws.s3.Bucket("data", bucket="data-bucket", opts=pulumi.ResourceOptions(protect=True))

    def v2():
        Box("platform", child_opts={"name": "data", "aliases": [pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)]})

    old, new, report = _diff(register, v1, v2)
    assert _bucket(new)["urn"] != _bucket(old)["urn"]
    assert _bucket(old)["urn"] in _bucket(new)["aliases"]
    assert report.of_kind("delete") == report.blocking == []
    [change] = report.changes
    assert change.kind == "update" and "with an alias" in change.reasons[0]


def test_both_renamed_child_and_parent_keep_identity(register):
    """The child's own alias is multiplied out with its parent's: old parent + old child name."""
    old, new, report = _diff(
        register,
        lambda: Box("old"),
        lambda: Box(
            "new",
            pulumi.ResourceOptions(aliases=[pulumi.Alias(name="old")]),
            child_opts={"name": "new-data", "aliases": [pulumi.Alias(name="old-bucket")]},
        ),
    )
    assert _bucket(old)["urn"] in _bucket(new)["aliases"]
    assert report.of_kind("delete") == report.blocking == []


def test_an_alias_to_an_unrelated_urn_does_not_hide_a_delete(register):
    old, new, report = _diff(
        register,
        lambda: Box("old"),
        lambda: Box("new", pulumi.ResourceOptions(aliases=[pulumi.Alias(name="elsewhere")])),
    )
    assert [c.type for c in report.of_kind("delete")] == ["aws:s3/bucket:Bucket"]
