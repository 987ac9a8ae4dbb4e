"""Serving handlers for the SageMaker scikit-learn container: ``model_fn``, ``input_fn``, ``predict_fn``,
``output_fn`` (the code package's root ``inference.py`` re-exports them; ``SAGEMAKER_PROGRAM=inference.py``).

Requests (``Content-Type``):
  text/csv          one row per line, no header, features in the contract's order; a first line that
                    names exactly the features is taken as a header (then any order). Empty cell = missing.
  application/json  ``{"instances": [record, ...]}``, ``[record, ...]`` or a single ``record``; a record is
                    ``{feature: value}`` with every feature (null = missing) or a list in contract order.

Response (``Accept`` application/json, or none), one prediction per row, by the contract's task::

    binary:      {"predictions": [{"label": 0 | 1, "probability": <P(label = 1)>}, ...]}
    multiclass:  {"predictions": [{"label": <most probable class>, "probabilities": {"<class>": <P>, ...}}, ...]}
    regression:  {"predictions": [{"value": <predicted number>}, ...]}

The model-quality job scores ``probability`` (binary), ``label`` (multiclass) and ``value`` (regression); prediction
drift reads ``probability`` and so covers binary models only (the others' baselines carry no prediction section).

Values are checked for type (not for range: out-of-range values are drift, and drift monitoring
watches them); a category never seen in training is treated as missing.

Rejected requests. A request the model cannot answer is an :class:`InferenceRequestError` with the
HTTP status to answer it with (400 malformed body, 406 unsupported Accept, 415 unsupported
Content-Type, 503 for the bootstrap placeholder model) and a one-line message naming what is wrong
and what is accepted. ``input_fn`` and ``predict_fn`` do not raise it: they hand it on as a
:class:`Rejection` to ``output_fn``, because the scikit-learn container's single-model server
(sagemaker-containers, a Flask app) turns any exception raised in a handler into a 500, which would
also count against the endpoint's 5xx rollback alarm. ``output_fn`` answers a rejection with a Flask
response carrying the status when it runs inside that server, and otherwise raises the error: the
SageMaker inference toolkit (multi-model server) answers a raised ``BaseInferenceToolkitError``, which
InferenceRequestError then extends, with its ``status_code``.
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
import pandera.pandas as pa
from threadpoolctl import threadpool_limits

from training.contract import DataContract
from training.model import TrainedModel, model_frame
from training.validate import build_schema, check_frame

CSV = "text/csv"
JSON = "application/json"
CONTENT_TYPES = (CSV, JSON)
ACCEPTS = (JSON, "application/*", "*/*")
# Written by components.endpoint into the placeholder model that a fresh stack serves.
BOOTSTRAP_MARKER = "bootstrap.json"

try:
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ServerError
except ImportError:  # not in the single-model server, nor locally
    _ServerError = Exception


class InferenceRequestError(_ServerError):  # type: ignore[misc, valid-type]
    """A request the model cannot answer: ``status_code`` (4xx, or 503 before a model is deployed) and a
    one-line ``message`` naming what is wrong and what is accepted."""

    def __init__(self, status_code: int, message: str):
        self.status_code = status_code
        self.message = message
        self.phrase = message  # the inference toolkit's name for it
        Exception.__init__(self, message)

    def body(self) -> str:
        return json.dumps({"error": self.message, "status": self.status_code})


@dataclass(frozen=True)
class Rejection:
    """A rejected request on its way to ``output_fn`` (see the module docstring)."""

    error: InferenceRequestError


@dataclass(frozen=True)
class ServedModel:
    model: TrainedModel
    schema: pa.DataFrameSchema
    """The contract's feature types, built once per worker."""


@dataclass(frozen=True)
class Placeholder:
    """The bootstrap model: no trained model yet; every request is answered 503."""

    reason: str


@dataclass(frozen=True)
class ParsedRequest:
    """Rows as sent: dicts (JSON records) or lists (CSV lines, JSON arrays); checked against the contract
    in ``predict_fn``, where the model (and so the contract) is known."""

    rows: list[dict[str, Any] | list[Any]]
    source: str


# ---------------------------------------------------------------------------------------------------------------
# Parsing


def _media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def _text(body: Any) -> str:
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            byte = f"byte {e.object[e.start]:#04x} at offset {e.start}"
            raise InferenceRequestError(400, f"the body is not UTF-8 text ({byte}); send text/csv or application/json") from None
    elif isinstance(body, str):
        # The image's server hands text/csv (and other UTF-8 types) over already decoded, with undecodable
        # bytes replaced by U+FFFD and a leading BOM kept: answer it as the bytes path above does.
        if "\ufffd" in body:
            offset = body.index("\ufffd")
            raise InferenceRequestError(400, f"the body is not UTF-8 text (undecodable bytes near character {offset}); send text/csv or application/json")
        body = body.removeprefix("\ufeff")
    if not isinstance(body, str):
        raise InferenceRequestError(400, f"the body is a {type(body).__name__}; send text/csv or application/json text")
    if not body.strip():
        raise InferenceRequestError(400, "the body is empty; send at least one row (text/csv) or record (application/json)")
    return body


def _csv_rows(text: str) -> list[list[Any]]:
    try:
        rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
    except csv.Error as e:
        raise InferenceRequestError(400, f"the body is not valid CSV ({e}); send one row of feature values per line") from None
    if not rows:
        raise InferenceRequestError(400, "the CSV body has no values; send one row of feature values per line")
    return [[cell if cell != "" else None for cell in row] for row in rows]


_JSON_SHAPES = '{"instances": [{feature: value, ...}, ...]}, a list of such records, or one record'


def _json_rows(text: str) -> list[dict[str, Any] | list[Any]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as e:
        raise InferenceRequestError(400, f"the body is not valid JSON ({e}); send {_JSON_SHAPES}") from None
    if isinstance(document, dict):
        items = document["instances"] if "instances" in document else [document]
    else:
        items = document
    if not isinstance(items, list) or not items:
        raise InferenceRequestError(400, f"no records found; send {_JSON_SHAPES}")
    for i, item in enumerate(items, 1):
        if not isinstance(item, (dict, list)):
            raise InferenceRequestError(400, f"record {i} is a {type(item).__name__}; send {_JSON_SHAPES}")
        values = item.values() if isinstance(item, dict) else item
        if any(isinstance(v, (dict, list)) for v in values):
            raise InferenceRequestError(400, f"record {i} has a nested value; feature values are numbers, strings, booleans or null")
    return items


def parse_request(body: Any, content_type: str | None) -> ParsedRequest:
    """Decode a request body; raises InferenceRequestError (400 or 415)."""
    media = _media_type(content_type)
    if media not in CONTENT_TYPES:
        raise InferenceRequestError(415, f"Content-Type {content_type!r} is not supported; send {' or '.join(CONTENT_TYPES)}")
    text = _text(body)
    return ParsedRequest(rows=_csv_rows(text) if media == CSV else _json_rows(text), source=media)


def request_frame(request: ParsedRequest, contract: DataContract) -> pd.DataFrame:
    """The request's rows as a frame of the contract's features, values as sent; raises InferenceRequestError (400)."""
    features = contract.features
    rows = request.rows
    if request.source == CSV and len(rows[0]) == len(features) and set(map(str, rows[0])) == set(features):
        rows = [dict(zip(rows[0], row)) for row in rows[1:]]  # type: ignore[arg-type]
        if not rows:
            raise InferenceRequestError(400, "the CSV body has a header but no rows")
    expected = f"{len(features)} features: {', '.join(features)}"
    records = []
    for i, row in enumerate(rows, 1):
        if isinstance(row, list):
            if len(row) != len(features):
                raise InferenceRequestError(400, f"row {i} has {len(row)} values; expected {expected}")
            row = dict(zip(features, row))
        elif set(row) != set(features):
            missing, unknown = sorted(set(features) - set(row)), sorted(set(row) - set(features))
            problems = ([f"lacks {missing}"] if missing else []) + ([f"has unknown {unknown}"] if unknown else [])
            raise InferenceRequestError(400, f"record {i} {' and '.join(problems)}; expected {expected} (null for missing)")
        records.append(row)
    return pd.DataFrame.from_records(records, columns=features)


# ---------------------------------------------------------------------------------------------------------------
# Handlers


def model_fn(model_dir: str) -> ServedModel | Placeholder:
    """Load the model the container extracted to ``model_dir``, or the bootstrap placeholder."""
    path = Path(model_dir)
    marker = path / BOOTSTRAP_MARKER
    if marker.is_file():
        reason = json.loads(marker.read_text(encoding="utf-8")).get("reason", "no model has been deployed yet")
        return Placeholder(reason=str(reason))
    model = TrainedModel.load(path)
    # The server runs one worker process per CPU; OpenMP threads inside each only contend, and starting
    # them for every tree of a one-row request costs more than the prediction (tens of ms).
    threadpool_limits(limits=1, user_api="openmp")
    return ServedModel(model=model, schema=build_schema(model.contract, "features"))


def predict(served: ServedModel | Placeholder, request: ParsedRequest) -> list[dict[str, Any]]:
    """Predictions for a parsed request; raises InferenceRequestError (400, or 503 for the placeholder)."""
    if isinstance(served, Placeholder):
        raise InferenceRequestError(503, f"{served.reason}; this endpoint serves a placeholder until a model is deployed")
    contract = served.model.contract
    frame = request_frame(request, contract)
    result = check_frame(frame, contract, served.schema)
    if not result.valid:
        details = "; ".join(p.line() for p in result.problems)
        types = ", ".join(f"{n}: {contract.columns[n].type}" for n in contract.features)
        raise InferenceRequestError(400, f"{details}; expected types {types}")
    assert result.frame is not None
    model = served.model
    return model.predictions(model.scores(model_frame(result.frame, contract)))


def render(predictions: list[dict[str, Any]], accept: str | None) -> tuple[str, str]:
    """The response body and its content type; raises InferenceRequestError (406)."""
    wanted = [_media_type(part) for part in (accept or "").split(",")]
    if accept and accept.strip() and not any(media in ACCEPTS for media in wanted):
        raise InferenceRequestError(406, f"Accept {accept!r} is not supported; this model answers {JSON}")
    return json.dumps({"predictions": predictions}), JSON


def input_fn(request_body: Any, content_type: str | None) -> ParsedRequest | Rejection:
    try:
        return parse_request(request_body, content_type)
    except InferenceRequestError as e:
        return Rejection(e)


def predict_fn(data: ParsedRequest | Rejection, model: ServedModel | Placeholder) -> list[dict[str, Any]] | Rejection:
    if isinstance(data, Rejection):
        return data
    try:
        return predict(model, data)
    except InferenceRequestError as e:
        return Rejection(e)


def output_fn(prediction: list[dict[str, Any]] | Rejection, accept: str | None) -> Any:
    """``(body, content type)``; a rejection is answered with its status (see the module docstring)."""
    try:
        if isinstance(prediction, Rejection):
            raise prediction.error
        return render(prediction, accept)
    except InferenceRequestError as error:
        # The single-model server has imported Flask and calls us inside a request; nothing else does.
        flask = sys.modules.get("flask")
        if flask is not None and flask.has_request_context():
            return flask.Response(error.body(), status=error.status_code, mimetype=JSON)
        raise

