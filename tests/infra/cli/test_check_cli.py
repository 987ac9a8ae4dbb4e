"""`mlops check`: every shipped stack passes the rule set; a broken manifest fails with the rule and the resource."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

from infra.review import rules
from infra.cli.app import app

runner = CliRunner()


@pytest.mark.parametrize("stack", ("dev", "staging", "prod", "local"))
def test_every_shipped_stack_passes_every_rule(manifests, stack, tmp_path):
    assert [str(v) for v in rules.evaluate(manifests[stack].resources)] == []
    path = tmp_path / f"{stack}.json"
    path.write_text(json.dumps(manifests[stack].to_json()))
    result = runner.invoke(app, ["check", "--manifest", str(path)])
    assert result.exit_code == 0, result.output
    assert f"ok {stack}: " in result.output and f"pass all {len(rules.RULES)} rules" in result.output


def test_check_synthesizes_the_stack_file():
    result = runner.invoke(app, ["check", "--stack", "dev"])
    assert result.exit_code == 0, result.output
    assert "ok dev: " in result.output


def test_a_violation_fails_with_the_rule_the_resource_and_the_fix(manifests, tmp_path):
    doc = copy.deepcopy(manifests["staging"].to_json())
    versioning = next(r for r in doc["resources"] if r["type"] == rules.VERSIONING and "data" in r["name"])
    versioning["inputs"]["versioningConfiguration"]["status"] = "Suspended"
    key = next(r for r in doc["resources"] if r["type"] == rules.KEY)
    key["inputs"]["enableKeyRotation"] = False
    path = tmp_path / "staging.json"
    path.write_text(json.dumps(doc))
    result = runner.invoke(app, ["check", "--manifest", str(path)])
    assert result.exit_code == 1
    assert "2 violations" in result.output
    assert "s3-versioned" in result.output and "platform-data-bucket" in result.output
    assert "kms-key-rotation" in result.output and "enableKeyRotation = true" in result.output


def test_rejects_bad_input(tmp_path):
    result = runner.invoke(app, ["check", "--manifest", str(tmp_path / "nope.json")])
    assert result.exit_code == 2 and "cannot read manifest" in result.output
    result = runner.invoke(app, ["check", "--manifest", str(tmp_path / "nope.json"), "--stack", "dev"])
    assert result.exit_code == 2 and "--manifest alone" in result.output
    result = runner.invoke(app, ["check", "--stack", "nosuch"])
    assert result.exit_code == 2 and "no stack 'nosuch'" in result.output


def test_lists_the_rule_set():
    result = runner.invoke(app, ["check", "--list-rules"])
    assert result.exit_code == 0
    for rule in rules.RULES:
        assert rule.id in result.output
