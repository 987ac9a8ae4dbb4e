"""Live model quality: captured predictions joined with ground-truth labels that arrive later.

**Ground truth** is SageMaker Model Monitor's record format, so existing label producers fit. One JSON
object per line::

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<id>"}, "eventVersion": "0"}

``eventId`` is the id the endpoint captured for the request: the ``InferenceId`` the client passed to
InvokeEndpoint (captured as ``eventMetadata.inferenceId``) or, without one, the capture's own
``eventMetadata.eventId``. ``data`` is the true label; a request of N rows takes N labels, comma-separated
in the request's row order (``"encoding": "CSV"``) or a JSON list (``"encoding": "JSON"``). Files live under
``s3://<data bucket>/<model>/ground-truth/YYYY/MM/DD/HH/`` (the hour the labels were delivered), the same
path layout as captured data; ``mlops labels push`` writes them from a CSV or JSON Lines file of
``inference_id,label``.

**Joining.** A run scores the captures of a window of ``window_hours`` hours that ends ``label_delay_hours``
before the run (labels come late), against every label delivered from the window's start until the run. A
label delivered twice for one id: the later delivery wins. :class:`SpillJoin` (what :func:`run_job` runs)
streams labels and captures into hash buckets of the inference id in a temporary directory (~51 bytes of disk
per captured request at the peak: 512 MB of Lambda ``/tmp`` holds ~10 million; past the directory's free space
a :class:`QualityError` names ``quality.lambda_ephemeral_storage_mb``) and joins bucket by bucket; the metrics
are computed out of core (:mod:`training.spill_metrics`), so memory is one bucket's labels and at most a fixed
number of joined pairs whatever the window's volume. :class:`Labels` + :class:`QualityScorer` are the same join
in memory, the reference it is tested against.

Only the standard library and numpy (this runs in the monitoring Lambda); the metrics equal
:mod:`training.metrics` (the code the evaluation job's numbers are held to) over the pairs in capture order.
"""

from __future__ import annotations

import base64
import binascii
import csv
import gc
import io
import json
import logging
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import partial
from itertools import chain, compress, islice, repeat
from operator import itemgetter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from training.capture import _OUTPUT_KEY, _PROBABILITY, _SUFFIX
from training.drift import DriftError, capture_keys
from training.monitoring_contract import QUALITY_REPORTS_PREFIX as REPORTS_PREFIX  # noqa: F401  (the components share these)
from training.monitoring_contract import GROUND_TRUTH_PREFIX, METRIC_JOINED, METRIC_LABELS, METRIC_UNMATCHED, QUALITY_METRIC_PREFIX, QualityJob  # noqa: F401
from training.metrics import HIGHER_IS_BETTER, TASK_METRICS, task_metrics
from training.spill_metrics import BUDGET, CaptureOrder

REPORT_FORMAT = "mlops-quality/1"
MALFORMED_REASONS = ("bad_json", "no_id", "bad_output", "bad_label", "label_count_mismatch")
# Compact layouts read without a JSON parse (anything else is parsed in full): the ground-truth line
# `ground_truth_record` writes, and a capture record's id as SageMaker writes eventMetadata. An unescaped
# `"inferenceId":"` can only be a key (inside a string value its quotes are escaped).
_GROUND_TRUTH = re.compile(r'\{"groundTruthData":\{"data":"(?P<data>[^"\\]*)","encoding":"CSV"\},"eventMetadata":\{"eventId":"(?P<id>[^"\\]+)"\},"eventVersion":"0"\}\s*$')
LOG = logging.getLogger("mlops.quality")


class QualityError(Exception):
    """A problem the user fixes (a label file, an unknown task); the message names it and what is accepted."""


def ground_truth_record(inference_id: str, labels: Iterable[Any]) -> str:
    """One ground-truth line in Model Monitor's format (CSV encoding: labels comma-separated)."""
    data = ",".join(_label_text(v) for v in labels)
    return json.dumps(
        {"groundTruthData": {"data": data, "encoding": "CSV"}, "eventMetadata": {"eventId": inference_id}, "eventVersion": "0"},
        separators=(",", ":"),
    )


def _label_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value).strip()
    if not text or "," in text:
        raise QualityError(f"a label must be one number or class, got {text!r}")
    return text


def ground_truth_key(model: str, delivered: datetime, name: str) -> str:
    return f"{model}/{GROUND_TRUTH_PREFIX}/{delivered:%Y/%m/%d/%H}/{name}.jsonl"


def read_label_file(text: str, source: str) -> list[tuple[str, str]]:
    """``(inference_id, label)`` pairs from CSV (header ``inference_id,label``) or JSON Lines
    (``{"inference_id": ..., "label": ...}``). Raises :class:`QualityError` naming the first bad line."""
    stripped = text.lstrip()
    if not stripped:
        raise QualityError(f"{source} is empty; give a CSV with the header inference_id,label or JSON Lines of {{\"inference_id\", \"label\"}}")
    pairs: list[tuple[str, str]] = []
    if stripped.startswith("{"):
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as e:
                raise QualityError(f"{source}:{number}: not JSON ({e.msg}); each line is {{\"inference_id\": ..., \"label\": ...}}") from None
            if not isinstance(doc, dict) or not {"inference_id", "label"} <= doc.keys():
                raise QualityError(f"{source}:{number}: each line needs the keys inference_id and label")
            pairs.append(_pair(doc["inference_id"], doc["label"], f"{source}:{number}"))
        return pairs
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader)]
    if header[:2] != ["inference_id", "label"] or len(header) != 2:
        raise QualityError(f"{source}: the first line must be the header inference_id,label (got {','.join(header)[:80]!r})")
    for number, row in enumerate(reader, 2):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 2:
            raise QualityError(f"{source}:{number}: {len(row)} columns; each row is inference_id,label")
        pairs.append(_pair(row[0], row[1], f"{source}:{number}"))
    return pairs


def _pair(inference_id: Any, label: Any, where: str) -> tuple[str, str]:
    ident = str(inference_id).strip() if inference_id is not None else ""
    if not ident or len(ident) > 64:
        # InvokeEndpoint's InferenceId is 1-64 characters.
        raise QualityError(f"{where}: inference_id must be 1 to 64 characters (the InferenceId the client passed, or the capture's eventId)")
    try:
        return ident, _label_text(label)
    except QualityError as e:
        raise QualityError(f"{where}: {e}") from None


# ---------------------------------------------------------------------------------------------------------------
# Reading ground truth and captures


def _payload(part: dict[str, Any]) -> str:
    data = part.get("data")
    if not isinstance(data, str):
        raise ValueError("no data")
    if str(part.get("encoding", "")).upper() == "BASE64":
        return base64.b64decode(data, validate=True).decode("utf-8")
    return data


@dataclass
class Labels:
    """Labels by inference id (the later delivery wins), and the lines that could not be read, by reason."""

    by_id: dict[str, list[float]] = field(default_factory=dict)
    received: int = 0
    malformed: Counter = field(default_factory=Counter)

    def feed(self, lines: Iterable[str]) -> None:
        for line in lines:
            fast = _GROUND_TRUTH.match(line)
            if fast is not None:  # the compact layout `mlops labels push` writes: no JSON parse
                ident, text = fast["id"], fast["data"]
                try:
                    labels = [float(v) for v in text.split(",")]
                except ValueError:
                    labels = []
                if labels and all(map(math.isfinite, labels)):
                    self.received += 1
                    self.by_id[ident] = labels
                else:
                    self.malformed["bad_label"] += 1
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                gt = record["groundTruthData"]
                ident = record["eventMetadata"]["eventId"]
            except (json.JSONDecodeError, KeyError, TypeError):
                self.malformed["bad_json"] += 1
                continue
            try:
                text = _payload(gt)
                encoding = str(gt.get("encoding", "CSV")).upper()
                values = json.loads(text) if encoding == "JSON" else text.split(",")
                values = values if isinstance(values, list) else [values]
                labels = [float(v) for v in values]
                if not labels or not all(map(math.isfinite, labels)):
                    raise ValueError("not finite")
            except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
                self.malformed["bad_label"] += 1
                continue
            self.received += 1
            self.by_id[str(ident)] = labels


def _fast_id(line: str) -> str | None:
    """The join id of a compact capture line: its ``inferenceId``, else its ``eventId``; None to parse in full."""
    for key in ('"inferenceId":"', '"eventId":"'):
        at = line.find(key)
        if at >= 0:
            start = at + len(key)
            end = line.find('"', start)
            if end > start and line.find("\\", start, end) < 0:
                return line[start:end]
            return None
    return None


def prediction_score(task: str, prediction: Any) -> float:
    """The number a prediction is scored by: P(label = 1) for binary, the class for multiclass, the value
    for regression. A prediction is an object (``probability``, ``label``, ``value`` or ``prediction``) or a number."""
    if isinstance(prediction, dict):
        keys = {"binary": ("probability", "score"), "multiclass": ("label", "class"), "regression": ("value", "prediction", "score")}[task]
        for key in keys:
            if key in prediction:
                prediction = prediction[key]
                break
        else:
            raise ValueError("no score")
    if isinstance(prediction, bool) or not isinstance(prediction, (int, float)) or not np.isfinite(prediction):
        raise ValueError("not a number")
    return float(prediction)


@dataclass
class QualityScorer:
    """Streams capture lines, joins each request's predictions with its labels, then reports the metrics."""

    task: str
    labels: Labels
    min_records: int = 100
    y: array = field(default_factory=lambda: array("d"))
    score: array = field(default_factory=lambda: array("d"))
    requests: int = 0
    matched_ids: set[str] = field(default_factory=set)
    malformed: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.task not in TASK_METRICS:
            raise QualityError(f"unknown task {self.task!r}; accepted: {', '.join(TASK_METRICS)}")

    def feed(self, lines: Iterable[str]) -> None:
        by_id = self.labels.by_id
        for line in lines:
            if not line.strip():
                continue
            self.requests += 1
            ident = _fast_id(line) if line.rstrip().endswith(_SUFFIX) else None
            if ident is not None:  # SageMaker's compact layout: the id is sliced out, the record parsed only if labelled
                labels = by_id.get(ident)
                if labels is None:
                    continue
                scores = self._fast_scores(line)
                if scores is not None:
                    self._join(ident, labels, scores)
                    continue
            self._feed_parsed(line)

    def _fast_scores(self, line: str) -> list[float] | None:
        """The binary recipe's probabilities, sliced from the output; None sends the record to the full parse."""
        if self.task != "binary":
            return None
        at = line.find(_OUTPUT_KEY)
        found = _PROBABILITY.findall(line, at) if at >= 0 else None
        return [float(v) for v in found] if found else None

    def _feed_parsed(self, line: str) -> None:
        try:
            record = json.loads(line)
            meta = record.get("eventMetadata") or {}
            output = record["captureData"]["endpointOutput"]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            self.malformed["bad_json"] += 1
            return
        ident = meta.get("inferenceId") or meta.get("eventId")
        if not ident:
            self.malformed["no_id"] += 1
            return
        labels = self.labels.by_id.get(str(ident))
        if labels is None:
            return  # not labelled (yet)
        try:
            body = json.loads(_payload(output))
            predictions = body["predictions"] if isinstance(body, dict) else body
            predictions = predictions if isinstance(predictions, list) else [predictions]
            scores = [prediction_score(self.task, p) for p in predictions]
        except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
            self.malformed["bad_output"] += 1
            return
        self._join(str(ident), labels, scores)

    def _join(self, ident: str, labels: list[float], scores: list[float]) -> None:
        if len(scores) != len(labels):
            self.malformed["label_count_mismatch"] += 1
            return
        self.matched_ids.add(ident)
        self.y.extend(labels)
        self.score.extend(scores)

    def report(self, **context: Any) -> dict[str, Any]:
        joined = len(self.y)
        enough = joined >= self.min_records
        metrics = task_metrics(self.task, np.frombuffer(self.y), np.frombuffer(self.score)) if enough else {}
        return quality_report(
            self.task, context, enough=enough, metrics=metrics, requests=self.requests, received=self.labels.received,
            joined=joined, unmatched=len(self.labels.by_id.keys() - self.matched_ids), malformed=self.malformed + self.labels.malformed,
        )


def quality_report(task: str, context: dict[str, Any], *, enough: bool, metrics: dict[str, float], requests: int, received: int,
                   joined: int, unmatched: int, malformed: Counter) -> dict[str, Any]:
    """The report document of a window, from either join (in memory or on disk)."""
    return {
        "format": REPORT_FORMAT,
        **context,
        "task": task,
        "status": "ok" if enough else "insufficient_data",
        "records": {
            "requests": requests,
            "labels_received": received,
            "joined": joined,
            "unmatched_labels": unmatched,
            "malformed": sum(malformed.values()),
            "malformed_by_reason": {r: malformed[r] for r in MALFORMED_REASONS if malformed[r]},
        },
        "metrics": metrics,
        "directions": {m: "higher" if HIGHER_IS_BETTER[m] else "lower" for m in metrics},
    }


# ---------------------------------------------------------------------------------------------------------------
# The join on disk: memory bounded by one bucket, not by the window


_DECODE = json.JSONDecoder().raw_decode


def _enc(ident: str) -> str:
    """An id as it is spilled: as is when it cannot be mistaken for the separator, else as a JSON string."""
    if ident and '"' not in ident and "\\" not in ident and "\n" not in ident:
        return ident
    return json.dumps(ident)


def _split(line: str) -> tuple[str, str]:
    """``(id, rest)`` of a spilled line (its newline dropped)."""
    if line[0] == '"':
        ident, end = _DECODE(line)
        return ident, line[end + 1 : -1]
    ident, _, rest = line.partition('"')
    return ident, rest[:-1]


def _scores_text(scores: list[float]) -> str:
    return ",".join(map(repr, scores))  # repr round-trips a float exactly


def _scores_of(text: str) -> list[float]:
    return [float(v) for v in text.split(",")] if text else []


BATCH_LINES = 4096
_NUMBER = r'-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?'
_PROBABILITY_VALUES = re.compile(r'(?::[^\S\n]*' + _NUMBER + r'\n)*:[^\S\n]*' + _NUMBER)
_ID_KEY, _PROBABILITY_KEY = '"inferenceId":"', '\\"probability\\"'


def _sliced_captures(batch: list[str]) -> tuple[list[str], list[str]] | None:
    """``(ids, scores)`` of a run of capture lines, each sliced exactly as the line-by-line path slices it
    (:meth:`SpillJoin._feed_capture_lines`), when every line takes that path's fast branch with an
    ``inferenceId`` and one probability; else None. Each step is one C-level pass over the run."""
    n = len(batch)
    many = partial(repeat, times=n)
    if not all(map(str.endswith, batch, many((_SUFFIX + "\n", _SUFFIX)))):
        return None
    at = np.fromiter(map(str.find, batch, many(_ID_KEY)), np.int64, n)
    if at.min() < 0:
        return None
    starts = (at + len(_ID_KEY)).tolist()
    ids = list(map(str.__getitem__, batch, map(slice, starts, map(str.find, batch, many('"'), starts))))
    joined = "".join(ids)
    if not all(ids) or "\\" in joined or "\n" in joined or '"' in joined:  # empty, escaped, or no closing quote
        return None
    out = list(map(str.find, batch, many(_OUTPUT_KEY)))
    if min(out) < 0:
        return None
    key = np.fromiter(map(str.find, batch, many(_PROBABILITY_KEY), out), np.int64, n)
    if key.min() < 0 or max(map(str.find, batch, many(_PROBABILITY_KEY), (key + 1).tolist())) >= 0:
        return None  # no probability, or more than one: findall's list, line by line
    # What follows each key up to the next "}" must be what _PROBABILITY takes there: ':', spaces, a number.
    after = (key + len(_PROBABILITY_KEY)).tolist()
    values = list(map(str.__getitem__, batch, map(slice, after, map(str.find, batch, many("}"), after))))
    text = "\n".join(values)
    if text.count("\n") != n - 1 or _PROBABILITY_VALUES.fullmatch(text) is None:
        return None
    return ids, list(map(str.lstrip, values, many(": \t\r\f\v")))


_WINDOW = 128  # the longest id and probability text _sliced_capture_bytes reads; a block with a longer one is sliced as text
_KEY_WORDS = 3  # every key below fits in 24 bytes: compared as three 8-byte words


def _key_words(text: str) -> tuple[np.ndarray, np.ndarray]:
    codes = np.zeros(8 * _KEY_WORDS, np.uint8)
    codes[: len(text)] = np.frombuffer(text.encode(), np.uint8)
    mask = np.zeros(8 * _KEY_WORDS, np.uint8)
    mask[: len(text)] = 255
    return codes.view(np.uint64), mask.view(np.uint64)


# Each key is found from the positions of one of its bytes that is rare in capture records ("f": inferenceId and
# inferenceTime; "O": endpointOutput and OUTPUT; "y": probability and observedContentType, twice), then one more byte
# that tells those apart ("I"/"T", "u"/"U", "t"/"T"), then checked whole.
_KEYS = {key: (ord(key[rare]), rare, other, ord(key[other]), *_key_words(key))
         for key, rare, other in ((_ID_KEY, 3, 10), (_OUTPUT_KEY, 9, 10), (_PROBABILITY_KEY, 12, 11))}
_SUFFIX_CODES = np.frombuffer(_SUFFIX.encode(), np.uint8)
_NUMBERS = re.compile(r"(?:" + _NUMBER + r"\n)*" + _NUMBER)


def _occurrences(candidates: np.ndarray, padded: np.ndarray, windows: np.ndarray, key: str) -> np.ndarray:
    """Every offset of ``key`` (overlapping ones too), ascending, of the offsets of its rare byte, ``candidates``."""
    _, rare, other, byte, words, mask = _KEYS[key]
    at = candidates[candidates >= rare]
    at = at[padded[at + (other - rare)] == byte] - rare
    found = (windows[at, : 8 * _KEY_WORDS].view(np.uint64) & mask) == words  # a copy of each candidate's 24 bytes
    return at[found.all(axis=1)]


def _texts(windows: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> list[str]:
    """The texts at ``starts`` of ``lengths`` bytes (less than the windows' width), decoded as one."""
    rows = windows[starts, : int(lengths.max()) + 1]  # a copy: one row per text
    rows[np.arange(starts.size), lengths] = 10  # each text ended by a newline
    return rows[np.arange(rows.shape[1]) <= lengths[:, None]].tobytes()[:-1].decode("utf-8", "replace").split("\n")


def _ended(windows: np.ndarray, starts: np.ndarray, end: int, stops: tuple[int, ...]) -> np.ndarray | None:
    """Each text's length at ``starts``: up to its first byte of ``stops``, which must be ``end``; None when one is
    not, or when one is longer than the windows (first read 32 bytes wide: ids and probabilities are short)."""
    for width in (32, _WINDOW + 1):
        rows = windows[starts, :width]
        stop = rows == stops[0]
        for byte in stops[1:]:
            stop |= rows == byte
        length = stop.argmax(axis=1)
        ends = rows[np.arange(starts.size), length]
        if (ends == end).all():
            return length
        if not (stop[np.arange(starts.size), length]).all() and width <= _WINDOW:
            continue  # some text runs past this width
        return None
    return None


class _Scratch:
    """Arrays reused from block to block: new ones of a block's size each time are fresh pages from the kernel
    (their page faults cost more than the work done in them)."""

    def __init__(self) -> None:
        self.size = -1

    def arrays(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if size > self.size:
            self.size = size + (size >> 2)
            self.marked, self.equal, self.padded = np.empty(self.size, bool), np.empty(self.size, bool), np.empty(self.size + _WINDOW + 1, np.uint8)
        return self.marked[:size], self.equal[:size], self.padded[: size + _WINDOW + 1]


def _sliced_capture_bytes(block: bytes, scratch: _Scratch | None = None) -> tuple[list[str], list[str]] | None:
    """:func:`_sliced_captures` of a block's lines (UTF-8, joined by newlines) read from its bytes by numpy: the same
    ``(ids, scores)``, or None (then the block is decoded and read as text). No Python string per line but the id
    and the score: each key is found once over the block, not searched for line by line."""
    buf = np.frombuffer(block, np.uint8)
    marked, equal, padded = (scratch or _Scratch()).arrays(buf.size)
    np.equal(buf, 10, out=marked)
    for key in (_ID_KEY, _OUTPUT_KEY, _PROBABILITY_KEY):
        marked |= np.equal(buf, _KEYS[key][0], out=equal)
    at = np.flatnonzero(marked)  # one pass for the newlines and every key's rare byte
    kind = buf[at]
    newlines = at[kind == 10]
    n = newlines.size + 1
    starts = np.empty(n, np.int64)
    starts[0], starts[1:] = 0, newlines + 1
    ends = np.empty(n, np.int64)
    ends[:-1], ends[-1] = newlines, buf.size
    if int((ends - starts).min()) < _SUFFIX_CODES.size:
        return None
    padded[: buf.size], padded[buf.size :] = buf, 0
    windows = np.lib.stride_tricks.as_strided(padded, shape=(buf.size + 1, _WINDOW + 1), strides=(1, 1), writeable=False)
    if not (windows[ends - _SUFFIX_CODES.size, : _SUFFIX_CODES.size] == _SUFFIX_CODES).all():
        return None

    def first(key: str, after: np.ndarray | None = None) -> np.ndarray | None:
        """Each line's first offset of ``key`` (at or after ``after``); None when a line has none, or (with
        ``after``) more than one."""
        found = _occurrences(at[kind == _KEYS[key][0]], padded, windows, key)
        line = np.searchsorted(starts, found, side="right") - 1
        if after is not None:
            keep = found >= after[line]
            found, line = found[keep], line[keep]
        lead = np.ones(found.size, bool)
        lead[1:] = line[1:] != line[:-1]
        if int(np.count_nonzero(lead)) != n or (after is not None and lead.size != n):
            return None  # a line without the key, or more than one probability after the output (findall's list)
        return found[lead]

    ident = first(_ID_KEY)
    output = first(_OUTPUT_KEY) if ident is not None else None
    key = first(_PROBABILITY_KEY, output) if output is not None else None
    if key is None:
        return None
    id_at = ident + len(_ID_KEY)
    id_len = _ended(windows, id_at, 34, (34, 92, 10))  # the id ends at a quote; a backslash or a newline in it: text
    if id_len is None or not id_len.all():
        return None
    # The text up to the next "}" is what fullmatch wants: ":" or ": " (other spaces: text), then the number.
    value_at = key + len(_PROBABILITY_KEY)
    value_len = _ended(windows, value_at, 125, (125, 10))
    if value_len is None:
        return None
    head = windows[value_at, :2]
    if not (head[:, 0] == 58).all():
        return None
    spaced = head[:, 1] == 32
    scores = _texts(windows, value_at + 1 + spaced, value_len - 1 - spaced)
    if _NUMBERS.fullmatch("\n".join(scores)) is None:
        return None
    return _texts(windows, id_at, id_len), scores


_LABEL_PARTS = [np.frombuffer(part.encode(), np.uint8) for part in (
    '{"groundTruthData":{"data":"', '","encoding":"CSV"},"eventMetadata":{"eventId":"', '"},"eventVersion":"0"}')]  # _GROUND_TRUTH's


def _sliced_label_bytes(block: bytes, scratch: _Scratch | None = None) -> tuple[list[str], list[str]] | None:
    """``(ids, data)`` of a block's ground-truth lines (UTF-8, joined by newlines) read from its bytes by numpy, when
    every line is exactly what :data:`_GROUND_TRUTH` matches (trailing spaces aside: those lines are read as text),
    the groups it gives; else None (then the block is decoded and matched line by line)."""
    head, middle, tail = _LABEL_PARTS
    buf = np.frombuffer(block, np.uint8)
    marked, _, padded = (scratch or _Scratch()).arrays(buf.size)
    newlines = np.flatnonzero(np.equal(buf, 10, out=marked))
    starts = np.empty(newlines.size + 1, np.int64)
    starts[0], starts[1:] = 0, newlines + 1
    ends = np.empty(newlines.size + 1, np.int64)
    ends[:-1], ends[-1] = newlines, buf.size
    if int((ends - starts).min()) < head.size + middle.size + tail.size + 1:
        return None
    padded[: buf.size], padded[buf.size :] = buf, 0
    windows = np.lib.stride_tricks.as_strided(padded, shape=(buf.size + 1, _WINDOW + 1), strides=(1, 1), writeable=False)
    if not (windows[starts, : head.size] == head).all():
        return None
    data_at = starts + head.size
    data_len = _ended(windows, data_at, 34, (34, 92, 10))  # up to the first quote: a backslash or a newline first fails
    if data_len is None or not (windows[data_at + data_len, : middle.size] == middle).all():
        return None
    id_at = data_at + data_len + middle.size
    id_len = _ended(windows, id_at, 34, (34, 92, 10))
    if id_len is None or not id_len.all() or not (id_at + id_len + tail.size == ends).all():
        return None
    if not (windows[id_at + id_len, : tail.size] == tail).all():
        return None
    return _texts(windows, id_at, id_len), _texts(windows, data_at, data_len)


def spill_buckets(label_bytes: int) -> int:
    """Buckets for a window whose label files hold ``label_bytes``: ~2 MB of label lines each (~20,000 labels,
    under 10 MB as a dict), at least 16, at most 4,096."""
    return max(16, min(4096, -(-label_bytes // (2 << 20))))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while the join streams (it makes millions of short-lived lists and
    tuples and no reference cycles; the collector's passes over them were ~5% of a run's CPU), back on after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Disk:
    """Bytes a run has on disk in its spill directory, held to ``limit``: past it, a :class:`QualityError`."""

    def __init__(self, directory: str, limit: int) -> None:
        self.directory, self.limit, self.used, self.peak = directory, limit, 0, 0

    def add(self, nbytes: int) -> None:
        self.used += nbytes
        self.peak = max(self.peak, self.used)
        if self.used > self.limit:
            raise QualityError(
                f"the window's join needs more than the {self.limit / 2**20:,.0f} MB of disk it may use in {self.directory} "
                f"(~51 bytes per captured request); raise quality.lambda_ephemeral_storage_mb "
                f"(accepted: 512 to 10240) or shorten quality.window_hours"
            )

    def free(self, nbytes: int) -> None:
        self.used -= nbytes


class SpillJoin:
    """The window's join, partitioned on disk: labels and predictions are written, compactly, to one of
    ``buckets`` files by a hash of their inference id, then each bucket's labels are loaded and its
    predictions joined with them. The report equals :class:`QualityScorer`'s over the same lines, key for
    key: the same records are counted, the same pairs joined, and the pairs are put back in capture order
    before the metrics (a float sum depends on its order).

    Memory: one bucket's labels, the write buffers (~16,000 lines in all), then at most ``budget`` joined pairs
    at a time (:mod:`training.spill_metrics`: the pairs put back in capture order on disk, the metrics computed
    exactly over chunks, roc_auc ranked out of core), whatever the window's volume. Disk: ~51 bytes per
    captured request at the peak (measured with one-row requests and 90% of them labelled), held to ``disk_limit`` bytes (default: the free space of the
    directory when the join starts; the Lambda's ``/tmp`` is ``quality.lambda_ephemeral_storage_mb``)."""

    FLUSH_LINES = 1 << 14

    def __init__(self, task: str, min_records: int = 100, buckets: int = 256, directory: str | None = None,
                 budget: int = BUDGET, disk_limit: int | None = None) -> None:
        import shutil
        import tempfile

        if task not in TASK_METRICS:
            raise QualityError(f"unknown task {task!r}; accepted: {', '.join(TASK_METRICS)}")
        self.task, self.min_records, self.buckets = task, min_records, buckets
        self._tmp = tempfile.TemporaryDirectory(prefix="mlops-quality-", dir=directory)
        self.budget = budget
        self.disk = _Disk(self._tmp.name, shutil.disk_usage(self._tmp.name).free if disk_limit is None else disk_limit)
        self._flush_at = max(16, self.FLUSH_LINES // buckets)
        self._labels: list[list[str]] = [[] for _ in range(buckets)]
        self._captures: list[list[str]] = [[] for _ in range(buckets)]
        self._fast: list[list[str]] = [[] for _ in range(buckets)]
        self._columns: list[tuple[list, list, list]] = [([], [], []) for _ in range(buckets)]
        self._column_rows = [0] * buckets
        self._column_flush_at = max(16, 4 * self.FLUSH_LINES // buckets)  # ~40 bytes a row: ~2.6 MB buffered in all
        self._parsed_labels: set[int] = set()
        self._scratch = _Scratch()
        self._crossed = False  # a record sliced under one id and joined under another ("X", off-layout only)
        self.requests = 0
        self.received = 0
        self.malformed: Counter = Counter()

    def close(self) -> None:
        """Removes the spill directory (:meth:`report` does too)."""
        self._tmp.cleanup()

    def _path(self, kind: str, bucket: int) -> str:
        return f"{self._tmp.name}/{kind}{bucket}"

    def _flush(self, kind: str, bucket: int, buffer: list[str]) -> None:
        with open(self._path(kind, bucket), "a", encoding="utf-8", errors="surrogatepass", newline="\n") as f:
            start = f.tell()
            f.writelines(buffer)
            self.disk.add(f.tell() - start)
        buffer.clear()

    def _put(self, kind: str, buffers: list[list[str]], ident: str, text: str) -> None:
        bucket = hash(ident) % self.buckets
        buffer = buffers[bucket]
        buffer.append(text)
        if len(buffer) >= self._flush_at:
            self._flush(kind, bucket, buffer)

    # -- streaming --------------------------------------------------------------------------------------------

    def feed_labels(self, lines: Iterable[str]) -> None:
        """Ground-truth lines, as :meth:`Labels.feed` reads them; the compact layout is checked when its bucket loads."""
        with _collector_paused():
            self._feed_label_lines(lines)

    def feed_label_bytes(self, blocks: Iterable[bytes]) -> None:
        """Ground-truth lines in blocks of bytes (:func:`byte_blocks`), as :meth:`feed_labels` reads them: a block of
        compact records is sliced from its bytes (:func:`_sliced_label_bytes`), any other decoded and matched."""
        with _collector_paused():
            buffers, flush_at, buckets = self._labels, self._flush_at, self.buckets
            for block in blocks:
                sliced = _sliced_label_bytes(block, self._scratch)
                if sliced is None:
                    self._feed_label_lines(block_lines(block))
                    continue
                for ident, data in zip(*sliced):  # as _feed_label_lines spills a line _GROUND_TRUTH matches
                    bucket = hash(ident) % buckets
                    buffer = buffers[bucket]
                    buffer.append(f'{ident}"C{data}\n')
                    if len(buffer) >= flush_at:
                        self._flush("l", bucket, buffer)

    def _feed_label_lines(self, lines: Iterable[str]) -> None:
        buffers, flush_at, buckets, match = self._labels, self._flush_at, self.buckets, _GROUND_TRUTH.match
        for line in lines:
            fast = match(line)
            if fast is not None:
                data, ident = fast.groups()
                bucket = hash(ident) % buckets
                buffer = buffers[bucket]
                buffer.append(f'{ident}"C{data}\n')
                if len(buffer) >= flush_at:
                    self._flush("l", bucket, buffer)
                continue
            if not line.strip():
                continue
            one = Labels()
            one.feed([line])
            if one.malformed:
                self.malformed.update(one.malformed)
                continue
            ((ident, labels),) = one.by_id.items()
            self.received += 1
            self._parsed_labels.add(hash(ident) % buckets)
            self._put("l", buffers, ident, f'{_enc(ident)}"P{_scores_text(labels)}\n')

    def feed_captures(self, lines: Iterable[str]) -> None:
        """Capture lines, as :meth:`QualityScorer.feed` reads them: in runs of :data:`BATCH_LINES`, each run
        sliced column-wise (:func:`_sliced_captures`) when every line is in SageMaker's compact layout with one
        probability, else line by line."""
        it = iter(lines)
        self.feed_capture_blocks(iter(lambda: list(islice(it, BATCH_LINES)), []))

    def feed_capture_blocks(self, blocks: Iterable[list[str]]) -> None:
        """Capture lines in lists (:func:`line_blocks`), as :meth:`feed_captures` reads them."""
        with _collector_paused():
            self._feed_capture_blocks(blocks)

    def feed_capture_bytes(self, blocks: Iterable[bytes]) -> None:
        """Capture lines in blocks of bytes (:func:`byte_blocks`), as :meth:`feed_captures` reads them: a block whose
        lines are all in SageMaker's compact layout with one probability is sliced from its bytes
        (:func:`_sliced_capture_bytes`), any other is decoded and read as :meth:`feed_capture_blocks` reads it."""
        with _collector_paused():
            for block in blocks:
                sliced = _sliced_capture_bytes(block, self._scratch) if self.task == "binary" else None
                if sliced is None:
                    self._feed_capture_blocks([block_lines(block)])
                    continue
                seq = self.requests
                self.requests += len(sliced[0])
                self._spill_columns(*sliced, seq)

    def _feed_capture_blocks(self, blocks: Iterable[list[str]]) -> None:
        if self.task != "binary":
            self._feed_capture_lines(chain.from_iterable(blocks))
            return
        for block in blocks:
            for at in range(0, len(block), BATCH_LINES):
                batch = block[at : at + BATCH_LINES] if len(block) > BATCH_LINES else block
                sliced = _sliced_captures(batch) if batch else None
                if sliced is None:
                    self._feed_capture_lines(batch)
                    continue
                seq = self.requests
                self.requests += len(batch)
                self._spill_columns(*sliced, seq)

    def _spill_columns(self, ids: list[str], scores: list[str], seq: int) -> None:
        """A run's sliced ids and scores (the ``i``-th is request ``seq + i``) to their buckets, column-wise:
        ids and scores as lines of text, the sequence numbers as int64."""
        n = len(ids)
        where = np.fromiter(map(hash, ids), np.int64, n) % self.buckets  # numpy's modulo is Python's: hash(id) % buckets
        order = np.argsort(where, kind="stable")
        where = where[order]
        if n > 1:
            pick = itemgetter(*order.tolist())
            ids, scores = pick(ids), pick(scores)
        seqs = order + seq
        cuts = (np.flatnonzero(where[1:] != where[:-1]) + 1).tolist()
        for start, end in zip([0, *cuts], [*cuts, n]):
            bucket = int(where[start])
            parts = self._columns[bucket]
            parts[0].append("\n".join(ids[start:end]))
            parts[1].append("\n".join(scores[start:end]))
            parts[2].append(seqs[start:end])
            self._column_rows[bucket] += end - start
            if self._column_rows[bucket] >= self._column_flush_at:
                self._flush_columns(bucket)

    def _flush_columns(self, bucket: int) -> None:
        """One frame appended to the bucket's ``v`` file: rows, the ids' and the scores' byte lengths (int64),
        the ids and the scores (newline-separated UTF-8), the sequence numbers (int64)."""
        ids, scores, seqs = self._columns[bucket]
        if not ids:
            return
        ids_bytes = "\n".join(ids).encode("utf-8", "surrogatepass")
        scores_bytes = "\n".join(scores).encode("utf-8", "surrogatepass")
        frame = b"".join((np.array([self._column_rows[bucket], len(ids_bytes), len(scores_bytes)], np.int64).tobytes(),
                          ids_bytes, scores_bytes, np.concatenate(seqs).astype(np.int64).tobytes()))
        self.disk.add(len(frame))
        with open(self._path("v", bucket), "ab") as f:
            f.write(frame)
        self._columns[bucket] = ([], [], [])
        self._column_rows[bucket] = 0

    def _frames(self, bucket: int) -> tuple[list[str], list[str], np.ndarray]:
        """The ids, scores and sequence numbers of a bucket's ``v`` file."""
        import os

        path = self._path("v", bucket)
        if not os.path.exists(path):
            return [], [], np.empty(0, np.int64)
        with open(path, "rb") as f:
            data = f.read()
        ids, scores, seqs, at = [], [], [], 0
        while at < len(data):
            rows, id_len, score_len = np.frombuffer(data, np.int64, 3, at).tolist()
            at += 24
            ids += data[at : at + id_len].decode("utf-8", "surrogatepass").split("\n")
            at += id_len
            scores += data[at : at + score_len].decode("utf-8", "surrogatepass").split("\n")
            at += score_len
            seqs.append(np.frombuffer(data, np.int64, rows, at))
            at += 8 * rows
        return ids, scores, np.concatenate(seqs)

    def _feed_capture_lines(self, lines: Iterable[str]) -> None:
        buffers, fast_buffers, flush_at, buckets = self._captures, self._fast, self._flush_at, self.buckets
        binary = self.task == "binary"
        findall, suffix, suffix_nl = _PROBABILITY.findall, _SUFFIX, _SUFFIX + "\n"
        seq = self.requests
        for line in lines:
            if not (line.endswith(suffix_nl) or line.endswith(suffix)):
                if not line.strip():
                    continue
                if not line.rstrip().endswith(suffix):
                    self._off_layout(line, seq, None)
                    seq += 1
                    continue
            # SageMaker's compact layout: the join id is the first inferenceId, else the first eventId (_fast_id)
            at = line.find('"inferenceId":"')
            if at >= 0:
                at += 15
            else:
                at = line.find('"eventId":"')
                if at >= 0:
                    at += 11
            ident = None
            if at >= 0:
                end = line.find('"', at)
                if end > at and line.find("\\", at, end) < 0:
                    ident = line[at:end]
            if ident is not None and binary:
                out = line.find(_OUTPUT_KEY)
                found = findall(line, out) if out >= 0 else None
                if found:  # the fast path: the id and the probabilities sliced out, floats made at the join
                    bucket = hash(ident) % buckets
                    buffer = fast_buffers[bucket]
                    buffer.append(f'{ident}"{seq}"{",".join(found)}\n')
                    if len(buffer) >= flush_at:
                        self._flush("f", bucket, buffer)
                    seq += 1
                    continue
            self._off_layout(line, seq, ident)
            seq += 1
        self.requests = seq

    def _off_layout(self, line: str, seq: int, ident: str | None) -> None:
        """A record parsed in full; with a sliced ``ident``, its outcome counts only if ``ident`` is labelled."""
        buffers = self._captures
        outcome = self._parse(line)
        if ident is None:
            if isinstance(outcome, str):
                self.malformed[outcome] += 1
            else:
                self._put("c", buffers, outcome[0], f'{_enc(outcome[0])}"S{seq}"{outcome[1]}\n')
        elif isinstance(outcome, str):
            self._put("c", buffers, ident, f'{ident}"G{seq}"{outcome}\n')
        elif outcome[0] == ident:
            self._put("c", buffers, ident, f'{ident}"S{seq}"{outcome[1]}\n')
        else:
            self._crossed = True
            self._put("c", buffers, ident, f'{ident}"X{seq}"{_enc(outcome[0])}"{outcome[1]}\n')

    def _parse(self, line: str) -> str | tuple[str, str]:
        """A record parsed in full: a malformed reason (``bad_json``, ``no_id``), or ``(id, scores)`` with the
        scores as spilled text, ``!`` when the output cannot be scored (``bad_output``, counted only if labelled)."""
        try:
            record = json.loads(line)
            meta = record.get("eventMetadata") or {}
            output = record["captureData"]["endpointOutput"]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            return "bad_json"
        ident = meta.get("inferenceId") or meta.get("eventId")
        if not ident:
            return "no_id"
        try:
            body = json.loads(_payload(output))
            predictions = body["predictions"] if isinstance(body, dict) else body
            predictions = predictions if isinstance(predictions, list) else [predictions]
            return str(ident), _scores_text([prediction_score(self.task, p) for p in predictions])
        except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
            return str(ident), "!"

    # -- joining ----------------------------------------------------------------------------------------------

    def _lines(self, kind: str, bucket: int) -> Iterator[str]:
        import os

        path = self._path(kind, bucket)
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="surrogatepass", newline="\n") as f:
                yield from f

    def _text(self, kind: str, bucket: int) -> str:
        import os

        path = self._path(kind, bucket)
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8", errors="surrogatepass", newline="\n") as f:
            return f.read()

    def _bucket(self, bucket: int, emit: bool) -> tuple:
        """One bucket joined: (counts, malformed, unmatched, seq per row, y, score)."""
        received, malformed = 0, Counter()
        isfinite = math.isfinite
        memo: dict[str, list[float] | None] = {}

        def compact(text: str) -> list[float] | None:
            """A compact label's values, None when malformed; one list shared by equal texts (never mutated)."""
            labels = memo.get(text, False)
            if labels is False:
                try:
                    labels = [float(v) for v in text.split(",")]
                except ValueError:
                    labels = []
                labels = labels if labels and all(map(isfinite, labels)) else None
                if len(memo) < 4096:
                    memo[text] = labels
            return labels

        if bucket in self._parsed_labels:  # in delivery order, line by line: the later label wins
            by_id: dict[str, list[float]] = {}
            for line in self._lines("l", bucket):
                ident, rest = _split(line)
                if rest[0] == "C":
                    labels = compact(rest[1:])
                    if labels is None:
                        malformed["bad_label"] += 1
                    else:
                        received += 1
                        by_id[ident] = labels
                else:
                    by_id[ident] = _scores_of(rest[1:])
        else:  # compact lines only: `id"Cdata` each, neither part with a quote or a newline: split, not parsed
            fields = self._text("l", bucket).replace("\n", '"').split('"')
            ids, texts = fields[0:-1:2], fields[1::2]
            distinct = set(texts)
            if len(distinct) <= 4096:  # labels are mostly a few classes: each text read once
                table = {text: compact(text[1:]) for text in distinct}
                values = list(map(table.__getitem__, texts))
            else:
                values = [compact(text[1:]) for text in texts]
            bad = values.count(None)
            if bad:
                malformed["bad_label"] += bad
                by_id = {ident: v for ident, v in zip(ids, values) if v is not None}
            else:
                by_id = dict(zip(ids, values))
            received += len(values) - bad
        seqs, y, score = array("q"), array("d"), array("d")
        matched: set[str] = set()
        get = by_id.get

        def join(ident: str, labels: list[float], seq: int, scores: list[float]) -> None:
            if len(scores) != len(labels):
                malformed["label_count_mismatch"] += 1
                return
            matched.add(ident)
            seqs.extend([seq] * len(labels))
            y.extend(labels)
            score.extend(scores)

        def target(ident: str, seq: int, text: str) -> None:
            labels = get(ident)
            if labels is None:
                return
            if text == "!":
                malformed["bad_output"] += 1
            else:
                join(ident, labels, seq, _scores_of(text))

        bulk: list[tuple[np.ndarray, ...]] = []
        fields = self._text("f", bucket).replace("\n", '"').split('"')  # `id"seq"scores` lines, no quote or newline in a part
        v_ids, v_texts, v_seqs = self._frames(bucket)
        ids, texts = fields[0:-1:3] + v_ids, fields[2::3] + v_texts
        if ids:
            seq_of = np.concatenate([np.fromiter(map(int, fields[1::3]), np.int64, len(fields) // 3), v_seqs])
            looked_up = list(map(get, ids))  # None: not labelled (yet); a label list is never empty
            ids, texts, found = [list(compress(column, looked_up)) for column in (ids, texts, looked_up)]
            seq_of = seq_of[np.fromiter(compress(range(len(looked_up)), looked_up), np.int64)]
            if set(map(len, found)) <= {1} and ",".join(texts).count(",") == len(texts) - 1:  # one row a request
                matched.update(ids)
                n = len(ids)
                bulk.append((seq_of, np.fromiter(chain.from_iterable(found), np.float64, n), np.fromiter(map(float, texts), np.float64, n)))
            else:
                for ident, seq, text, labels in zip(ids, seq_of.tolist(), texts, found):
                    join(ident, labels, seq, [float(v) for v in text.split(",")])
        for line in [*self._lines("c", bucket), *self._lines("d", bucket)]:
            ident, rest = _split(line)
            kind = rest[0]
            seq, _, text = rest[1:].partition('"')
            if kind == "S":
                target(ident, int(seq), text)
            elif kind == "G":
                if ident in by_id:
                    malformed[text] += 1
            elif ident in by_id:  # "X": gated by `ident`, joined with another id's labels
                other, text = _split(text + "\n")
                if hash(other) % self.buckets == bucket:
                    target(other, int(seq), text)
                elif emit:
                    self._defer(hash(other) % self.buckets, f'{_enc(other)}"S{seq}"{text}\n')
        columns = [np.concatenate([np.frombuffer(one, dtype) if len(one) else np.empty(0, dtype), *(b[i] for b in bulk)])
                   for i, (one, dtype) in enumerate(((seqs, np.int64), (y, np.float64), (score, np.float64)))]
        # every matched id is a key of by_id (joined only when its labels were found): no set difference to build
        return received, malformed, len(by_id) - len(matched), *columns

    def _joined(self, bucket: int, emit: bool) -> tuple:
        """A bucket joined, its pairs written to disk (a rerun overwrites them): (counts, malformed, unmatched, pairs)."""
        import os

        received, malformed, unmatched, seqs, y, score = self._bucket(bucket, emit)
        path = self._path("j", bucket)
        if os.path.exists(path):
            self.disk.free(os.path.getsize(path))
        with open(path, "wb") as f:
            for column in (seqs, y, score):
                column.tofile(f)
        self.disk.add(24 * len(y))
        return received, malformed, unmatched, len(y)

    def _drop(self, kind: str, bucket: int) -> None:
        import os

        path = self._path(kind, bucket)
        if os.path.exists(path):
            self.disk.free(os.path.getsize(path))
            os.remove(path)

    def _metrics(self, parts: list[tuple]) -> dict[str, float | None]:
        """The task's metrics over every bucket's pairs, in capture order (a float sum depends on its order),
        at most ``budget`` pairs in memory at a time."""
        order = CaptureOrder(self.disk, self.requests, self.budget)
        for bucket, part in enumerate(parts):
            for kind in ("l", "f", "c", "d", "v"):
                self._drop(kind, bucket)
            if part[3]:
                with open(self._path("j", bucket), "rb") as f:
                    columns = [np.fromfile(f, dtype=dtype, count=part[3]) for dtype in (np.int64, np.float64, np.float64)]
                self._drop("j", bucket)
                order.add(*columns)
        return order.ordered().metrics(self.task)

    def _defer(self, bucket: int, line: str) -> None:
        self._flush("d", bucket, [line])
        self._late.add(bucket)

    def report(self, **context: Any) -> dict[str, Any]:
        """Joins bucket by bucket, then the report :meth:`QualityScorer.report` gives (and removes the spill)."""
        with _collector_paused():
            return self._report(context)

    def _report(self, context: dict[str, Any]) -> dict[str, Any]:
        for bucket in range(self.buckets):
            if self._labels[bucket]:
                self._flush("l", bucket, self._labels[bucket])
            if self._captures[bucket]:
                self._flush("c", bucket, self._captures[bucket])
            if self._fast[bucket]:
                self._flush("f", bucket, self._fast[bucket])
            self._flush_columns(bucket)
        self._late: set[int] = set()
        results: dict[int, tuple] = {}
        try:
            for bucket in range(self.buckets):
                self._late.discard(bucket)
                results[bucket] = self._joined(bucket, emit=True)
                if not self._crossed:  # else a deferred record may join this bucket again (below)
                    for kind in ("l", "f", "c", "v"):
                        self._drop(kind, bucket)
            for bucket in sorted(self._late):  # a record deferred to a bucket already joined (off-layout records only)
                results[bucket] = self._joined(bucket, emit=False)
            parts = [results[b] for b in range(self.buckets)]
            received = self.received + sum(p[0] for p in parts)
            malformed = self.malformed + sum((p[1] for p in parts), Counter())
            unmatched = sum(p[2] for p in parts)
            joined = sum(p[3] for p in parts)
            enough = joined >= self.min_records
            metrics = self._metrics(parts) if enough else {}
        finally:
            self._tmp.cleanup()
        return quality_report(self.task, context, enough=enough, metrics=metrics, requests=self.requests, received=received,
                              joined=joined, unmatched=unmatched, malformed=malformed)


def label_hours(end: datetime, window_hours: int, delay_hours: int) -> tuple[list[datetime], list[datetime]]:
    """(capture hours, label hours) of a run at ``end``: captures of ``window_hours`` whole hours ending
    ``delay_hours`` before ``end``; labels delivered from the window's first hour through ``end``'s hour."""
    last = end.replace(minute=0, second=0, microsecond=0)
    capture_end = last - timedelta(hours=delay_hours)
    captures = [capture_end - timedelta(hours=h) for h in range(window_hours, 0, -1)]
    span = int((last - captures[0]) / timedelta(hours=1)) + 1
    return captures, [captures[0] + timedelta(hours=h) for h in range(span)]


def metric_data(report: dict[str, Any], model: str, when: datetime) -> list[dict[str, Any]]:
    """CloudWatch datapoints: counts always, each task metric only with enough joined records."""
    dims = [{"Name": "Model", "Value": model}]

    def datum(name: str, value: float, unit: str = "None") -> dict[str, Any]:
        return {"MetricName": name, "Dimensions": dims, "Timestamp": when, "Value": float(value), "Unit": unit}

    records = report["records"]
    data = [
        datum(METRIC_JOINED, records["joined"], "Count"),
        datum(METRIC_LABELS, records["labels_received"], "Count"),
        datum(METRIC_UNMATCHED, records["unmatched_labels"], "Count"),
    ]
    data += [datum(QUALITY_METRIC_PREFIX + name, value) for name, value in report["metrics"].items() if value is not None]
    return data


def lines_of(chunks: Iterator[bytes]) -> Iterator[str]:
    """Lines of a byte stream that arrives in chunks (an S3 body's ``iter_chunks``)."""
    return chain.from_iterable(line_blocks(chunks))


def byte_blocks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The whole lines of a byte stream that arrives in chunks, one block per chunk: its lines joined by newlines (no
    trailing one), the last line of the stream even without its newline."""
    rest = b""
    for chunk in chunks:
        cut = chunk.rfind(b"\n")
        if cut < 0:
            rest += chunk
            continue
        block, rest = rest + chunk[:cut], chunk[cut + 1 :]
        yield block
    if rest:
        yield rest


def line_blocks(chunks: Iterator[bytes]) -> Iterator[list[str]]:
    """The lines of a byte stream that arrives in chunks, a list of them per chunk (the last line of the
    stream even without its newline). A block's whole lines are decoded in one piece (a newline byte is never
    inside a UTF-8 character, so that equals decoding each line)."""
    return map(block_lines, byte_blocks(chunks))


def block_lines(block: bytes) -> list[str]:
    """The lines of a :func:`byte_blocks` block, decoded (invalid UTF-8 replaced)."""
    return block.decode("utf-8", errors="replace").split("\n")


# ---------------------------------------------------------------------------------------------------------------
# The scheduled run


def _objects(s3, bucket: str, prefixes: Iterable[str]) -> Iterator[tuple[str, int]]:
    """``(key, size)`` of the objects under each prefix, in listing order."""
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"], obj.get("Size", 0)


def _stream(s3, bucket: str, key: str) -> Iterator[bytes]:
    """An object's whole lines, a block of them per 1 MB chunk (:func:`byte_blocks`)."""
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        yield from byte_blocks(body.iter_chunks(1 << 20))
    finally:
        body.close()


def run_job(job: QualityJob, when: datetime, s3, cloudwatch) -> dict[str, Any]:
    """One run: labels of the span, the window's captures streamed and joined, a report in S3, metrics."""
    captures, delivered = label_hours(when, job.window_hours, job.label_delay_hours)
    label_objects = list(_objects(s3, job.data_bucket, (f"{job.model}/{GROUND_TRUTH_PREFIX}/{h:%Y/%m/%d/%H}/" for h in delivered)))
    scorer = SpillJoin(job.task, job.min_records, buckets=spill_buckets(sum(size for _, size in label_objects)))
    try:  # a warm Lambda keeps /tmp: the spill goes even when the run fails
        for key, _ in label_objects:
            scorer.feed_label_bytes(_stream(s3, job.data_bucket, key))
        label_files = len(label_objects)
        files = 0
        for key in capture_keys(s3, job.capture_bucket, job.model, job.endpoint_name, captures):
            scorer.feed_capture_bytes(_stream(s3, job.capture_bucket, key))
            files += 1
        window = {"start": captures[0].isoformat(), "end": (captures[-1] + timedelta(hours=1)).isoformat()}
        report = scorer.report(model=job.model, endpoint=job.endpoint_name, window=window, capture_files=files, label_files=label_files)
    finally:
        scorer.close()
    key = f"{job.report_prefix}{when:%Y/%m/%d/%H}.json"
    s3.put_object(Bucket=job.capture_bucket, Key=key, Body=json.dumps(report, indent=2).encode(), ContentType="application/json")
    cloudwatch.put_metric_data(Namespace=job.metric_namespace, MetricData=metric_data(report, job.model, when))
    LOG.info("%s: %s, %d joined of %d requests, %d labels; report s3://%s/%s", job.model, report["status"],
             report["records"]["joined"], report["records"]["requests"], report["records"]["labels_received"], job.capture_bucket, key)
    return report


def handler(event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
    """Lambda entry point; event (from the schedule): ``{"scheduled_time": "<ISO time>"}``."""
    import os

    import boto3

    from training.drift import _when

    logging.getLogger().setLevel(logging.INFO)
    try:
        job = QualityJob.from_env(os.environ)
    except DriftError as e:
        raise QualityError(str(e)) from None
    report = run_job(job, _when((event or {}).get("scheduled_time")), boto3.client("s3"), boto3.client("cloudwatch"))
    return {k: report[k] for k in ("status", "records", "metrics")}
