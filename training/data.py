"""Plumbing shared by the step entry points: paths from the SageMaker environment, the contract,
datasets (a CSV file or a directory of them), JSON outputs and exit codes."""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from pydantic import ValidationError

from training.contract import CliModel, DataContract, format_validation_error, load_contract

if TYPE_CHECKING:  # pandas is imported where a dataset is read: the entry points' usage errors need none of it
    import pandas as pd

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2

CONTRACT_ENV = "MLOPS_CONTRACT"
CSV_SUFFIXES = (".csv", ".csv.gz")

# Only these spell a missing number. Category and bool cells are missing only when empty, so that a
# category named "NA" or "None" stays a category.
NUMERIC_NULLS = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]
_SNIFF_BYTES = 64 * 1024


class UsageError(Exception):
    """Input a person must fix (a missing path, an unreadable or malformed file): exit code 2, no traceback."""


def add_path_option(parser: argparse.ArgumentParser, name: str, help: str, env: str | None = None) -> None:
    """``--some-path`` (also spelled ``--some_path``, as SageMaker hyperparameters are), defaulting to ``$env``."""
    if env:
        help = f"{help} (default: ${env})"
    spellings = dict.fromkeys([f"--{name}", f"--{name.replace('-', '_')}"])
    parser.add_argument(*spellings, dest=name.replace("-", "_"), help=help, default=None)


def resolve_path(value: str | None, option: str, env: str | None = None) -> Path:
    """The explicit argument, else the environment variable, else a usage error naming both."""
    chosen = value or (os.environ.get(env) if env else None)
    if not chosen:
        raise UsageError(f"no --{option} given" + (f" and ${env} is not set" if env else ""))
    return Path(chosen)


M = TypeVar("M", bound=CliModel)


def split_model_args(
    model: type[M], argv: Sequence[str], what: str, context: Mapping[str, object] | None = None
) -> tuple[M, list[str]]:
    """Take ``model``'s ``--name value`` arguments out of ``argv``; a bad or missing value is a usage error."""
    try:
        return model.from_cli_args(argv, context)
    except ValidationError as e:
        raise UsageError(f"invalid {what}:\n{format_validation_error(e)}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None


def resolve_contract(value: str | None, default: DataContract | None = None) -> DataContract:
    """``--contract``, else ``$MLOPS_CONTRACT``, else ``default`` (the contract stored with a model)."""
    chosen = value or os.environ.get(CONTRACT_ENV)
    if not chosen:
        if default is not None:
            return default
        raise UsageError(f"no --contract given and ${CONTRACT_ENV} is not set; give the data contract (JSON or YAML)")
    path = Path(chosen)
    try:
        return load_contract(path)
    except OSError as e:
        raise UsageError(f"cannot read contract {path}: {e.strerror or e}") from None
    except ValidationError as e:
        raise UsageError(f"contract {path} is invalid:\n{format_validation_error(e)}") from None
    except ValueError as e:
        raise UsageError(str(e)) from None


@dataclass(frozen=True)
class Dataset:
    """A dataset as read: the raw frame (values not yet checked against the contract) and its files."""

    frame: pd.DataFrame
    files: tuple[Path, ...]


def dataset_files(path: Path) -> tuple[Path, ...]:
    """The CSV files of a dataset: the file itself, or every ``*.csv``/``*.csv.gz`` under a directory, by name."""
    if path.is_file():
        return (path,)
    if not path.is_dir():
        raise UsageError(f"{path}: no such file or directory")
    files = tuple(sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(CSV_SUFFIXES)))
    if not files:
        present = sorted(p.name for p in path.iterdir())[:5]
        raise UsageError(
            f"{path}: no CSV files (*.csv, *.csv.gz) in this directory"
            + (f"; it holds {', '.join(present)}" if present else "; it is empty")
        )
    return files


def _sniff(path: Path) -> None:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except (OSError, EOFError) as e:
        raise UsageError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    if b"\x00" in head:
        raise UsageError(f"{path}: binary data (NUL bytes), not a CSV text file")


def _read_csv(path: Path, contract: DataContract) -> pd.DataFrame:
    import pandas as pd

    _sniff(path)
    dtypes: dict[str, Any] = {}
    nulls: dict[str, list[str]] = {}
    for name, spec in contract.columns.items():
        if spec.type == "category":
            dtypes[name] = "category"
        nulls[name] = NUMERIC_NULLS if spec.type in ("int", "float") else [""]
    try:
        return pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=nulls, encoding="utf-8", low_memory=False)
    except pd.errors.EmptyDataError:
        raise UsageError(f"{path}: empty file, no header row") from None
    except pd.errors.ParserError as e:
        raise UsageError(f"{path}: malformed CSV: {str(e).strip()}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    except (OSError, EOFError) as e:
        raise UsageError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None


def read_dataset(path: Path, contract: DataContract) -> Dataset:
    """Read a CSV file or directory (header row required; all files must share it). Raises UsageError for
    input that is not a readable CSV dataset; whether the values fit the contract is validate's job."""
    files = dataset_files(path)
    frames = []
    for file in files:
        frame = _read_csv(file, contract)
        if frames and list(frame.columns) != list(frames[0].columns):
            raise UsageError(
                f"{file}: header {list(frame.columns)} differs from {files[0]} {list(frames[0].columns)}; "
                "all files of a dataset must have the same columns"
            )
        frames.append(frame)
    import pandas as pd

    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    for name, spec in contract.columns.items():
        # Files with different category sets concatenate to plain strings.
        if spec.type == "category" and name in frame and not isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype("category")
    return Dataset(frame=frame, files=files)


def json_safe(value: Any) -> Any:
    """NaN and infinities become null: the files we write are strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n", encoding="utf-8")


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read {what} {path}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{what} {path} is not valid JSON: {e}") from None


def write_failure(path: Path | None, summary: str) -> None:
    """The one-paragraph reason SageMaker shows as the job's FailureReason (it keeps about 1 KB)."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(summary[:1000], encoding="utf-8")


# Where SageMaker reads a failed job's reason when the job names no --failure-file: a training job's
# FailureReason is $SM_OUTPUT_DIR/failure; a processing job's ExitMessage is /opt/ml/output/message.
PROCESSING_JOB_CONFIG = Path("/opt/ml/config/processingjobconfig.json")
PROCESSING_MESSAGE = Path("/opt/ml/output/message")


def failure_file_of(argv: Sequence[str]) -> Path | None:
    """The failure file a job names (``--failure-file F``, ``--failure_file F`` or ``=F``), else SageMaker's own."""
    for i, arg in enumerate(argv):
        for name in ("--failure-file", "--failure_file"):
            if arg == name and i + 1 < len(argv):
                return Path(argv[i + 1])
            if arg.startswith(name + "="):
                return Path(arg.split("=", 1)[1])
    if os.environ.get("SM_OUTPUT_DIR"):  # set by sagemaker-training for the user script
        return Path(os.environ["SM_OUTPUT_DIR"]) / "failure"
    if PROCESSING_JOB_CONFIG.is_file():
        return PROCESSING_MESSAGE
    return None


def run(main: Callable[[Sequence[str]], int]) -> NoReturn:
    """Run an entry point: bad input is a one-line error and exit code 2, never a traceback.

    The line goes to stderr and to the failure file too: SageMaker shows that file as the job's failure reason,
    and without it a usage error reaches the CT flow as ``ExecuteUserScriptError ... ErrorMessage ""``.
    """
    argv = sys.argv[1:]
    try:
        code = main(argv)
    except UsageError as e:
        code, line = EXIT_USAGE, f"error: {e}"
    except OSError as e:  # writing an output: a read-only or missing mount
        code, line = EXIT_USAGE, (f"error: {e.strerror}: {e.filename}" if e.filename else f"error: {e}")
    else:
        sys.exit(code)
    print(line, file=sys.stderr)
    try:
        write_failure(failure_file_of(argv), line)
    except OSError:
        pass  # the failure file is where the error is reported; stderr already has it
    sys.exit(code)
