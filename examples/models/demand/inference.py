"""The demand model's serving handlers, as the SageMaker XGBoost image's serving stack calls them.

``SAGEMAKER_PROGRAM=inference.py`` with ``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code`` (train.py copies this file,
features.py and contract.json there): the image imports this module and builds its Transformer from
``model_fn`` -> ``input_fn`` -> ``predict_fn`` -> ``output_fn``.

Requests (``Content-Type``):
  text/csv          one row per line, no header, the contract's features in order:
                    store_type,day_of_week,temperature_c,price,promo,holiday (empty temperature = missing)
  application/json  ``{"instances": [record, ...]}``, a list of records, or one record: ``{feature: value}``
Response (application/json): ``{"predictions": [{"value": <units sold>}, ...]}`` (the platform's regression output:
the model-quality job reads ``value``).

A request the model cannot read is answered 400 (415 for another Content-Type, 406 for an Accept other than JSON)
with ``{"error": "<what is wrong and what is accepted>"}``: input_fn and predict_fn hand the problem on to
output_fn instead of raising, since the serving stack answers any exception from a handler with a 500.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb

from features import feature_names, load_contract, raw_features, transform

CSV, JSON = "text/csv", "application/json"
MODEL_FILE = "xgboost-model.json"


@dataclass(frozen=True)
class Model:
    booster: xgb.Booster
    contract: dict


@dataclass(frozen=True)
class Rejected:
    status: int
    message: str


def model_fn(model_dir: str) -> Model:
    path = Path(model_dir)
    booster = xgb.Booster()
    booster.load_model(path / MODEL_FILE)
    booster.set_param({"nthread": 1})
    return Model(booster=booster, contract=load_contract(path))


def _rows(body: Any, content_type: str | None, features: list[str]) -> pd.DataFrame:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (CSV, JSON):
        raise LookupError(f"Content-Type {content_type!r} is not supported; send {CSV} or {JSON}")
    text = bytes(body).decode("utf-8") if isinstance(body, (bytes, bytearray, memoryview)) else str(body)
    if not text.strip():
        raise ValueError("the body is empty; send at least one row")
    if media == CSV:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
        for i, row in enumerate(rows, 1):
            if len(row) != len(features):
                raise ValueError(f"row {i} has {len(row)} values; expected {len(features)}: {', '.join(features)}")
        return pd.DataFrame(rows, columns=features).replace("", None)
    document = json.loads(text)
    records = document.get("instances", [document]) if isinstance(document, dict) else document
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise ValueError('send {"instances": [{feature: value, ...}, ...]}, a list of such records, or one record')
    for i, record in enumerate(records, 1):
        if set(record) != set(features):
            raise ValueError(f"record {i} has {sorted(record)}; expected {', '.join(features)} (null for missing)")
    return pd.DataFrame.from_records(records, columns=features)


def input_fn(request_body: Any, content_type: str | None) -> pd.DataFrame | Rejected:
    try:
        return _rows(request_body, content_type, raw_features(load_contract(Path(__file__).resolve().parent)))
    except LookupError as e:
        return Rejected(415, str(e))
    except (ValueError, UnicodeDecodeError) as e:
        return Rejected(400, str(e))


def predict_fn(data: pd.DataFrame | Rejected, model: Model) -> list[dict[str, float]] | Rejected:
    if isinstance(data, Rejected):
        return data
    try:
        matrix = transform(data, model.contract)
    except ValueError as e:
        return Rejected(400, str(e))
    predicted = model.booster.predict(xgb.DMatrix(matrix, feature_names=feature_names(model.contract)))
    return [{"value": float(max(0.0, v))} for v in predicted]


def output_fn(prediction: list[dict[str, float]] | Rejected, accept: str | None) -> Any:
    wanted = [(part.split(";")[0].strip().lower()) for part in (accept or "").split(",")]
    if accept and accept.strip() and not any(w in (JSON, "application/*", "*/*") for w in wanted):
        prediction = Rejected(406, f"Accept {accept!r} is not supported; this model answers {JSON}")
    if not isinstance(prediction, Rejected):
        return json.dumps({"predictions": prediction}), JSON
    body = json.dumps({"error": prediction.message, "status": prediction.status})
    flask = sys.modules.get("flask")  # inside the image's server: answer with the status, not a 500
    if flask is not None and flask.has_request_context():
        return flask.Response(body, status=prediction.status, mimetype=JSON)
    raise ValueError(prediction.message)
