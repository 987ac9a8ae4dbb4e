"""Check a dataset (a CSV file or a directory of CSV files) against its data contract.

Usage::

    python -m training.validate --data PATH --contract FILE --output-dir DIR [--failure-file FILE]
    python training/validate.py ...            # the same, as SageMaker script mode runs it

Arguments (each overrides its environment default):
  --data PATH          CSV file, or directory of *.csv / *.csv.gz files sharing one header
                       (default: $SM_CHANNEL_TRAIN; processing jobs pass /opt/ml/processing/input/...)
  --contract FILE      the data contract, JSON or YAML (default: $MLOPS_CONTRACT)
  --output-dir DIR     where validation_report.json is written (default: $SM_OUTPUT_DATA_DIR)
  --failure-file FILE  when invalid, also write a one-paragraph summary here (SageMaker reads
                       /opt/ml/output/failure)

Exit codes: 0 valid; 1 invalid (every problem is printed and in the report); 2 usage error (missing
argument, unreadable or malformed file), with a one-line message.

The checks are a pandera schema built from the contract (:func:`build_schema`). Check names in the
report: ``missing_column``, ``unexpected_column``, ``type``, ``finite``, ``integer``, ``not_null``,
``max_null_rate``, ``range``, ``allowed``, ``label`` and ``both_classes`` (binary targets), ``two_classes``
(multiclass targets), ``min_rows``. A column whose
values cannot be read as its type is reported once, for that, not again for each value check.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

if not __package__:  # `python training/validate.py`: make the `training` package importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from training._deps import ensure_dependencies  # noqa: E402

ensure_dependencies()  # network-isolated containers: the pinned dependencies come from the shipped wheels

# pandera is not in the framework image: it may be imported only once ensure_dependencies() has installed it.
import pandera.pandas as pa  # noqa: E402
from pandera.errors import SchemaErrors  # noqa: E402

from training.contract import ColumnSpec, DataContract  # noqa: E402
from training.data import (  # noqa: E402
    EXIT_INVALID,
    EXIT_OK,
    Dataset,
    add_path_option,
    read_dataset,
    resolve_contract,
    resolve_path,
    run,
    write_failure,
    write_json,
)

REPORT_FORMAT = "mlops-validation-report/1"
REPORT_FILE = "validation_report.json"
MAX_EXAMPLES = 5

_DTYPES = {"int": "float64", "float": "float64", "category": "category", "bool": "boolean"}
_BOOL_TOKENS = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}
# pandera names its own checks; the report uses stable names.
_PANDERA_CHECKS = {"column_in_dataframe": "missing_column", "column_in_schema": "unexpected_column", "not_nullable": "not_null"}


def _as_category(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.CategoricalDtype):
        if all(isinstance(c, str) for c in s.cat.categories):
            return s
        s = s.astype(object)
    # Categories are strings: a request's 3 and a CSV's "3" are the same category.
    return s.where(s.isna(), s.astype(str)).astype("category")


def _as_bool(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s
    tokens = s.astype(str).str.strip().str.lower().map(_BOOL_TOKENS)
    # Unknown tokens stay as they are, so that the dtype check names them.
    return tokens.where(tokens.notna(), s).where(s.notna(), None)


def _column(name: str, spec: ColumnSpec, contract: DataContract, scope: Literal["dataset", "features"]) -> pa.Column:
    parsers = {"category": [pa.Parser(_as_category)], "bool": [pa.Parser(_as_bool)]}.get(spec.type, [])
    checks = []
    if spec.type in ("int", "float"):
        checks.append(pa.Check(np.isfinite, name="finite"))
    if spec.type == "int":
        checks.append(pa.Check(lambda s: s == np.floor(s), name="integer"))
    if scope == "features":
        return pa.Column(_DTYPES[spec.type], coerce=True, nullable=True, parsers=parsers, checks=checks)

    if spec.min is not None or spec.max is not None:
        lo = -np.inf if spec.min is None else spec.min
        hi = np.inf if spec.max is None else spec.max
        checks.append(pa.Check(lambda s: s.between(lo, hi), name="range"))
    if spec.allowed is not None:
        allowed = list(spec.allowed)
        checks.append(pa.Check(lambda s: s.isin(allowed), name="allowed"))
    if 0 < spec.max_null_rate < 1:
        rate = spec.max_null_rate
        checks.append(pa.Check(lambda s: len(s) == 0 or s.isna().mean() <= rate, ignore_na=False, name="max_null_rate"))
    if name == contract.target and contract.task == "binary":
        within_01 = spec.min is not None and spec.max is not None and spec.min >= 0 and spec.max <= 1
        if spec.type == "int" and not within_01:  # else range and integer checks already say it
            checks.append(pa.Check(lambda s: s.isin([0, 1]), name="label"))
        checks.append(pa.Check(lambda s: bool((s == 0).any() and (s == 1).any()), name="both_classes"))
    elif name == contract.target and contract.task == "multiclass":
        checks.append(pa.Check(lambda s: s.nunique() >= 2, name="two_classes"))
    return pa.Column(
        _DTYPES[spec.type], coerce=True, nullable=spec.max_null_rate > 0, parsers=parsers, checks=checks
    )


def build_schema(contract: DataContract, scope: Literal["dataset", "features"] = "dataset") -> pa.DataFrameSchema:
    """The contract as a pandera schema.

    ``dataset``: every column and every check (training and holdout data). ``features``: the feature
    columns' types only, nulls allowed (inference requests, where ranges are drift, not errors).
    Validated frames come out typed: int and float columns as float64, bool as pandas ``boolean``,
    category as ``category`` with string categories.
    """
    names = list(contract.columns) if scope == "dataset" else contract.features
    columns = {name: _column(name, contract.columns[name], contract, scope) for name in names}
    checks = []
    if scope == "dataset":
        min_rows = contract.min_rows
        checks.append(pa.Check(lambda df: len(df) >= min_rows, name="min_rows"))
    return pa.DataFrameSchema(columns, checks=checks, strict=True)


# ---------------------------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Problem:
    """One failed check: which column (None for the whole dataset), which check, what was found."""

    column: str | None
    check: str
    message: str
    failure_count: int = 0
    examples: tuple[tuple[Any, int], ...] = ()
    """Up to five offending values with how many rows hold each."""
    first_rows: tuple[int, ...] = ()
    """Up to five offending data rows, numbered from 1 (header excluded; files in name order)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "check": self.check,
            "message": self.message,
            "failure_count": self.failure_count,
            "examples": [{"value": v, "count": n} for v, n in self.examples],
            "first_rows": list(self.first_rows),
        }

    def line(self) -> str:
        """The problem without any offending value: column, check, counts and where (first data rows)."""
        where = f" (rows {', '.join(map(str, self.first_rows))})" if len(self.first_rows) > 1 else (
            f" (row {self.first_rows[0]})" if self.first_rows else ""
        )
        return f"{self.column or '(dataset)'} [{self.check}]: {self.message}{where}"


@dataclass(frozen=True)
class ValidationResult:
    rows: int
    problems: list[Problem] = field(default_factory=list)
    frame: pd.DataFrame | None = None
    """The typed frame (see :func:`build_schema`); None when invalid."""

    @property
    def valid(self) -> bool:
        return not self.problems

    def summary(self, source: str) -> str:
        """What failed, in one paragraph for a person or a job's FailureReason."""
        listed = "; ".join(p.line() for p in self.problems[:8])
        more = f"; and {len(self.problems) - 8} more" if len(self.problems) > 8 else ""
        return f"Data validation failed for {source} ({self.rows} rows): {len(self.problems)} problem(s): {listed}{more}."


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if np.isnan(value):
            return None
        return int(value) if value.is_integer() else value
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


def _row_problem(column: str, check: str, cases: pd.DataFrame, spec: ColumnSpec) -> Problem:
    counts = cases["failure_case"].astype(object).map(_plain).value_counts(dropna=False)
    examples = tuple((_plain(v), int(n)) for v, n in counts.head(MAX_EXAMPLES).items())
    rows = pd.to_numeric(cases["index"], errors="coerce").dropna().astype(int)
    first_rows = tuple(int(i) + 1 for i in sorted(rows.unique())[:MAX_EXAMPLES])
    n = len(rows.unique()) if len(rows) else len(cases)
    # Counts and the contract's own terms only: the offending values are customer data, and this message becomes
    # the job's ExitMessage and the failure notification. The values stay in ``examples`` (the encrypted report).
    messages = {
        "type": f"{n} value(s) cannot be read as {spec.type}",
        "finite": f"{n} value(s) are infinite",
        "integer": f"{n} value(s) are not whole numbers",
        "not_null": f"{n} missing value(s); the contract allows none (max_null_rate 0)",
        "range": f"{n} value(s) outside [{'-inf' if spec.min is None else f'{spec.min:g}'}, "
        f"{'inf' if spec.max is None else f'{spec.max:g}'}]",
        "allowed": f"{n} value(s) not among the allowed categories {spec.allowed}",
        "label": f"{n} label(s) are not 0 or 1",
    }
    message = messages.get(check, f"{n} value(s) fail {check}")
    return Problem(column, check, message, n, () if check == "not_null" else examples, first_rows)


def _problems(cases: pd.DataFrame, frame: pd.DataFrame, contract: DataContract) -> list[Problem]:
    cases = cases.assign(check=cases["check"].astype(str).map(lambda c: _PANDERA_CHECKS.get(c, c)))
    problems: list[Problem] = []

    missing = [str(c) for c in cases.loc[cases["check"] == "missing_column", "failure_case"]]
    unexpected = [str(c) for c in cases.loc[cases["check"] == "unexpected_column", "failure_case"]]
    for name in missing:
        hint = difflib.get_close_matches(name, unexpected, n=1)
        message = f"column {name!r} ({contract.columns[name].type}) is missing" + (f" (renamed to {hint[0]!r}?)" if hint else "")
        problems.append(Problem(name, "missing_column", message))
    for name in unexpected:
        hint = difflib.get_close_matches(name, missing, n=1)
        message = f"column {name!r} is not in the contract" + (f" (renamed from {hint[0]!r}?)" if hint else "")
        problems.append(Problem(name, "unexpected_column", message))

    if (cases["check"] == "min_rows").any():
        problems.append(
            Problem(None, "min_rows", f"{len(frame)} rows; the contract requires at least {contract.min_rows} (min_rows)")
        )

    per_column = cases[cases["column"].notna() & ~cases["check"].isin(["missing_column", "unexpected_column", "min_rows"])]
    checks = per_column["check"].map(lambda c: "type" if c.startswith(("coerce_dtype(", "dtype(")) else c)
    per_column = per_column.assign(check=checks)
    mistyped = set(per_column.loc[per_column["check"] == "type", "column"])
    for (column, check), group in per_column.groupby(["column", "check"], sort=False):
        if column in mistyped and check != "type":
            continue  # its checks ran on unreadable values; the type problem says it all
        spec = contract.columns[column]
        if check == "max_null_rate":
            nulls = int(frame[column].isna().sum())
            problems.append(
                Problem(
                    column,
                    check,
                    f"{nulls / len(frame):.3f} of rows are missing ({nulls} of {len(frame)}); "
                    f"the contract allows at most {spec.max_null_rate:g} (max_null_rate)",
                    nulls,
                )
            )
        elif check == "two_classes":
            seen = sorted(_plain(v) for v in frame[column].dropna().unique())
            problems.append(
                Problem(column, check, f"the label has only the class(es) {seen}; a multiclass model needs at least two")
            )
        elif check == "both_classes":
            seen = sorted(_plain(v) for v in frame[column].dropna().unique())
            problems.append(
                Problem(column, check, f"the label has only the value(s) {seen}; training and evaluation need both classes")
            )
        else:
            if check == "type":
                group = group.drop_duplicates(subset=["index", "failure_case"])
            problems.append(_row_problem(column, check, group, spec))
    return problems


def check_frame(frame: pd.DataFrame, contract: DataContract, schema: pa.DataFrameSchema) -> ValidationResult:
    """Check a raw frame against a schema built from ``contract`` by :func:`build_schema`."""
    try:
        typed = schema.validate(frame, lazy=True)
    except SchemaErrors as e:
        return ValidationResult(rows=len(frame), problems=_problems(e.failure_cases, frame, contract))
    return ValidationResult(rows=len(frame), frame=typed)


def validate_frame(frame: pd.DataFrame, contract: DataContract) -> ValidationResult:
    """Check a raw frame (as :func:`training.data.read_dataset` reads it) against every rule of the contract."""
    return check_frame(frame, contract, build_schema(contract))


def validate_dataset(path: Path, contract: DataContract) -> tuple[Dataset, ValidationResult]:
    """Read and check a dataset; raises :class:`training.data.UsageError` when it cannot be read."""
    dataset = read_dataset(path, contract)
    return dataset, validate_frame(dataset.frame, contract)


def report(result: ValidationResult, source: Path, dataset: Dataset, contract: DataContract) -> dict[str, Any]:
    """The ``validation_report.json`` document (format in training/README.md)."""
    return {
        "format": REPORT_FORMAT,
        "valid": result.valid,
        "dataset": str(source),
        "files": [str(f) for f in dataset.files],
        "rows": result.rows,
        "contract": {"target": contract.target, "columns": list(contract.columns), "min_rows": contract.min_rows},
        "problems": [p.to_json() for p in result.problems],
    }


def print_result(result: ValidationResult, source: Path, dataset: Dataset) -> None:
    files = f"{len(dataset.files)} file{'s' if len(dataset.files) != 1 else ''}"
    if result.valid:
        print(f"validate: PASSED: {source} ({result.rows} rows, {files})", flush=True)
        return
    print(f"validate: FAILED: {len(result.problems)} problem(s) in {source} ({result.rows} rows, {files})")
    for p in result.problems:
        print(f"  - {p.line()}")
    sys.stdout.flush()


def check_and_report(source: Path, contract: DataContract, output_dir: Path, failure_file: Path | None) -> ValidationResult:
    """Validate, print the result, write the report; on failure also the failure file and stderr summary."""
    dataset, result = validate_dataset(source, contract)
    print_result(result, source, dataset)
    write_json(output_dir / REPORT_FILE, report(result, source, dataset, contract))
    if not result.valid:
        summary = result.summary(str(source))
        write_failure(failure_file, summary)
        print(summary, file=sys.stderr)
    return result


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="training.validate", description="Check a dataset against its data contract.")
    add_path_option(parser, "data", "CSV file or directory of CSV files", env="SM_CHANNEL_TRAIN")
    add_path_option(parser, "contract", "data contract, JSON or YAML", env="MLOPS_CONTRACT")
    add_path_option(parser, "output-dir", f"where {REPORT_FILE} is written", env="SM_OUTPUT_DATA_DIR")
    add_path_option(parser, "failure-file", "when invalid, write a one-paragraph summary here")
    args = parser.parse_args(argv)

    source = resolve_path(args.data, "data", "SM_CHANNEL_TRAIN")
    output_dir = resolve_path(args.output_dir, "output-dir", "SM_OUTPUT_DATA_DIR")
    contract = resolve_contract(args.contract)
    failure_file = Path(args.failure_file) if args.failure_file else None
    result = check_and_report(source, contract, output_dir, failure_file)
    return EXIT_OK if result.valid else EXIT_INVALID


if __name__ == "__main__":
    run(main)
