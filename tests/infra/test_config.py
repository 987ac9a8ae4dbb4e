"""Typed config: shipped stacks load; every kind of bad config is refused with path, value and what is accepted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from helpers import write_stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.config import (
    STACKS_DIR,
    ConfigError,
    Environment,
    config_from_keys,
    load_stack_file,
    stack_file_schema,
)

MLOPS = str(Path(sys.executable).with_name("mlops"))  # the installed console script: the real entry point
VALID = {"mlops:environment": "dev", "mlops:region": "us-east-1"}


def problems(keys: dict) -> str:
    with pytest.raises(ConfigError) as exc:
        config_from_keys(keys, "stacks/Pulumi.t.yaml")
    return str(exc.value)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "local"])
def test_shipped_stacks_load(stack):
    cfg = load_stack_file(STACKS_DIR / f"Pulumi.{stack}.yaml")
    assert "churn" in cfg.models
    assert cfg.models["churn"].data_contract.target  # the contract file was loaded and validated
    assert cfg.protected is (cfg.environment is not Environment.dev)


def test_local_stack_targets_localstack():
    cfg = load_stack_file(STACKS_DIR / "Pulumi.local.yaml")
    assert cfg.localstack is not None and cfg.localstack.endpoint == "http://127.0.0.1:4566"


def test_rejects_misspelled_nested_key_with_its_path_and_the_accepted_keys():
    msg = problems({**VALID, "mlops:storage": {"noncurrent_versoin_days": 10}})
    assert "config.mlops:storage.noncurrent_versoin_days: unknown key" in msg
    assert "did you mean 'noncurrent_version_days'?" in msg
    assert "accepted keys: noncurrent_version_days, abort_incomplete_upload_days" in msg


def test_rejects_misspelled_key_inside_a_model():
    msg = problems({**VALID, "mlops:models": {"churn": {"data_contract": "training/sample/contract.json", "trainng": {}}}})
    assert "config.mlops:models.churn.trainng: unknown key (did you mean 'training'?)" in msg


def test_rejects_unknown_top_level_key():
    msg = problems({**VALID, "mlops:storag": {}})
    assert "config.mlops:storag: unknown key (did you mean 'mlops:storage'?)" in msg
    assert "mlops:environment" in msg


def test_rejects_bad_enum_value_and_shows_the_choices():
    msg = problems({**VALID, "mlops:environment": "qa"})
    assert "config.mlops:environment: 'qa' is not accepted" in msg
    assert "'dev', 'staging' or 'prod'" in msg


def test_rejects_missing_required_key():
    assert "config.mlops:region: required key is missing" in problems({"mlops:environment": "dev"})


def test_rejects_aws_namespace_keys():
    msg = problems({**VALID, "aws:region": "eu-west-1"})
    assert "config.aws:region" in msg and "mlops:region" in msg


def test_rejects_unprotecting_prod():
    assert "protect: false is refused in prod" in problems({**VALID, "mlops:environment": "prod", "mlops:protect": False})


def test_rejects_force_destroy_outside_dev():
    msg = problems({**VALID, "mlops:environment": "staging", "mlops:storage": {"force_destroy": True}})
    assert "force_destroy: true is refused in staging" in msg


def test_rejects_localstack_in_prod():
    assert "localstack is for dev stacks only" in problems({**VALID, "mlops:environment": "prod", "mlops:localstack": {}})


def test_rejects_bad_model_name():
    msg = problems({**VALID, "mlops:models": {"Churn_Model": {"data_contract": "training/sample/contract.json"}}})
    assert "config.mlops:models.Churn_Model" in msg


def test_rejects_bad_email_and_duplicates():
    assert "config.mlops:notifications.emails[0]: 'not-an-email'" in problems({**VALID, "mlops:notifications": {"emails": ["not-an-email"]}})
    assert "duplicate addresses" in problems({**VALID, "mlops:notifications": {"emails": ["a@b.io", "a@b.io"]}})


def test_rejects_missing_contract_file():
    msg = problems({**VALID, "mlops:models": {"churn": {"data_contract": "nope/contract.json"}}})
    assert "config.mlops:models.churn.data_contract: 'nope/contract.json' is not accepted: cannot read contract file" in msg


def test_rejects_bad_key_arn():
    msg = problems({**VALID, "mlops:keys": {"key_arn": "alias/mine"}})
    assert "config.mlops:keys.key_arn: 'alias/mine' is not accepted" in msg


def test_rejects_spot_wait_shorter_than_runtime():
    model = {"data_contract": "training/sample/contract.json", "training": {"spot": True, "max_runtime_seconds": 7200, "max_wait_seconds": 3600}}
    assert "max_wait_seconds (3600) must be >= max_runtime_seconds (7200)" in problems({**VALID, "mlops:models": {"m1": model}})


def test_rejects_reserved_tag_prefix():
    assert "reserved 'aws:' prefix" in problems({**VALID, "mlops:tags": {"aws:team": "x"}})


def test_reports_every_problem_at_once():
    msg = problems({"mlops:environment": "qa", "mlops:region": "mars", "mlops:storage": {"x": 1}})
    assert msg.count("\n  - ") == 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["environment", "region", "storage", "keys", "notifications", "models", "tags", "protect", "localstack", "bogus"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names.map(lambda f: f"mlops:{f}"), json_values, max_size=6))
def test_garbage_config_is_always_a_clear_config_error(keys):
    try:
        config_from_keys(keys, "stacks/Pulumi.fuzz.yaml")
    except ConfigError as e:
        assert e.problems and all(p.startswith("config") for p in e.problems)


def test_schema_file_is_current_and_describes_the_shipped_stacks():
    committed = json.loads((STACKS_DIR / "mlops-stack.schema.json").read_text())
    assert committed == stack_file_schema(), "run `mlops schema --out stacks/mlops-stack.schema.json`"
    for path in STACKS_DIR.glob("Pulumi.*.yaml"):
        assert path.read_text().startswith("# yaml-language-server: $schema=./mlops-stack.schema.json")
        jsonschema.validate(yaml.safe_load(path.read_text()), committed)


def test_schema_flags_a_typo_for_editors():
    doc = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())
    doc["config"]["mlops:storage"]["noncurrent_versoin_days"] = 3
    with pytest.raises(jsonschema.ValidationError, match="noncurrent_versoin_days"):
        jsonschema.validate(doc, stack_file_schema())


def test_validate_command_refuses_typo_without_traceback(tmp_path):
    body = (STACKS_DIR / "Pulumi.prod.yaml").read_text().replace("noncurrent_version_days", "noncurrent_version_dayz")
    path = write_stack(tmp_path, body)
    run = subprocess.run([MLOPS, "validate", "--file", str(path)], capture_output=True, text=True)
    assert run.returncode == 2
    assert "config.mlops:storage.noncurrent_version_dayz: unknown key" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


@pytest.mark.parametrize("body", ["config: [", "just a string", "config:\n  mlops:environment: [1, 2]\n", "\x00\x01binary"])
def test_validate_command_handles_broken_files(tmp_path, body):
    from typer.testing import CliRunner

    from infra.cli.app import app

    result = CliRunner().invoke(app, ["validate", "--file", str(write_stack(tmp_path, body))])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "invalid configuration" in result.output


def test_readme_config_reference_is_current():
    import re

    from infra.config import PROJECT_ROOT, config_reference_markdown

    readme = (PROJECT_ROOT / "README.md").read_text()
    block = re.search(r"<!-- config-reference:start[^\n]*-->\n(.*?)<!-- config-reference:end -->", readme, re.S)
    assert block, "README lost its config-reference markers"
    assert block.group(1) == config_reference_markdown(), "regenerate with `mlops schema --reference`"


@pytest.mark.parametrize("args", [["--help"], ["validate", "--stack", "prod"], ["validate", "--stack", "dev"], ["schema"]])
def test_config_commands_import_no_pulumi_numpy_or_sagemaker(args):
    """Reading config is quick: neither the Pulumi SDKs, numpy nor the SageMaker SDK load for it."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom infra.cli.app import main\nsys.argv = ['mlops', *sys.argv[1:]]\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in ('pulumi', 'pulumi_aws', 'numpy', 'sagemaker', 'pandas')})\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in out.stdout, out.stdout[-500:] + out.stderr[-500:]


# --- mlops:vpc: existing subnets or a created private VPC, never both -------------------------------------------

EXISTING_VPC = {"subnet_ids": ["subnet-0123456789abcdef0"], "security_group_ids": ["sg-0123456789abcdef0"]}


def test_vpc_create_and_existing_load_and_split_the_cidr():
    created = config_from_keys({**VALID, "mlops:vpc": {"create": {"cidr": "10.42.0.0/16", "azs": 3}}}, "t").vpc.create
    assert created.subnet_cidrs() == ["10.42.0.0/18", "10.42.64.0/18", "10.42.128.0/18"]
    assert config_from_keys({**VALID, "mlops:vpc": EXISTING_VPC}, "t").vpc.create is None


def test_rejects_vpc_create_together_with_existing_subnets():
    msg = problems({**VALID, "mlops:vpc": {**EXISTING_VPC, "create": {"cidr": "10.42.0.0/16"}}})
    assert "either create" in msg and "subnet_ids + security_group_ids" in msg


def test_rejects_vpc_with_subnets_but_no_security_groups():
    msg = problems({**VALID, "mlops:vpc": {"subnet_ids": EXISTING_VPC["subnet_ids"]}})
    assert "needs both subnet_ids and security_group_ids" in msg and "create:" in msg


@pytest.mark.parametrize(
    ("create", "expected"),
    [
        ({"cidr": "10.42.0.0"}, "/32; AWS VPCs here are /16 to /24"),
        ({"cidr": "10.0.0.0/8"}, "/8; AWS VPCs here are /16 to /24"),
        ({"cidr": "not-a-cidr"}, "is not an IPv4 network"),
        ({"cidr": "52.0.0.0/16"}, "is not a private range"),
        ({"azs": 1}, "expected 2 to 6"),
        ({"azs": ["us-east-1a", "us-east-1a"]}, "2 to 6 distinct zone names"),
        ({"azs": ["east"]}, "are not availability zone names"),
        ({"azs": ["eu-west-1a", "eu-west-1b"]}, "are not zones of region us-east-1"),
        ({"flow_log_days": 10}, "flow_log_days"),
    ],
)
def test_rejects_bad_vpc_create(create, expected):
    assert expected in problems({**VALID, "mlops:vpc": {"create": create}})


def test_rejects_short_flow_log_retention_in_prod():
    msg = problems({**VALID, "mlops:environment": "prod", "mlops:vpc": {"create": {"flow_log_days": 90}}})
    assert "vpc.create.flow_log_days (90)" in msg



def test_rejects_the_drift_processing_engine_without_a_vpc():
    keys = {**VALID, "mlops:models": {"churn": {"data_contract": "training/sample/contract.json", "drift": {"engine": "processing"}}}}
    msg = problems(keys)
    assert "drift.engine: processing runs a SageMaker job" in msg and "set mlops:vpc" in msg
    assert config_from_keys({**keys, "mlops:vpc": {"create": {}}}, "t").models["churn"].drift.engine == "processing"
