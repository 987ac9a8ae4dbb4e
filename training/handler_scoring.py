"""The platform's evaluation of a model with its own code: the holdout scored through the model's serving handlers.

A model that brings its own code (its own ``train`` and ``inference``) but no ``evaluate`` still gets an
``evaluation.json``: ``training.evaluate`` loads the model directory (or ``model.tar.gz``) that its ``train``
wrote, imports ``code/inference.py`` from it (what its endpoint imports), and asks ``model_fn`` -> ``input_fn`` ->
``predict_fn`` -> ``output_fn`` for predictions on the holdout, sent as ``text/csv`` (no header, the contract's
features in order, empty cell = missing) in chunks, accepting ``application/json``. The answers must follow the
platform's response contract for the task (training/README.md, "Serving"):

  binary      ``{"predictions": [{"probability": P(label = 1), ...}, ...]}``
  multiclass  ``{"predictions": [{"label": <class>, "probabilities": {"<class>": p, ...}}, ...]}`` (probabilities
              optional: without them only accuracy and f1_macro are computed)
  regression  ``{"predictions": [{"value": <number>}, ...]}``

and the task's metrics (training.metric_names.EVALUATION_METRICS) are computed from them. Anything else is a
usage error naming what was expected.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from training.contract import DataContract, format_validation_error
from training.data import UsageError

CHUNK_ROWS = 500
HANDLERS = "code/inference.py"


def has_own_handlers(path: Path) -> bool:
    """Whether ``path`` (a model directory or archive) holds a model of its own code: ``code/inference.py`` and no
    built-in ``model.joblib``."""
    if path.is_dir():
        if (path / "model.tar.gz").is_file() and not (path / "model.joblib").exists():
            return has_own_handlers(path / "model.tar.gz")
        return (path / HANDLERS).is_file() and not (path / "model.joblib").exists()
    if path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tar:
            names = {m.name.removeprefix("./") for m in tar.getmembers()}
        return HANDLERS in names and "model.joblib" not in names
    return False


def model_directory(path: Path, scratch: Path) -> Path:
    """A directory holding the model: ``path`` itself, or its archive extracted under ``scratch``."""
    if path.is_dir() and (path / HANDLERS).is_file():
        return path
    archive = path / "model.tar.gz" if path.is_dir() else path
    with tarfile.open(archive, "r:*") as tar:
        tar.extractall(scratch, filter="data")
    return scratch


def _import_handlers(code: Path) -> ModuleType:
    sys.path.insert(0, str(code))  # its own modules (features.py, ...) sit beside it
    spec = importlib.util.spec_from_file_location("model_inference", code / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look their module up there
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the model's own code: whatever it raises, say where
        raise UsageError(f"{code / 'inference.py'} cannot be imported: {type(e).__name__}: {e}") from None
    missing = [n for n in ("model_fn", "input_fn", "predict_fn", "output_fn") if not callable(getattr(module, n, None))]
    if missing:
        raise UsageError(f"{code / 'inference.py'} has no {', '.join(missing)}; the platform scores a model through all four handlers")
    return module


def stored_contract(model_dir: Path) -> DataContract | None:
    path = model_dir / "contract.json"
    if not path.is_file():
        return None
    try:
        return DataContract.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as e:
        detail = format_validation_error(e) if hasattr(e, "errors") else str(e)
        raise UsageError(f"{path} is not a valid data contract:\n{detail}") from None


def _csv(frame: pd.DataFrame, contract: DataContract) -> str:
    out = frame[contract.features].copy()
    for name in contract.features:
        if contract.columns[name].type == "bool":
            out[name] = out[name].map({True: "true", False: "false"})
    return out.to_csv(header=False, index=False, na_rep="")


def predictions(model_dir: Path, frame: pd.DataFrame, contract: DataContract) -> list[dict[str, Any]]:
    """The model's answers for every row of the validated holdout ``frame``, in order."""
    module = _import_handlers(model_dir / "code")
    model = module.model_fn(str(model_dir))
    answers: list[dict[str, Any]] = []
    for start in range(0, len(frame), CHUNK_ROWS):
        chunk = frame.iloc[start:start + CHUNK_ROWS]
        try:
            result = module.output_fn(module.predict_fn(module.input_fn(_csv(chunk, contract), "text/csv"), model), "application/json")
        except Exception as e:
            raise UsageError(f"the model's handlers refused holdout rows {start + 1}..{start + len(chunk)}: {e}") from None
        body = result[0] if isinstance(result, tuple) else result
        try:
            document = json.loads(body)
            rows = document["predictions"] if isinstance(document, dict) else document
        except (TypeError, ValueError, KeyError):
            raise UsageError('the model\'s output_fn did not answer {"predictions": [...]} as application/json') from None
        if not isinstance(rows, list) or len(rows) != len(chunk):
            raise UsageError(f"the model answered {len(rows) if isinstance(rows, list) else 'no'} predictions for {len(chunk)} rows")
        answers.extend(rows)
    return answers


def _field(rows: list[Any], key: str, task: str) -> np.ndarray:
    try:
        return np.array([float(r[key]) for r in rows], dtype=np.float64)
    except (TypeError, KeyError, ValueError):
        raise UsageError(f"a {task} model's predictions must each carry a numeric {key!r} (training/README.md, Serving)") from None


def task_metrics(task: str, y: np.ndarray, rows: list[dict[str, Any]]) -> dict[str, float]:
    """The task's metrics from the model's answers (see the module docstring for the shapes)."""
    from training.model import compute_metrics, multiclass_metrics, regression_metrics

    if task == "binary":
        return compute_metrics(y, _field(rows, "probability", task))
    if task == "regression":
        return regression_metrics(y, _field(rows, "value", task))
    labels = _field(rows, "label", task).astype(np.int64)
    if all(isinstance(r.get("probabilities"), dict) for r in rows):
        classes = np.array(sorted({int(c) for r in rows for c in r["probabilities"]}), dtype=np.int64)
        probabilities = np.array([[float(r["probabilities"].get(str(c), 0.0)) for c in classes] for r in rows])
        return multiclass_metrics(y, probabilities, classes)
    from training.metrics import multiclass_metrics as label_metrics

    return {k: float(v) for k, v in label_metrics(y, labels).items() if v is not None}


def score(path: Path, frame: pd.DataFrame, contract: DataContract, y: np.ndarray) -> dict[str, float]:
    before = set(sys.modules)
    with tempfile.TemporaryDirectory() as scratch:
        model_dir = model_directory(path, Path(scratch))
        try:
            return task_metrics(contract.task, y, predictions(model_dir, frame, contract))
        finally:  # the model's modules (inference, its helpers) must not shadow another model's in this process
            for name in set(sys.modules) - before:
                origin = getattr(sys.modules[name], "__file__", None) or ""
                if name == "model_inference" or origin.startswith(str(model_dir)):
                    del sys.modules[name]
            if str(model_dir / "code") in sys.path:
                sys.path.remove(str(model_dir / "code"))
