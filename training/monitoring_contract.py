"""What the drift and quality jobs share with the components that deploy them: metric names, S3 prefixes, and the
settings that travel as environment variables. Standard library only, so ``components/`` (and its dashboard) import
it without loading numpy; ``training.drift`` and ``training.quality`` import these names from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

# --- drift -------------------------------------------------------------------------------------------------------

DRIFT_REPORTS_PREFIX = "drift-reports"
"""Reports live under ``<model>/drift-reports/YYYY/MM/DD/HH.json`` in the capture bucket."""

# CloudWatch metric names (the alarms in components.monitoring.drift watch MaxDriftScore and RecordsScored).
METRIC_PSI = "PSI"
METRIC_JS = "JensenShannon"
METRIC_MAX = "MaxDriftScore"
METRIC_RECORDS = "RecordsScored"
METRIC_MALFORMED = "MalformedRecords"
METRIC_PREDICTION = "PredictionDrift"
"""PSI of the model's predicted probabilities against the validation split's (``baseline.json`` ``prediction``)."""

# --- quality -----------------------------------------------------------------------------------------------------

GROUND_TRUTH_PREFIX = "ground-truth"
QUALITY_REPORTS_PREFIX = "quality-reports"
METRIC_JOINED = "QualityJoinedRecords"
METRIC_LABELS = "QualityLabelsReceived"
METRIC_UNMATCHED = "QualityUnmatchedLabels"
QUALITY_METRIC_PREFIX = "Quality_"
"""CloudWatch metric of a task metric: ``Quality_roc_auc``, ``Quality_rmse`` … (dimension ``Model``)."""

# --- the jobs' settings ------------------------------------------------------------------------------------------


class DriftError(Exception):
    """Input a person must fix (a missing file, an invalid baseline): a one-line message, no traceback."""


class EnvSettings:
    """A frozen dataclass that travels as ``<PREFIX><FIELD>`` environment variables (Lambda, processing job)."""

    PREFIX = "MLOPS_"

    def to_env(self) -> dict[str, str]:
        return {f"{self.PREFIX}{k.upper()}": str(v) for k, v in asdict(self).items() if v not in ("", 0)}  # type: ignore[call-overload]

    @classmethod
    def from_env(cls, env: Mapping[str, str]):
        values: dict[str, Any] = {}
        missing = []
        for f in fields(cls):  # type: ignore[arg-type]
            raw = env.get(f"{cls.PREFIX}{f.name.upper()}")
            if raw is None:
                if f.default is MISSING:
                    missing.append(f"{cls.PREFIX}{f.name.upper()}")
                continue
            try:
                values[f.name] = {"int": int, "float": float}.get(str(f.type), str)(raw)
            except ValueError:
                raise DriftError(f"{cls.PREFIX}{f.name.upper()}={raw!r} is not a {f.type}") from None
        if missing:
            raise DriftError(f"the job's environment lacks {', '.join(missing)}")
        return cls(**values)


@dataclass(frozen=True)
class JobSettings(EnvSettings):
    """What a drift run needs; travels as ``MLOPS_DRIFT_*`` environment variables (Lambda, processing job)."""

    model: str
    endpoint_name: str
    capture_bucket: str
    metric_namespace: str
    report_prefix: str
    window_hours: int = 24
    threshold: float = 0.2
    min_records: int = 200
    engine: str = "lambda"
    baseline_uri: str = ""
    """Score against this baseline (``baseline.json`` or model archive) instead of the live model's."""
    # engine "processing": the job the Lambda starts
    job_prefix: str = ""
    processing_image: str = ""
    processing_role_arn: str = ""
    processing_instance_type: str = ""
    processing_max_runtime_seconds: int = 0
    processing_instance_count: int = 1
    """Instances of the processing job; each scores a share of the capture objects (ShardedByS3Key)."""
    code_uri: str = ""
    kms_key_arn: str = ""
    subnet_ids: str = ""
    """Comma-separated: the stack's private subnets the processing job runs in (it reads S3 and publishes metrics
    through the VPC's endpoints, so it cannot be network-isolated; the permissions boundary allows exactly that)."""
    security_group_ids: str = ""

    PREFIX = "MLOPS_DRIFT_"


@dataclass(frozen=True)
class QualityJob(EnvSettings):
    """Where a quality run reads and writes; travels as ``MLOPS_QUALITY_*`` environment variables to the Lambda."""

    model: str
    task: str
    endpoint_name: str
    capture_bucket: str
    data_bucket: str
    metric_namespace: str
    window_hours: int = 24
    label_delay_hours: int = 24
    min_records: int = 100

    PREFIX = "MLOPS_QUALITY_"

    @property
    def report_prefix(self) -> str:
        return f"{self.model}/{QUALITY_REPORTS_PREFIX}/"
