"""One mapping of user errors: every command family's refusal exits 2 with its message on stderr, no traceback;
the commands are plain functions that raise ``UserError`` when called directly."""

from __future__ import annotations

import importlib
import json
import shutil

import pytest
from moto import mock_aws
from typer.testing import CliRunner

from infra.cli.app import COMMAND_MODULES, GROUPS, app
from infra.config import STACKS_DIR, ConfigError
from infra.errors import UserError
from infra.ops.data import DataError
from infra.ops.local_run import LocalRunError
from infra.ops.serving import OpsError
from infra.review.diff import ManifestError

runner = CliRunner()


@pytest.fixture
def dev(tmp_path, monkeypatch):
    """A copy of the dev stack file, and moto standing in for an account where nothing is deployed."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    path = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(STACKS_DIR / "Pulumi.dev.yaml", path)
    with mock_aws():
        yield path


def cases(tmp_path, dev):
    bad_stack = tmp_path / "Pulumi.bad.yaml"
    bad_stack.write_text("config:\n  mlops:environment: qa\n")
    not_json = tmp_path / "manifest.json"
    not_json.write_text("{not json")
    binary = tmp_path / "labels.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    missing = tmp_path / "missing"
    return {
        "config": (["validate", "--file", str(bad_stack)], "invalid configuration"),
        "config, unknown stack": (["validate", "--stack", "no-such-stack"], "no stack 'no-such-stack'"),
        "schema": (["schema", "--out", str(missing / "schema.json")], f"cannot write {missing / 'schema.json'}"),
        "synth": (["synth", "--file", str(bad_stack)], "invalid configuration"),
        "diff": (["diff", str(not_json), str(not_json)], str(not_json)),
        "check": (["check", "--manifest", str(not_json), "--stack", "dev"], "give --manifest alone"),
        "data": (["data", "push", str(missing), "--file", str(dev), "--model", "churn"], f"{missing} does not exist"),
        "data, unknown model": (["data", "list", "--file", str(dev), "--model", "nope"], "has no model 'nope'"),
        "data pull": (["data", "pull", "--file", str(dev), "--model", "churn", "--version", "v1"], "does not exist; deploy the stack first"),
        "labels": (["labels", "push", str(binary), "--file", str(dev), "--model", "churn"], "is not UTF-8 text"),
        "train": (["train", "--file", str(dev), "--model", "churn", "--data", str(missing)], f"{missing} does not exist"),
        "retrain": (["retrain", "--file", str(dev), "--model", "churn", "--test-case", "x"], "does not target LocalStack"),
        "rollback": (["rollback", "--file", str(dev), "--model", "churn", "--no-wait"], "endpoint mlops-dev-churn does not exist"),
        "drift": (["drift", "--baseline", str(missing), "--current", str(missing)], "cannot read baseline"),
        "models": (["models", "--file", str(dev), "--model", "churn"], "is not deployed"),
        "status": (["status", "--file", str(dev)], "is not deployed"),
        "report": (["report", "--file", str(dev), "--model", "churn", "--out", str(tmp_path / "r.html")], "is not deployed"),
        "new model": (["new", "model", "Bad_Name", "--out", str(tmp_path)], "model name 'Bad_Name' is not accepted"),
    }


FAMILIES = ["config", "config, unknown stack", "schema", "synth", "diff", "check", "data", "data, unknown model", "data pull", "labels", "train",
            "retrain", "rollback", "drift", "models", "status", "report", "new model"]


@pytest.mark.parametrize("family", FAMILIES)
def test_user_error_exits_2_with_its_message(family, tmp_path, dev, monkeypatch):
    args, message = cases(tmp_path, dev)[family]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "error:" in result.stderr and message in result.stderr, result.stderr
    assert "Traceback" not in result.output


def test_every_command_has_a_case(tmp_path, dev):
    """A command added without a user-error case here fails this test."""
    registered = {name if group is None else f"{group} {name}"
                  for module in COMMAND_MODULES for _, name, group in importlib.import_module(module).COMMANDS}
    covered = {args[0] if args[0] not in GROUPS else f"{args[0]} {args[1]}" for args, _ in cases(tmp_path, dev).values()}
    assert registered == covered


def test_the_library_errors_are_user_errors():
    for error in (ConfigError, DataError, OpsError, LocalRunError, ManifestError):
        assert issubclass(error, UserError), error


def test_commands_are_plain_functions_that_raise_user_errors(tmp_path):
    from infra.cli.commands.config import validate
    from infra.cli.commands.delivery import diff

    with pytest.raises(UserError, match="give exactly one of --stack NAME"):
        validate()
    (tmp_path / "m.json").write_text(json.dumps({"resources": []}))
    with pytest.raises(UserError):
        diff(tmp_path / "m.json", tmp_path / "absent.json")
