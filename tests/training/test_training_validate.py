"""training/validate.py, run as SageMaker runs it, on good data, schema changes, broken values and
malformed files."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from training_steps import CONTRACT, Run, Step, run_steps

from training import validate
from training.data import UsageError, read_dataset
from training.sample_data import generate
from training.validate import validate_frame


@dataclass(frozen=True)
class Outcome:
    step: Step
    report: dict | None
    failure: str | None

    def problem(self, column: str | None, check: str) -> dict:
        assert self.report is not None, self.step.stderr
        found = [p for p in self.report["problems"] if p["column"] == column and p["check"] == check]
        assert found, f"no {check} problem for {column}: {self.report['problems']}"
        return found[0]


def _strings(rows: int = 300, seed: int = 11) -> pd.DataFrame:
    """A good dataset as the text a CSV holds, to break on purpose."""
    return generate(rows, seed=seed).astype(str).replace("nan", "")


def _changed(frame: pd.DataFrame, column: str, rows: list[int], value: str) -> pd.DataFrame:
    frame = frame.copy()
    frame.loc[rows, column] = value
    return frame


CASES: dict[str, pd.DataFrame | bytes] = {
    "good": _strings(),
    "renamed": _strings().rename(columns={"tenure_months": "tenure"}),
    "missing": _strings().drop(columns=["region"]),
    "extra": _strings().assign(customer_id="c-1"),
    "retyped": _strings().assign(monthly_charges=lambda f: "$" + f["monthly_charges"]),
    # Problems in different columns are reported independently: one file holds three.
    "broken_values": _changed(
        _changed(_changed(_strings(), "support_calls", [3, 40, 41], "999"), "plan", [5, 6, 7, 8], "gold"),
        "monthly_charges",
        list(range(0, 300, 10)),
        "",
    ),
    "ragged": b"tenure_months,monthly_charges,support_calls,plan,region,autopay,churned\n"
    b"1,20.5,0,basic,north,True,0\n2,30.0,1,basic,south,False,1,extra,fields\n",
    "binary": bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)) + b"\x00",
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, Outcome]:
    """Every case validated at once, each by its own process: the script (SageMaker environment) for good
    data, the module with explicit arguments for the rest."""
    root = tmp_path_factory.mktemp("validate")
    runs = []
    for name, content in CASES.items():
        data = root / name / "data" / "part.csv"
        data.parent.mkdir(parents=True)
        if isinstance(content, bytes):
            data.write_bytes(content)
        else:
            content.to_csv(data, index=False)
        out = root / name / "out"
        if name == "good":
            env = {"SM_CHANNEL_TRAIN": str(data.parent), "SM_OUTPUT_DATA_DIR": str(out), "MLOPS_CONTRACT": str(CONTRACT)}
            runs.append(Run("validate", [], env, script=True))
        else:
            args = ["--data", str(data.parent), "--contract", str(CONTRACT), "--output-dir", str(out)]
            runs.append(Run("validate", [*args, "--failure-file", str(root / name / "failure")]))
    steps = run_steps(runs, cwd=root)
    results = {}
    for name, step in zip(CASES, steps):
        report = root / name / "out" / "validation_report.json"
        failure = root / name / "failure"
        results[name] = Outcome(
            step,
            json.loads(report.read_text()) if report.exists() else None,
            failure.read_text() if failure.exists() else None,
        )
    return results


def test_good_data_passes(outcomes):
    good = outcomes["good"]
    assert good.step.returncode == 0, good.step.stdout + good.step.stderr
    assert good.report["valid"] is True and good.report["problems"] == []
    assert good.report["format"] == "mlops-validation-report/1"
    assert good.report["rows"] == 300
    assert "PASSED" in good.step.stdout


@pytest.mark.parametrize(
    "case, column, check",
    [
        ("renamed", "tenure_months", "missing_column"),
        ("renamed", "tenure", "unexpected_column"),
        ("missing", "region", "missing_column"),
        ("extra", "customer_id", "unexpected_column"),
        ("retyped", "monthly_charges", "type"),
    ],
)
def test_schema_change_fails_naming_the_column(outcomes, case, column, check):
    outcome = outcomes[case]
    assert outcome.step.returncode == 1
    assert outcome.report["valid"] is False
    outcome.problem(column, check)
    assert f"{column} [{check}]" in outcome.step.stdout
    assert column in outcome.failure


def test_rename_is_reported_as_a_likely_rename(outcomes):
    assert "renamed to 'tenure'?" in outcomes["renamed"].problem("tenure_months", "missing_column")["message"]


def test_retyped_column_reports_offending_values_once(outcomes):
    outcome = outcomes["retyped"]
    problem = outcome.problem("monthly_charges", "type")
    assert problem["failure_count"] > 250
    assert all(str(e["value"]).startswith("$") for e in problem["examples"])
    assert [p["check"] for p in outcome.report["problems"] if p["column"] == "monthly_charges"] == ["type"]


def test_out_of_range_values_are_counted_with_examples(outcomes):
    outcome = outcomes["broken_values"]
    assert outcome.step.returncode == 1
    problem = outcome.problem("support_calls", "range")
    assert problem["failure_count"] == 3
    assert problem["examples"] == [{"value": 999, "count": 3}]
    assert problem["first_rows"] == [4, 41, 42]
    assert "support_calls [range]: 3 value(s) outside [0, 50] (rows 4, 41, 42)" in outcome.step.stdout
    assert "999" not in outcome.step.stdout  # values only in the report's examples


def test_disallowed_category_is_reported(outcomes):
    outcome = outcomes["broken_values"]
    assert outcome.step.returncode == 1
    problem = outcome.problem("plan", "allowed")
    assert problem["examples"] == [{"value": "gold", "count": 4}]
    # The log and the failure file (a job's ExitMessage, which reaches e-mail) name no customer value.
    assert "gold" not in outcome.step.stdout and "gold" not in outcome.step.stderr


def test_null_rate_above_the_contract_is_reported(outcomes):
    problem = outcomes["broken_values"].problem("monthly_charges", "max_null_rate")
    assert "at most 0.05" in problem["message"]
    assert problem["failure_count"] >= 30


@pytest.mark.parametrize(
    "case, message",
    [
        ("ragged", "malformed CSV: Error tokenizing data. C error: Expected 7 fields in line 3, saw 9"),
        ("binary", "binary data (NUL bytes), not a CSV text file"),
    ],
)
def test_malformed_csv_is_a_clear_usage_error(outcomes, case, message):
    step = outcomes[case].step
    assert step.returncode == 2
    assert message in step.stderr
    assert "Traceback" not in step.stderr
    assert step.stderr.startswith("error: ")


def test_missing_data_is_a_usage_error(tmp_path):
    args = ["--data", str(tmp_path / "nope"), "--contract", str(CONTRACT), "--output-dir", str(tmp_path)]
    (step,) = run_steps([Run("validate", args)], cwd=tmp_path)
    assert step.returncode == 2
    assert "nope: no such file or directory" in step.stderr and "Traceback" not in step.stderr


@pytest.mark.parametrize(
    "content, message",
    [
        ("tenure_months,plan\n1,caf\xe9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9"),
        (b"", "empty file, no header row"),
        (None, "no CSV files (*.csv, *.csv.gz) in this directory; it holds notes.txt"),
    ],
)
def test_unreadable_datasets_are_usage_errors(tmp_path, contract, content, message):
    if content is None:
        (tmp_path / "notes.txt").write_text("hello")
    else:
        (tmp_path / "part.csv").write_bytes(content)
    with pytest.raises(UsageError, match=re.escape(message)):
        read_dataset(tmp_path, contract)


def test_missing_contract_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MLOPS_CONTRACT", raising=False)
    with pytest.raises(UsageError, match=r"no --contract given and \$MLOPS_CONTRACT is not set"):
        validate.main(["--data", str(tmp_path), "--output-dir", str(tmp_path)])


def test_generated_data_meets_the_shipped_contract(contract):
    frame = pd.read_csv(Path(CONTRACT).parent / "churn.csv", dtype={"plan": "category", "region": "category"})
    assert validate_frame(frame, contract).valid
    assert validate_frame(generate(5000, seed=9), contract).valid
