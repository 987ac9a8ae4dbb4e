"""The built-in recipe's model and its artifact: the scikit-learn pipeline, the frame it takes, its metrics per
task, its predictions as the endpoint answers them, and the model directory (or ``model.tar.gz``) it is saved to
and loaded from.

Tasks (the contract's ``task``): binary and multiclass classification (HistGradientBoostingClassifier), regression
(HistGradientBoostingRegressor).

Model directory (``SM_MODEL_DIR``, packed by SageMaker into ``model.tar.gz``):
  model.joblib    the fitted Pipeline: OrdinalEncoder for category features -> HistGradientBoosting{Classifier,Regressor}
  contract.json   the data contract it was trained with (feature order and types for serving; its task)
  training.json   ``{"format": "mlops-training/1", "hyperparameters", "metrics": {split: {...}}, "rows", "versions"}``
                  (``rows``: train, validation, and train_scored, the rows the train metrics are computed on)
  baseline.json   the training-data statistics drift monitoring compares with (see training.baseline)
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from pydantic import ValidationError
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from training.contract import DataContract, Hyperparameters, format_validation_error
from training.data import UsageError

MODEL_FILE = "model.joblib"
CONTRACT_FILE = "contract.json"
TRAINING_FILE = "training.json"
ARCHIVE_FILE = "model.tar.gz"
TRAINING_FORMAT = "mlops-training/1"
THRESHOLD = 0.5

# HistGradientBoosting takes category codes below max_bins (255); rarer categories beyond that share a code.
MAX_CATEGORIES = 255


def category_features(contract: DataContract) -> list[str]:
    return [name for name in contract.features if contract.columns[name].type == "category"]


def model_frame(typed: pd.DataFrame, contract: DataContract) -> pd.DataFrame:
    """The features of a validated frame, as the pipeline takes them: category columns as they are,
    every other column (int, float, bool) as float64 with NaN for missing."""
    columns = {}
    for name in contract.features:
        values = typed[name]
        if contract.columns[name].type == "category":
            columns[name] = values
        else:
            columns[name] = values.astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    return pd.DataFrame(columns, index=typed.index)


def labels(typed: pd.DataFrame, contract: DataContract) -> np.ndarray:
    """The target column: int64 class labels (binary, multiclass) or float64 values (regression)."""
    if contract.task == "regression":
        return typed[contract.target].astype("Float64").to_numpy(dtype=np.float64)
    return typed[contract.target].astype("Int64").to_numpy(dtype=np.int64)


def resolve_task(contract: DataContract, requested: str | None) -> str:
    """The task to train: the contract's; a ``task`` hyperparameter that names another one is a usage error."""
    if requested is not None and requested != contract.task:
        raise UsageError(
            f"hyperparameter task {requested!r} contradicts the data contract's task {contract.task!r}; "
            "leave task out (the contract's applies) or fix the contract"
        )
    return contract.task


def build_pipeline(contract: DataContract, hp: Hyperparameters) -> Pipeline:
    categories = category_features(contract)
    encode = ColumnTransformer(
        # Unseen and missing categories both become NaN, which the trees treat as "missing".
        [
            (
                "categories",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    max_categories=MAX_CATEGORIES,
                ),
                categories,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    estimator = HistGradientBoostingRegressor if contract.task == "regression" else HistGradientBoostingClassifier
    model = estimator(
        max_iter=hp.max_iter,
        learning_rate=hp.learning_rate,
        max_depth=hp.max_depth,
        max_leaf_nodes=hp.max_leaf_nodes,
        min_samples_leaf=hp.min_samples_leaf,
        l2_regularization=hp.l2_regularization,
        early_stopping=hp.early_stopping,
        # The encoder puts category columns first.
        categorical_features=list(range(len(categories))) or None,
        random_state=hp.random_state,
    )
    return Pipeline([("encode", encode), ("regress" if contract.task == "regression" else "classify", model)])


def compute_metrics(y: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """Every binary metric (``training.metric_names.EVALUATION_METRICS["binary"]``); needs both classes in ``y``."""
    predicted = (probability >= THRESHOLD).astype(np.int64)
    return {
        "roc_auc": float(roc_auc_score(y, probability)),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "log_loss": float(log_loss(y, probability, labels=[0, 1])),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
    }


def multiclass_metrics(y: np.ndarray, probabilities: np.ndarray, classes: np.ndarray) -> dict[str, float]:
    """accuracy, f1_macro, log_loss (multinomial) and roc_auc_ovr (macro one-vs-rest; None when ``y`` lacks a class)."""
    predicted = classes[np.argmax(probabilities, axis=1)]
    try:
        auc: float | None = float(roc_auc_score(y, probabilities, multi_class="ovr", average="macro", labels=classes))
    except ValueError:  # a class of the model absent from y: its one-vs-rest AUC is undefined
        auc = None
    metrics = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1_macro": float(f1_score(y, predicted, average="macro", labels=classes, zero_division=0)),
        "log_loss": float(log_loss(y, probabilities, labels=classes)),
        "roc_auc_ovr": auc,
    }
    return {k: v for k, v in metrics.items() if v is not None}


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(mean_squared_error(y, predicted))),
        "mae": float(mean_absolute_error(y, predicted)),
        "r2": float(r2_score(y, predicted)),
    }


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Pipeline
    contract: DataContract

    @property
    def task(self) -> str:
        return self.contract.task

    @property
    def classes(self) -> np.ndarray:
        """The class labels of a classifier, in the order of its probability columns."""
        return self.pipeline.classes_

    def probabilities(self, features: pd.DataFrame) -> np.ndarray:
        """Probability of the positive class for each row of a :func:`model_frame` (binary models)."""
        return self.pipeline.predict_proba(features)[:, 1]

    def scores(self, features: pd.DataFrame) -> np.ndarray:
        """What the task's metrics take: P(label = 1) (binary), a row of class probabilities (multiclass), the
        predicted value (regression)."""
        if self.task == "binary":
            return self.probabilities(features)
        if self.task == "multiclass":
            return self.pipeline.predict_proba(features)
        return np.asarray(self.pipeline.predict(features), dtype=np.float64)

    def metrics(self, y: np.ndarray, scores: np.ndarray) -> dict[str, float]:
        """The task's metrics (``training.metric_names.EVALUATION_METRICS``) of :meth:`scores` against ``y``."""
        if self.task == "binary":
            return compute_metrics(y, scores)
        if self.task == "multiclass":
            return multiclass_metrics(y, scores, self.classes)
        return regression_metrics(y, scores)

    def predictions(self, scores: np.ndarray) -> list[dict]:
        """The endpoint's answer per row (see training.inference)."""
        if self.task == "binary":
            return [{"label": int(p >= THRESHOLD), "probability": float(p)} for p in scores]
        if self.task == "multiclass":
            names = [str(c) for c in self.classes]
            best = self.classes[np.argmax(scores, axis=1)]
            return [
                {"label": int(label), "probabilities": dict(zip(names, map(float, row)))} for label, row in zip(best, scores)
            ]
        return [{"value": float(v)} for v in scores]

    def save(self, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.pipeline, model_dir / MODEL_FILE)
        (model_dir / CONTRACT_FILE).write_text(self.contract.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TrainedModel:
        """From a model directory, a directory holding ``model.tar.gz`` (a processing job's model input),
        or a ``model.tar.gz`` as a training job writes it. Raises UsageError when it is none of these."""
        if path.is_dir() and not (path / MODEL_FILE).exists() and (path / ARCHIVE_FILE).is_file():
            path = path / ARCHIVE_FILE
        if path.is_dir():
            try:
                return cls._from_bytes(path, (path / MODEL_FILE).read_bytes(), (path / CONTRACT_FILE).read_bytes())
            except FileNotFoundError as e:
                raise UsageError(f"{path}: not a model directory ({Path(e.filename).name} missing)") from None
        if path.is_file():
            return cls._from_archive(path)
        raise UsageError(f"{path}: no such model directory or archive")

    @classmethod
    def _from_archive(cls, path: Path) -> TrainedModel:
        wanted = {MODEL_FILE: b"", CONTRACT_FILE: b""}
        try:
            with tarfile.open(path, "r:*") as tar:
                for member in tar:
                    name = posixpath.normpath(member.name)
                    if name in wanted and member.isfile():
                        wanted[name] = tar.extractfile(member).read()  # type: ignore[union-attr]
        except (tarfile.TarError, OSError, EOFError) as e:
            raise UsageError(f"{path}: not a readable model archive ({e})") from None
        missing = [name for name, data in wanted.items() if not data]
        if missing:
            raise UsageError(f"{path}: the archive has no {', '.join(missing)}")
        return cls._from_bytes(path, wanted[MODEL_FILE], wanted[CONTRACT_FILE])

    @classmethod
    def _from_bytes(cls, source: Path, model: bytes, contract: bytes) -> TrainedModel:
        try:
            parsed = DataContract.model_validate_json(contract)
        except ValidationError as e:
            raise UsageError(f"{source}: its {CONTRACT_FILE} is invalid:\n{format_validation_error(e)}") from None
        pipeline = joblib.load(io.BytesIO(model))
        if not isinstance(pipeline, Pipeline):
            raise UsageError(f"{source}: {MODEL_FILE} holds a {type(pipeline).__name__}, not a scikit-learn Pipeline")
        return cls(pipeline=pipeline, contract=parsed)
