"""The typed contracts of the training steps: data contract, evaluation rule, hyperparameters, metric
lines, lineage metadata.

This module imports only pydantic (YAML support imports PyYAML when a YAML file is read): the stack
configuration embeds :class:`DataContract`, :class:`EvaluationRule` and :class:`Hyperparameters`, and
the infrastructure code must not need pandas or scikit-learn to load it.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from training.metric_names import (
    EVALUATION_METRICS,
    GATE_METRICS,
    HIGHER_IS_BETTER,
    NON_NEGATIVE,
    UNIT_INTERVAL,
    Direction,
    Task,
    direction_of,
)

ColumnType = Literal["int", "float", "category", "bool"]
MetricName = Literal["roc_auc", "accuracy", "f1", "log_loss"]
"""The binary task's gate metrics (kept for callers that type them; the rule itself takes any metric name)."""

# Every metric train.py and evaluate.py print for a binary model (the default task); per task: EVALUATION_METRICS.
METRICS: tuple[str, ...] = EVALUATION_METRICS["binary"]
LOWER_IS_BETTER = frozenset(name for name, higher in HIGHER_IS_BETTER.items() if not higher)
METRIC_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
"""A metric name as evaluation.json keys and SageMaker metric definitions carry it."""
TRAINING_SPLITS: tuple[str, ...] = ("train", "validation")

# Compared with a little slack so that a metric exactly at a threshold is not failed by float noise.
_TOLERANCE = 1e-12


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------------------------------------------------------
# Data contract


class ColumnSpec(_Strict):
    """One column of a dataset: its type and the values it may hold."""

    type: ColumnType = Field(..., description="Value type: int, float, category (strings) or bool.")
    min: float | None = Field(None, description="Smallest allowed value (int and float columns); none by default.")
    max: float | None = Field(None, description="Largest allowed value (int and float columns); none by default.")
    allowed: list[str] | None = Field(
        None, min_length=1, description="The categories a category column may hold; any by default."
    )
    max_null_rate: float = Field(0.0, ge=0.0, le=1.0, description="Largest allowed share of missing values (0..1).")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        numeric = self.type in ("int", "float")
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"min/max apply to int and float columns only, not to type {self.type!r}; remove them")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g}); swap them")
        if self.allowed is not None:
            if self.type != "category":
                raise ValueError(f"allowed applies to category columns only, not to type {self.type!r}; remove it")
            dupes = sorted({a for a in self.allowed if self.allowed.count(a) > 1})
            if dupes:
                raise ValueError(f"allowed lists {dupes} more than once; list each category once")
        return self


class DataContract(_Strict):
    """What a model's data must look like: every column (features and the label) and how many rows."""

    target: str = Field(
        ..., min_length=1,
        description="Name of the label column (binary: int 0/1 or bool; multiclass: int class codes; regression: int or float).",
    )
    task: Task = Field(
        "binary",
        description="What the label is: binary (0/1), multiclass (an integer class code) or regression (a number).",
    )
    columns: dict[str, ColumnSpec] = Field(
        ..., description="Every column, features and target, by name; feature order is the order given here."
    )
    min_rows: int = Field(100, ge=1, description="Fewest rows a dataset may have.")

    @model_validator(mode="after")
    def _target_and_features(self) -> Self:
        if self.target not in self.columns:
            raise ValueError(
                f"target {self.target!r} is not among the columns ({', '.join(self.columns) or 'none'}); "
                "add it to columns or name an existing column"
            )
        spec = self.columns[self.target]
        accepted = {"binary": ("int", "bool"), "multiclass": ("int",), "regression": ("int", "float")}[self.task]
        if spec.type not in accepted:
            what = {
                "binary": "a binary label must be int (0/1) or bool",
                "multiclass": "a multiclass label must be int (a class code per class)",
                "regression": "a regression target must be int or float",
            }[self.task]
            raise ValueError(f"target {self.target!r} has type {spec.type!r}; {what} (task {self.task!r})")
        if spec.max_null_rate != 0:
            raise ValueError(f"target {self.target!r} has max_null_rate {spec.max_null_rate}; every row needs a label (use 0)")
        if not self.features:
            raise ValueError("columns holds only the target; add at least one feature column")
        blank = [name for name in self.columns if not name.strip()]
        if blank:
            raise ValueError("column names must not be blank")
        return self

    @property
    def features(self) -> list[str]:
        """Feature columns, in contract order (the column order of CSV inference requests)."""
        return [name for name in self.columns if name != self.target]


def load_contract(path: str | Path) -> DataContract:
    """Read a contract file: YAML for ``.yaml``/``.yml``, JSON otherwise.

    Raises OSError when the file cannot be read, ValueError when it does not parse, and pydantic's
    ValidationError when it parses but is not a valid contract.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError(f"{path}: reading a YAML contract needs PyYAML; install it or give a JSON contract") from None
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{path}: not valid YAML: {e}") from None
    else:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON: {e}") from None
    return DataContract.model_validate(raw)


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: where, what is wrong, and the value given."""
    lines = []
    for e in err.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        given = "" if e["type"] == "missing" else f" (got {e.get('input')!r})"
        lines.append(f"{where}: {e['msg']}{given}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Models passed to the containers as `--name value` arguments


def _decode(value: str) -> str | None:
    """A hyperparameter string as SageMaker delivers it, ready for pydantic's lax parsing."""
    value = value.strip()
    # The SageMaker Python SDK JSON-encodes string hyperparameters; the raw API does not.
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return None if value.lower() in ("none", "null") else value


def _encode(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


class CliModel(_Strict):
    """A model whose fields travel as SageMaker hyperparameters / container arguments (all strings)."""

    def to_hyperparameters(self) -> dict[str, str]:
        """The SageMaker ``HyperParameters`` map. Fields that are None are left out: their default applies."""
        return {name: _encode(value) for name, value in self.model_dump().items() if value is not None}

    def to_cli_args(self) -> list[str]:
        """``["--name", "value", ...]``: what the container passes the entry point for each hyperparameter."""
        return [token for name, value in self.to_hyperparameters().items() for token in (f"--{name}", value)]

    @classmethod
    def from_strings(cls, values: Mapping[str, str], context: Mapping[str, object] | None = None) -> Self:
        """Build from string values (``"200"``, ``"0.1"``, ``"true"``, ``"none"``); raises ValidationError.
        ``context``: pydantic validation context (EvaluationRule takes ``{"task": ...}``)."""
        return cls.model_validate({name: _decode(value) for name, value in values.items()}, context=context)

    @classmethod
    def from_cli_args(cls, argv: Sequence[str], context: Mapping[str, object] | None = None) -> tuple[Self, list[str]]:
        """Take this model's ``--name value`` / ``--name=value`` pairs out of ``argv`` (``-`` and ``_`` alike).

        Returns the model and the arguments that are not its fields, in order. Raises ValueError for a
        field given without a value and ValidationError for a bad value.
        """
        values, rest = cls.take_cli_args(argv)
        return cls.from_strings(values, context), rest

    @classmethod
    def take_cli_args(cls, argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
        """This model's ``--name value`` pairs out of ``argv``, as strings (not yet validated), and the rest."""
        values: dict[str, str] = {}
        rest: list[str] = []
        i = 0
        while i < len(argv):
            token = argv[i]
            name, eq, inline = token[2:].partition("=") if token.startswith("--") else ("", "", "")
            key = name.replace("-", "_")
            if key in cls.model_fields:
                if eq:
                    values[key] = inline
                elif i + 1 < len(argv):
                    i += 1
                    values[key] = argv[i]
                else:
                    raise ValueError(f"--{name} needs a value")
            else:
                rest.append(token)
            i += 1
        return values, rest

    @classmethod
    def cli_help(cls) -> str:
        """The fields as argparse epilog text: name, default and description."""
        lines = [f"{cls.__name__} (--name value):"]
        for name, field in cls.model_fields.items():
            lines.append(f"  --{name} (default {field.default!r}): {field.description}")
        return "\n".join(lines)


class Hyperparameters(CliModel):
    """Hyperparameters of the built-in recipe: scikit-learn's HistGradientBoostingClassifier (binary, multiclass)
    or HistGradientBoostingRegressor (regression)."""

    task: Task | None = Field(
        None,
        description="binary, multiclass or regression; default: the data contract's task (a different one is refused).",
    )

    max_iter: int = Field(200, ge=1, le=10_000, description="Boosting iterations (trees).")
    learning_rate: float = Field(0.1, gt=0.0, le=1.0, description="Shrinkage applied to each tree.")
    max_depth: int | None = Field(None, ge=1, le=256, description="Largest tree depth; unlimited when none.")
    max_leaf_nodes: int = Field(31, ge=2, le=65_536, description="Most leaves per tree.")
    min_samples_leaf: int = Field(20, ge=1, description="Fewest training rows per leaf.")
    l2_regularization: float = Field(0.0, ge=0.0, description="L2 penalty on leaf values.")
    early_stopping: bool = Field(
        False, description="Stop adding trees once the score on an internal 10% split stops improving for 10 iterations."
    )
    validation_fraction: float = Field(
        0.2, ge=0.05, le=0.5,
        description="Share of the training channel held out for validation metrics (stratified by class for classification).",
    )
    random_state: int = Field(0, ge=0, le=2**32 - 1, description="Seed of the validation split and the estimator.")


class EvaluationRule(CliModel):
    """The rule a newly trained model must pass to be registered: a metric its evaluation reports, the direction in
    which it is better, an absolute level and the allowed regression against the production model."""

    primary_metric: str = Field(
        "roc_auc",
        pattern=METRIC_NAME_PATTERN,
        description="The metric the verdict is based on: a key of evaluation.json's metrics (the built-in recipe: "
        "training.metric_names.GATE_METRICS of its task).",
    )
    direction: Direction | None = Field(
        None,
        description="higher or lower (which values are better); default: the platform's own direction for the metrics "
        "it knows (training.metric_names.HIGHER_IS_BETTER); required for any other metric name.",
    )
    minimum: float = Field(
        0.0,
        description="Level the primary metric must reach: at least this when higher is better, at most this when lower is.",
    )
    max_regression: float = Field(
        0.0, ge=0.0, description="How much worse than the production model the primary metric may be."
    )

    @field_validator("primary_metric")
    @classmethod
    def _reported_for_task(cls, value: str, info: ValidationInfo) -> str:
        """With a validation context ``{"task": ...}`` (the built-in recipe's evaluate), the metric must be one it
        reports for that task."""
        task = (info.context or {}).get("task")
        if task is not None and value not in GATE_METRICS[task]:
            names = [repr(n) for n in GATE_METRICS[task]]
            raise PydanticCustomError(
                "literal_error", "Input should be {expected}", {"expected": ", ".join(names[:-1]) + " or " + names[-1]}
            )
        return value

    @model_validator(mode="after")
    def _direction_and_minimum(self) -> Self:
        m = self.primary_metric
        known = direction_of(m)
        if known is None and self.direction is None:
            raise ValueError(
                f"primary_metric {m!r} is not a metric the platform knows ({', '.join(HIGHER_IS_BETTER)}); "
                "give its direction: higher or lower (which values are better)"
            )
        if known is not None and self.direction is not None and self.direction != known:
            raise ValueError(f"direction {self.direction!r} contradicts {m}, for which {known} is better; remove direction or set it to {known!r}")
        if m in NON_NEGATIVE and not self.minimum > 0:
            shown = m.replace("_", " ")
            raise ValueError(
                f"minimum {self.minimum:g} with primary_metric {m} (lower is better) means '{shown} at most "
                f"{self.minimum:g}', which no model reaches; set minimum to the highest acceptable {shown}, e.g. 0.5"
            )
        if m in UNIT_INTERVAL and not 0.0 <= self.minimum <= 1.0:
            raise ValueError(f"minimum {self.minimum:g} is outside 0..1, the range of {m}")
        if m == "r2" and self.minimum > 1.0:
            raise ValueError(f"minimum {self.minimum:g} is above 1, the largest r2")
        return self

    @property
    def resolved_direction(self) -> Direction:
        """The rule's direction: as given, else the platform's for its metric."""
        return self.direction or direction_of(self.primary_metric) or "higher"

    @property
    def higher_is_better(self) -> bool:
        return self.resolved_direction == "higher"

    def judge(self, metrics: Mapping[str, float], production: Mapping[str, float] | None) -> tuple[bool, list[str]]:
        """Apply the rule. Returns whether it passes, and the reasons: the failed conditions when it fails,
        the met ones when it passes. Raises KeyError when a metrics map lacks the primary metric."""
        m = self.primary_metric
        value = metrics[m]
        met: list[str] = []
        failed: list[str] = []

        if self.higher_is_better:
            reaches, relation = value >= self.minimum - _TOLERANCE, "at least"
        else:
            reaches, relation = value <= self.minimum + _TOLERANCE, "at most"
        if reaches:
            met.append(f"{m} {value:.6f} reaches the minimum ({relation} {self.minimum:g})")
        else:
            failed.append(f"{m} {value:.6f} does not reach the minimum ({relation} {self.minimum:g})")

        if production is None:
            met.append("no production model to compare with (first model)")
        else:
            before = production[m]
            worse_by = (before - value) if self.higher_is_better else (value - before)
            if worse_by > self.max_regression + _TOLERANCE:
                failed.append(
                    f"{m} {value:.6f} is worse than production {before:.6f} by {worse_by:.6f}, "
                    f"more than max_regression {self.max_regression:g}"
                )
            elif worse_by > 0:
                met.append(
                    f"{m} {value:.6f} is worse than production {before:.6f} by {worse_by:.6f}, "
                    f"within max_regression {self.max_regression:g}"
                )
            else:
                met.append(f"{m} {value:.6f} is not worse than production {before:.6f}")
        return (not failed, failed or met)


# ---------------------------------------------------------------------------------------------------------------
# Metric lines: what train.py and evaluate.py print, and the regexes SageMaker extracts them with

_NUMBER = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_line(split: str, name: str, value: float) -> str:
    """``validation:roc_auc=0.873100``: one metric as printed to the job log."""
    return f"{split}:{name}={value:.6f}"


def print_metrics(split: str, metrics: dict[str, float]) -> None:
    for name, value in metrics.items():
        print(metric_line(split, name, value), flush=True)


def metric_definitions(splits: Sequence[str] = TRAINING_SPLITS, names: Sequence[str] = METRICS) -> list[dict[str, str]]:
    """SageMaker ``MetricDefinitions`` for ``names`` in the given splits (training jobs: train, validation; the
    built-in recipe of another task: ``names=EVALUATION_METRICS[task]``)."""
    return [
        {"Name": f"{split}:{name}", "Regex": f"{split}:{name}={_NUMBER}"}
        for split in splits
        for name in names
    ]


METRIC_DEFINITIONS: list[dict[str, str]] = metric_definitions()


# ---------------------------------------------------------------------------------------------------------------
# Lineage metadata of a registered model version

# SageMaker's CustomerMetadataMap (botocore sagemaker service-2.json): at most 50 entries, keys 1..128
# and values 1..256 characters of letters, numbers, separators and _.:/=+-@.
CUSTOMER_METADATA_MAX_ENTRIES = 50
CUSTOMER_METADATA_MAX_KEY = 128
CUSTOMER_METADATA_MAX_VALUE = 256
_METADATA_PUNCTUATION = set("_.:/=+-@")


def _metadata_char_ok(c: str) -> bool:
    return c in _METADATA_PUNCTUATION or unicodedata.category(c)[0] in "LNZ"


class LineageMetadataError(ValueError):
    """The lineage metadata does not fit SageMaker's CustomerMetadataProperties."""


class DataVersion(_Strict):
    """One exact input dataset: where it is and which S3 object version."""

    s3_uri: str = Field(..., pattern=r"^s3://[^/]+/.*$", description="S3 URI of the channel's data.")
    version_id: str | None = Field(None, description="S3 version id of the object; none for a prefix or unversioned data.")


class LineageMetadata(_Strict):
    """What a registered model version carries so that it can be traced back and reproduced."""

    stack: str = Field(..., min_length=1, description="The Pulumi stack that trained it.")
    model_name: str = Field(..., min_length=1, description="The model (key of mlops:models).")
    training_job_name: str = Field(..., min_length=1, description="The SageMaker training job that produced it.")
    code_sha256: str = Field(..., pattern=r"^[0-9a-f]{64}$", description="sha256 of the sourcedir.tar.gz it was trained with.")
    data: dict[str, DataVersion] = Field(..., min_length=1, description="Input data per channel (train, test, ...).")
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters, description="The classifier's hyperparameters.")
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Evaluation metrics by 'split:name' (e.g. 'test:roc_auc')."
    )

    def to_customer_metadata(self) -> dict[str, str]:
        """A flat string map for ``CustomerMetadataProperties``; raises LineageMetadataError if it does not fit."""
        entries: dict[str, str] = {
            "stack": self.stack,
            "model": self.model_name,
            "training_job": self.training_job_name,
            "code_sha256": self.code_sha256,
        }
        for channel, version in self.data.items():
            entries[f"data:{channel}:s3_uri"] = version.s3_uri
            if version.version_id is not None:
                entries[f"data:{channel}:version_id"] = version.version_id
        for name, value in self.hyperparameters.to_hyperparameters().items():
            entries[f"hyperparameter:{name}"] = value
        for name, value in self.metrics.items():
            entries[f"metric:{name}"] = f"{value:.6f}" if math.isfinite(value) else str(value)

        problems = []
        if len(entries) > CUSTOMER_METADATA_MAX_ENTRIES:
            problems.append(
                f"{len(entries)} entries, more than the {CUSTOMER_METADATA_MAX_ENTRIES} SageMaker allows "
                "(record fewer metrics or channels)"
            )
        for key, value in entries.items():
            for what, text, limit in (("key", key, CUSTOMER_METADATA_MAX_KEY), ("value", value, CUSTOMER_METADATA_MAX_VALUE)):
                shown = text if len(text) <= 60 else text[:57] + "..."
                if not 1 <= len(text) <= limit:
                    problems.append(f"{what} of {key!r} is {len(text)} characters; 1..{limit} allowed: {shown!r}")
                bad = sorted({c for c in text if not _metadata_char_ok(c)})
                if bad:
                    problems.append(
                        f"{what} of {key!r} has characters {bad} that SageMaker refuses "
                        f"(letters, numbers, spaces and _.:/=+-@ only): {shown!r}"
                    )
        if problems:
            raise LineageMetadataError("lineage metadata does not fit CustomerMetadataProperties:\n  - " + "\n  - ".join(problems))
        return entries
