"""The pydantic contracts: validators, hyperparameter strings, the evaluation rule, metric definitions,
lineage metadata limits."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import botocore.session
import pytest
from pydantic import ValidationError
from training_steps import CONTRACT, REPO

from training.contract import (
    CUSTOMER_METADATA_MAX_ENTRIES,
    CUSTOMER_METADATA_MAX_KEY,
    CUSTOMER_METADATA_MAX_VALUE,
    METRIC_DEFINITIONS,
    METRICS,
    ColumnSpec,
    DataContract,
    EvaluationRule,
    Hyperparameters,
    LineageMetadata,
    LineageMetadataError,
    load_contract,
    metric_definitions,
    metric_line,
)

SHA = "ab" * 32


def contract_doc(**changes) -> dict:
    doc = json.loads(CONTRACT.read_text())
    doc.update(changes)
    return doc


# ---------------------------------------------------------------------------------------------------------------
# Data contract


def test_sample_contract_loads_with_features_in_file_order(contract):
    assert contract.target == "churned"
    assert contract.features == ["tenure_months", "monthly_charges", "support_calls", "plan", "region", "autopay"]


def test_yaml_contract_is_read_like_json(tmp_path):
    yaml = pytest.importorskip("yaml")
    path = tmp_path / "contract.yaml"
    path.write_text(yaml.safe_dump(contract_doc()))
    assert load_contract(path) == load_contract(CONTRACT)


def test_contract_module_imports_without_pandas_or_sklearn():
    code = "import sys, training.contract; print(sorted({'pandas', 'sklearn', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_rejects_min_greater_than_max():
    with pytest.raises(ValidationError, match=r"min \(5\) is greater than max \(1\)"):
        ColumnSpec(type="float", min=5, max=1)


def test_rejects_allowed_on_a_non_category_column():
    with pytest.raises(ValidationError, match="allowed applies to category columns only, not to type 'int'"):
        ColumnSpec(type="int", allowed=["a"])


def test_rejects_min_max_on_a_category_column():
    with pytest.raises(ValidationError, match="min/max apply to int and float columns only"):
        ColumnSpec(type="category", max=3)


def test_rejects_duplicate_allowed_categories():
    with pytest.raises(ValidationError, match=r"allowed lists \['a'\] more than once"):
        ColumnSpec(type="category", allowed=["a", "b", "a"])


def test_rejects_null_rate_above_one():
    with pytest.raises(ValidationError, match="max_null_rate"):
        ColumnSpec(type="float", max_null_rate=1.5)


def test_rejects_unknown_column_keys():
    with pytest.raises(ValidationError, match="maximum"):
        ColumnSpec.model_validate({"type": "int", "maximum": 3})


def test_rejects_target_missing_from_columns():
    with pytest.raises(ValidationError, match="target 'label' is not among the columns"):
        DataContract.model_validate(contract_doc(target="label"))


def test_rejects_a_float_target():
    doc = contract_doc()
    doc["columns"]["churned"] = {"type": "float"}
    with pytest.raises(ValidationError, match="a binary label must be int"):
        DataContract.model_validate(doc)


def test_rejects_a_target_that_may_be_missing():
    doc = contract_doc()
    doc["columns"]["churned"]["max_null_rate"] = 0.1
    with pytest.raises(ValidationError, match="every row needs a label"):
        DataContract.model_validate(doc)


def test_rejects_a_contract_without_features():
    with pytest.raises(ValidationError, match="add at least one feature"):
        DataContract(target="y", columns={"y": ColumnSpec(type="int")})


def test_rejects_min_rows_below_one():
    with pytest.raises(ValidationError, match="min_rows"):
        DataContract.model_validate(contract_doc(min_rows=0))


def test_contract_is_frozen(contract):
    with pytest.raises(ValidationError):
        contract.min_rows = 5


# ---------------------------------------------------------------------------------------------------------------
# Hyperparameters and the evaluation rule as `--name value` strings


def test_hyperparameters_round_trip_through_cli_args():
    hp = Hyperparameters(max_iter=7, learning_rate=0.05, max_depth=3, early_stopping=True, l2_regularization=0.5)
    parsed, rest = Hyperparameters.from_cli_args([*hp.to_cli_args(), "--train", "/data"])
    assert parsed == hp
    assert rest == ["--train", "/data"]


def test_hyperparameter_map_is_strings_and_leaves_out_none():
    values = Hyperparameters().to_hyperparameters()
    assert "max_depth" not in values
    assert all(isinstance(v, str) for v in values.values())
    assert values["early_stopping"] == "false"
    assert Hyperparameters.from_strings(values) == Hyperparameters()


def test_hyperparameters_parse_what_sagemaker_passes():
    parsed, rest = Hyperparameters.from_cli_args(
        ["--max_iter", "300", "--max-depth=None", "--early_stopping", "True", "--learning_rate", '"0.2"', "--contract", "c.json"]
    )
    assert (parsed.max_iter, parsed.max_depth, parsed.early_stopping, parsed.learning_rate) == (300, None, True, 0.2)
    assert rest == ["--contract", "c.json"]


@pytest.mark.parametrize(
    "args, field",
    [
        (["--max_iter", "0"], "max_iter"),
        (["--learning_rate", "0"], "learning_rate"),
        (["--validation_fraction", "0.9"], "validation_fraction"),
        (["--max_leaf_nodes", "1"], "max_leaf_nodes"),
        (["--max_iter", "many"], "max_iter"),
    ],
)
def test_rejects_out_of_range_or_malformed_hyperparameters(args, field):
    with pytest.raises(ValidationError, match=field):
        Hyperparameters.from_cli_args(args)


def test_rejects_a_hyperparameter_flag_without_value():
    with pytest.raises(ValueError, match="--max_iter needs a value"):
        Hyperparameters.from_cli_args(["--max_iter"])


def test_evaluation_rule_round_trips_through_cli_args():
    rule = EvaluationRule(primary_metric="f1", minimum=0.4, max_regression=0.01)
    assert EvaluationRule.from_cli_args(rule.to_cli_args()) == (rule, [])


def test_rejects_log_loss_rule_without_a_ceiling():
    with pytest.raises(ValidationError, match="set minimum to the highest acceptable log loss"):
        EvaluationRule(primary_metric="log_loss")


def test_rejects_minimum_outside_the_metric_range():
    with pytest.raises(ValidationError, match="outside 0..1"):
        EvaluationRule(primary_metric="roc_auc", minimum=1.5)


def test_rejects_negative_max_regression():
    with pytest.raises(ValidationError, match="max_regression"):
        EvaluationRule(max_regression=-0.1)


@pytest.mark.parametrize(
    "rule, new, production, passes",
    [
        (EvaluationRule(minimum=0.7), 0.80, None, True),  # first model above the minimum
        (EvaluationRule(minimum=0.7), 0.65, None, False),  # first model below it
        (EvaluationRule(minimum=0.7, max_regression=0.02), 0.80, 0.81, True),  # within the allowed regression
        (EvaluationRule(minimum=0.7, max_regression=0.02), 0.78, 0.81, False),  # regressed too much
        (EvaluationRule(minimum=0.7, max_regression=0.02), 0.79, 0.81, True),  # exactly at the allowance
        (EvaluationRule(primary_metric="log_loss", minimum=0.6), 0.40, 0.45, True),  # lower loss is better
        (EvaluationRule(primary_metric="log_loss", minimum=0.6, max_regression=0.01), 0.47, 0.45, False),
        (EvaluationRule(primary_metric="log_loss", minimum=0.6), 0.65, None, False),  # above the ceiling
    ],
)
def test_rule_judges_minimum_and_regression_in_the_metric_direction(rule, new, production, passes):
    m = rule.primary_metric
    passed, reasons = rule.judge({m: new}, None if production is None else {m: production})
    assert passed is passes
    assert reasons and all(m in r or "first model" in r for r in reasons)


# ---------------------------------------------------------------------------------------------------------------
# Metric definitions


def test_metric_definitions_name_every_training_metric_once():
    names = [d["Name"] for d in METRIC_DEFINITIONS]
    assert sorted(names) == sorted(f"{split}:{m}" for split in ("train", "validation") for m in METRICS)


@pytest.mark.parametrize("value", [0.8731, 0.0, 1.0, 12.5, 1e-7])
def test_metric_regexes_capture_the_printed_value(value):
    (definition,) = [d for d in metric_definitions(["test"]) if d["Name"] == "test:log_loss"]
    match = re.search(definition["Regex"], "INFO " + metric_line("test", "log_loss", value))
    assert match and float(match.group(1)) == pytest.approx(value, abs=1e-6)


def test_metric_definitions_fit_sagemaker_limits():
    shapes = botocore.session.get_session().get_service_model("sagemaker")
    name_max = shapes.shape_for("MetricName").metadata["max"]
    regex_max = shapes.shape_for("MetricRegex").metadata["max"]
    assert all(len(d["Name"]) <= name_max and len(d["Regex"]) <= regex_max for d in METRIC_DEFINITIONS)


# ---------------------------------------------------------------------------------------------------------------
# Lineage metadata


def lineage(**changes) -> LineageMetadata:
    fields = {
        "stack": "dev",
        "model_name": "churn",
        "training_job_name": "mlops-dev-churn-20250101-000000",
        "code_sha256": SHA,
        "data": {
            "train": {"s3_uri": "s3://data-bucket/churn/train/churn.csv", "version_id": "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"},
            "test": {"s3_uri": "s3://data-bucket/churn/test/"},
        },
        "hyperparameters": Hyperparameters(max_depth=4),
        "metrics": {"test:roc_auc": 0.8731, "test:log_loss": 0.41},
    }
    fields.update(changes)
    return LineageMetadata.model_validate(fields)


def test_lineage_metadata_is_a_flat_string_map():
    entries = lineage().to_customer_metadata()
    assert entries["code_sha256"] == SHA
    assert entries["data:train:version_id"] == "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"
    assert "data:test:version_id" not in entries
    assert entries["hyperparameter:max_depth"] == "4"
    assert entries["metric:test:roc_auc"] == "0.873100"
    assert all(isinstance(v, str) and v for v in entries.values())


def test_customer_metadata_limits_match_the_sagemaker_service_model():
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert model.shape_for("CustomerMetadataMap").metadata["max"] == CUSTOMER_METADATA_MAX_ENTRIES
    assert model.shape_for("CustomerMetadataKey").metadata["max"] == CUSTOMER_METADATA_MAX_KEY
    assert model.shape_for("CustomerMetadataValue").metadata["max"] == CUSTOMER_METADATA_MAX_VALUE


def test_rejects_an_oversize_lineage_value():
    uri = "s3://data-bucket/" + "k" * 300
    with pytest.raises(LineageMetadataError, match=r"value of 'data:train:s3_uri' is 317 characters; 1\.\.256"):
        lineage(data={"train": {"s3_uri": uri}}).to_customer_metadata()


def test_rejects_an_oversize_lineage_key():
    channel = "c" * 130
    with pytest.raises(LineageMetadataError, match=r"key of 'data:c+:s3_uri' is 142 characters; 1\.\.128"):
        lineage(data={channel: {"s3_uri": "s3://b/k"}}).to_customer_metadata()


def test_rejects_more_lineage_entries_than_sagemaker_keeps():
    metrics = {f"test:m{i}": 0.5 for i in range(45)}
    with pytest.raises(LineageMetadataError, match=r"entries, more than the 50"):
        lineage(metrics=metrics).to_customer_metadata()


def test_rejects_lineage_characters_sagemaker_refuses():
    with pytest.raises(LineageMetadataError, match=r"characters \['\(', '\)'\]"):
        lineage(metrics={"test:roc_auc(macro)": 0.8}).to_customer_metadata()


def test_rejects_a_code_hash_that_is_not_sha256():
    with pytest.raises(ValidationError, match="code_sha256"):
        lineage(code_sha256="abc")
