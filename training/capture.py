"""Reading SageMaker data-capture files: capture records -> request rows, malformed records counted.

A capture file is JSON Lines, one record per line::

    {"captureData": {"endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                                       "data": "...", "encoding": "CSV" | "JSON" | "BASE64"},
                     "endpointOutput": {...}},
     "eventMetadata": {"eventId": "...", "inferenceTime": "2026-11-28T12:00:00Z"}, "eventVersion": "0"}

The request payload is what ``training.inference`` accepts: CSV (one row per line, no header, the
contract's feature order; a first line naming exactly the features is a header; an empty cell is
missing) or JSON (``{"instances": [...]}``, a list of records, or one record; a record is a dict of
every feature or a list in feature order). A record that cannot be read is counted under a reason in
:data:`MALFORMED_REASONS` and skipped; nothing here raises on bad data.

Only the standard library (and numpy when importable: to count newlines and find the data of compact records): this
module runs in the drift Lambda, which ships numpy and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

MALFORMED_REASONS = ("bad_json", "bad_base64", "bad_payload", "wrong_column_count", "non_numeric", "non_finite", "invalid_bool")

# SageMaker writes capture records compactly in this key order. A CSV record laid out exactly so is read
# by slicing out its data (building the record's JSON objects is most of the cost of reading it); any
# other line is parsed in full. The slice ends at the first quote and must be followed by the encoding;
# a backslash in it (an escape: several rows, a quote) sends the line to the full parse too.
_CSV_PREFIX = '{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"'
_CSV_AFTER_DATA = '","encoding":"CSV"}'
_SUFFIX = '"eventVersion":"0"}'

READ_SIZE = 1 << 20

# The model's answer in a record's endpointOutput: ``{"predictions": [{"probability": p, ...}, ...]}`` (the
# built-in recipe's response). Inside the record it is a JSON string, so its quotes are escaped; a BASE64
# output, or any other layout, is parsed in full.
_OUTPUT_KEY = '"endpointOutput":'
_PROBABILITY = re.compile(r'\\"probability\\":\s*(-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)')  # a JSON number: float() takes it


@dataclass
class Batch:
    """Rows of a run of capture records, ready for column-wise scoring.

    ``csv_rows`` are single CSV lines without quoting (split on commas when scored); ``value_rows`` are
    rows already split into values (JSON lists, quoted CSV); ``record_rows`` are dicts of
    feature -> value. ``malformed`` counts records dropped here by reason.
    """

    csv_rows: list[str] = field(default_factory=list)
    value_rows: list[list[Any]] = field(default_factory=list)
    record_rows: list[dict[str, Any]] = field(default_factory=list)
    malformed: Counter = field(default_factory=Counter)


def capture_line(
    data: str, content_type: str = "text/csv", encoding: str = "CSV", event_id: str = "0", inference_time: str = "2026-01-01T00:00:00Z",
    response_body: str = '{"predictions": []}',
) -> str:
    """One capture record laid out as SageMaker writes it (for examples, tests and the benchmark)."""
    request = {"observedContentType": content_type, "mode": "INPUT", "data": data, "encoding": encoding}
    response = {"observedContentType": "application/json", "mode": "OUTPUT", "data": response_body, "encoding": "JSON"}
    record = {
        "captureData": {"endpointInput": request, "endpointOutput": response},
        "eventMetadata": {"eventId": event_id, "inferenceTime": inference_time},
        "eventVersion": "0",
    }
    return json.dumps(record, separators=(",", ":"))


try:
    import numpy as _np
except ImportError:  # pragma: no cover - the Lambda ships numpy; this keeps the module usable without it
    _np = None


def count_newlines(block: bytes) -> int:
    """Newlines in ``block``: numpy's vectorised compare is ~3.7x bytes.count's byte loop (5% of the drift job)."""
    if _np is None:
        return block.count(b"\n")
    return int(_np.count_nonzero(_np.frombuffer(block, dtype=_np.uint8) == 10))


CHUNK_BYTES = 2 << 20
"""About how much capture :func:`byte_chunks` gives the drift job to score at a time (~5,000 records of the
benchmark's 428 bytes): memory is bounded by it whatever the volume and however long the records are."""


def byte_chunks(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The complete lines of a byte stream in chunks of about ``chunk_bytes`` (at least one line each), each chunk
    its lines joined by newlines (no trailing one): ``chunk.count(b"\\n") + 1`` lines. No Python object per line."""
    parts: list[bytes] = []
    size = 0
    for block in iter(lambda: stream.read(READ_SIZE), b""):
        parts.append(block)
        size += len(block)
        end = block.rfind(b"\n") if size >= chunk_bytes else -1
        if end >= 0:  # the chunk ends at this block's last newline
            parts[-1] = block[:end]
            chunk = b"".join(parts)
            parts = [block[end + 1 :]]  # the blocks are not held while the chunk is scored
            size = len(parts[0])
            yield chunk
            del chunk
    rest = b"".join(parts)
    if rest.endswith(b"\n"):
        yield rest[:-1]
    elif rest:
        yield rest


# A run of compact lines is read in one pass: the data of each (its first quote ends it, no backslash in it) by one
# regular expression over the run. It matches only right after a newline (the run is read with one put before
# it), so at most once per line: as many matches as lines means every line starts so; the suffix is counted.
_COMPACT = re.compile("\n" + re.escape(_CSV_PREFIX) + r'([^"\\\n]*)' + re.escape(_CSV_AFTER_DATA))


def compact_data(text: str, lines: int) -> list[str] | None:
    """The CSV data of the ``lines`` lines of ``text`` (joined by newlines, exactly ``lines - 1`` of them) when every
    one is a compact CSV record (exactly what :func:`read_records` slices out of each), else None: then read them
    one by one."""
    if not (text.endswith(_SUFFIX) and text.count(_SUFFIX + "\n") == lines - 1):  # at each line's end
        return None
    data = _COMPACT.findall("\n" + text)
    return data if len(data) == lines else None


MAX_CELLS_BYTES = 1 << 12
"""The longest CSV data :func:`compact_cells` reads; a chunk holding a longer one is read by :func:`compact_data`."""


if _np is not None:
    from numpy.lib.stride_tricks import as_strided as _as_strided

    _PREFIX_CODES, _AFTER_CODES, _SUFFIX_CODES = (_np.frombuffer(t.encode(), dtype=_np.uint8) for t in (_CSV_PREFIX, _CSV_AFTER_DATA, _SUFFIX))


def compact_cells(chunk: bytes, scratch: Any = None) -> tuple[Any, Any, Any, Any] | None:
    """The CSV data of every line of a :func:`byte_chunks` chunk, found by numpy over its bytes when every line is
    a compact CSV record (exactly the data :func:`compact_data` gives of the chunk decoded, as bytes), else None.

    Returns ``(padded, starts, rows, lengths)``: the chunk's bytes with zeros after them, the offset in them of each
    line's data, a matrix whose row ``i`` begins with line ``i``'s data (``rows[i, :lengths[i]]``), and the data's
    lengths. No Python object per line: the drift job's read of a chunk (with its cells: ~2.4x the expression's speed).
    Each line is checked
    as :func:`compact_data`'s expression does: the prefix at its start, no quote, backslash or newline in the
    data, the encoding after it, the suffix at its end."""
    if _np is None:
        return None
    buf = _np.frombuffer(chunk, dtype=_np.uint8)
    newlines = _np.flatnonzero(buf == 10)
    n = newlines.size + 1
    line_starts = _np.empty(n, dtype=_np.int64)
    line_starts[0], line_starts[1:] = 0, newlines + 1
    line_ends = _np.empty(n, dtype=_np.int64)
    line_ends[:-1], line_ends[-1] = newlines, buf.size
    if int((line_ends - line_starts).min()) < _PREFIX_CODES.size + _AFTER_CODES.size + _SUFFIX_CODES.size:
        return None  # (the prefix, the encoding and the suffix cannot overlap)
    width = MAX_CELLS_BYTES + _PREFIX_CODES.size + _AFTER_CODES.size
    need = buf.size + width
    # ``scratch``, the padded array of the previous chunk, is reused when large enough: a new one per chunk would be
    # fresh pages from the kernel each time (page faults were ~15% of the job's CPU)
    padded = scratch if scratch is not None and scratch.size >= need else _np.empty(need + (need >> 2), dtype=_np.uint8)
    padded[: buf.size] = buf
    padded[buf.size : need] = 0
    windows = _as_strided(padded, shape=(buf.size + 1, width), strides=(1, 1), writeable=False)  # windows[i] = padded[i:i + width]
    if not (windows[line_starts, : _PREFIX_CODES.size] == _PREFIX_CODES).all():
        return None
    if not (windows[line_ends - _SUFFIX_CODES.size, : _SUFFIX_CODES.size] == _SUFFIX_CODES).all():
        return None
    starts = line_starts + _PREFIX_CODES.size
    span = 128
    while True:  # wide enough for every line's data and its closing quote
        rows = windows[starts, :span]
        stop = (rows == 34) | (rows == 92) | (rows == 10)  # a quote ends the data; a backslash or a newline fails it
        lengths = stop.argmax(axis=1)
        first = rows[_np.arange(n), lengths]
        if stop[_np.arange(n), lengths].all():  # (argmax gives 0 for a row without any)
            break
        span *= 4
        if span > MAX_CELLS_BYTES or n * span > 4 * buf.size:
            return None
    if not (first == 34).all():
        return None
    if not (windows[starts + lengths, : _AFTER_CODES.size] == _AFTER_CODES).all():
        return None
    return padded, starts, rows, lengths


def read_records(lines: list[str], features: list[str], batch: Batch | None = None) -> Batch:
    """Add the request rows of capture ``lines`` to ``batch`` (a new one by default) and return it."""
    batch = batch if batch is not None else Batch()
    csv_rows = batch.csv_rows
    start = len(_CSV_PREFIX)
    for line in lines:
        if line.startswith(_CSV_PREFIX) and line.endswith(_SUFFIX):
            end = line.find('"', start)
            if line.startswith(_CSV_AFTER_DATA, end) and line.find("\\", start, end) < 0:
                csv_rows.append(line[start:end])
                continue
        if line and not line.isspace():
            _read_record(line, features, batch)
    return batch


def _read_record(line: str, features: list[str], batch: Batch) -> None:
    try:
        record = json.loads(line)
        request = record["captureData"]["endpointInput"]
        data, encoding = request["data"], str(request.get("encoding", "")).upper()
        content_type = str(request.get("observedContentType", ""))
        if not isinstance(data, str):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        batch.malformed["bad_json"] += 1
        return
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            batch.malformed["bad_base64"] += 1
            return
    media = content_type.split(";")[0].strip().lower()
    is_json = encoding == "JSON" or media.endswith("json")
    if not (is_json or encoding == "CSV" or media == "text/csv"):
        batch.malformed["bad_payload"] += 1
        return
    (_json_payload if is_json else _csv_payload)(data, features, batch)


def _csv_payload(text: str, features: list[str], batch: Batch) -> None:
    quoted = '"' in text
    if quoted:
        try:
            rows: list[Any] = [[c.strip() for c in row] for row in csv.reader(io.StringIO(text)) if any(c.strip() for c in row)]
        except csv.Error:
            batch.malformed["bad_payload"] += 1
            return
        first = rows[0] if rows else []
    else:
        rows = [line for line in text.splitlines() if line.strip()]
        first = [c.strip() for c in rows[0].split(",")] if rows else []
    if not rows:
        batch.malformed["bad_payload"] += 1
        return
    if len(first) == len(features) and set(first) == set(features):
        # A header row (then the columns in any order), as the serving handler accepts.
        for row in rows[1:]:
            values = row if quoted else row.split(",")
            batch.record_rows.append(dict(zip(first, values)) if len(values) == len(first) else {})
    elif quoted:
        batch.value_rows.extend(rows)
    else:
        batch.csv_rows.extend(rows)


def _json_payload(text: str, features: list[str], batch: Batch) -> None:
    try:
        document = json.loads(text)
    except ValueError:
        batch.malformed["bad_payload"] += 1
        return
    items = (document["instances"] if "instances" in document else [document]) if isinstance(document, dict) else document
    if not isinstance(items, list) or not items:
        batch.malformed["bad_payload"] += 1
        return
    for item in items:
        values = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if values is None or any(isinstance(v, (dict, list)) for v in values):
            batch.malformed["bad_payload"] += 1  # the serving handler refuses these too
        elif isinstance(item, list):
            batch.value_rows.append(item)
        else:
            batch.record_rows.append(item)


_PROBABILITY_KEY = '\\"probability\\":'  # what _PROBABILITY needs, as the answer holds it (a JSON string inside the record)


def may_hold_probabilities(text: str | bytes) -> bool:
    """False when :func:`read_probabilities` cannot find an answer in ``text`` (capture lines, as text or UTF-8): it
    holds neither the escaped probability key nor ``BASE64``. Searching for the key with its escapes, not the bare
    word, is ~2.5x faster (a longer needle skips further); most chunks without a BASE64 record have no "B" at all,
    which a one-character search (memchr) shows fastest."""
    if isinstance(text, bytes):
        return _PROBABILITY_KEY.encode() in text or (b"B" in text and b"BASE64" in text)
    return _PROBABILITY_KEY in text or ("B" in text and "BASE64" in text)


def read_probabilities(lines: list[str], text: str | None = None) -> list[float]:
    """The predicted probabilities in the ``endpointOutput`` of capture ``lines`` (prediction drift).

    Only what follows a record's ``endpointOutput`` key counts: a request that names ``probability`` (a
    feature, or garbage the endpoint refused) is never taken for an answer. A record without an output, or
    whose output is not the recipe's response, adds nothing: the input side counts malformed records, and a
    model with other outputs simply has no prediction drift.
    """
    out: list[float] = []
    if not may_hold_probabilities("\n".join(lines) if text is None else text):  # the lines joined, when the caller has them so
        return out
    for line in lines:
        at = line.find(_OUTPUT_KEY)
        if at < 0:
            continue
        found = _PROBABILITY.findall(line, at)
        if found:
            out.extend(map(float, found))
        elif "BASE64" in line[at:]:
            out.extend(_probabilities_of_record(line))
    return out


def _probabilities_of_record(line: str) -> list[float]:
    try:
        output = json.loads(line)["captureData"]["endpointOutput"]
        data = output["data"]
        if str(output.get("encoding", "")).upper() == "BASE64":
            data = base64.b64decode(data, validate=True).decode("utf-8")
        predictions = json.loads(data)["predictions"]
        return [float(p["probability"]) for p in predictions if isinstance(p, dict) and isinstance(p.get("probability"), (int, float))]
    except (ValueError, KeyError, TypeError, binascii.Error):
        return []
