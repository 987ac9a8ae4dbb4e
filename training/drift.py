"""Drift of an endpoint's live traffic against the training baseline: one job, three places to run it.

- the scheduled Lambda (``handler``), for ordinary volumes;
- a SageMaker processing job (``python -m training.drift``) on one or more instances, for volumes a Lambda
  cannot score in its timeout; the same Lambda plans the run and starts it (:func:`run_shard`);
- locally, ``mlops drift --baseline baseline.json --current capture/`` (:func:`score_paths`).

Per feature it reports the population stability index (PSI) and the Jensen-Shannon distance (base 2,
0..1) between the baseline distribution (``baseline.json`` written by ``training.train``, format
``mlops-baseline/1``) and the captured requests. Both use the same bins: the baseline's decile bins
for numeric features, the baseline's categories plus one bin for unseen categories for categorical
ones, and in both cases one bin for missing values. PSI is ``sum((a - e) * ln(a / e))`` over the bins'
shares, with empty bins counted as ``1e-4`` (otherwise one empty bin makes it infinite); a feature
drifts when its PSI is above the threshold. Jensen-Shannon needs no such floor and is reported beside.

Capture files are streamed: read in blocks, parsed and binned a chunk at a time, so memory does not
grow with the volume. Malformed records are counted (and published as a metric), never fatal.

Each capture object is scored once: a run scores the objects no stored hour partial covers (exact bin
counts per feature and capture hour, :func:`partial_document`), stores the partials next to the reports,
and reports the window as the sum of its hours' partials, which equals one pass over the window.

Imports numpy, boto3 and the standard library only (the Lambda ships exactly those). A chunk of SageMaker's compact
CSV records is read from its bytes by numpy (:func:`~training.capture.compact_cells`: no Python string per line).
Where pyarrow is importable (the processing engine's scikit-learn image has it; the Lambda package does not), the
CSV cells of any other chunk are read by ``pyarrow.csv`` instead of the numpy tokenizer (:func:`arrow_reader`):
the same counts, bit for bit, or the chunk falls back to the numpy tokenizer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
import tarfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from training.code_check import CODE_SHA_ENV, sha_of_code_uri, verify_code
from training.capture import (
    MALFORMED_REASONS, Batch, byte_chunks, compact_cells, compact_data, count_newlines, may_hold_probabilities, read_probabilities, read_records,
)
from training.monitoring_contract import DRIFT_REPORTS_PREFIX as REPORTS_PREFIX  # noqa: F401  (the components share these)
from training.monitoring_contract import (  # noqa: F401
    METRIC_JS, METRIC_MALFORMED, METRIC_MAX, METRIC_PREDICTION, METRIC_PSI, METRIC_RECORDS, DriftError, EnvSettings, JobSettings,
)

LOG = logging.getLogger("mlops.drift")

# training.baseline writes these; it imports pandas, which the Lambda does not ship, so they are
# restated here (tests/training/test_drift.py checks they agree).
BASELINE_FORMAT = "mlops-baseline/1"
BASELINE_FILE = "baseline.json"
# training.validate's bool tokens (same reason).
BOOL_TOKENS = {"true": "true", "false": "false", "1": "true", "0": "false", "1.0": "true", "0.0": "false"}

REPORT_FORMAT = "mlops-drift-report/1"
PSI_FLOOR = 1e-4
MAX_UNSEEN_TRACKED = 1000
"""Distinct unseen categories named in the report per feature; more are counted together (bounded memory)."""

EXIT_NO_DRIFT, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2
EVENT_BASELINE_FLAG = "MLOPS_DRIFT_EVENT_BASELINE"


# ---------------------------------------------------------------------------------------------------------------
# Statistics


def psi(actual: np.ndarray, expected: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index of two distributions over the same bins (shares summing to 1)."""
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def js_distance(actual: np.ndarray, expected: np.ndarray) -> float:
    """Jensen-Shannon distance, base 2 (0 identical .. 1 disjoint); empty bins need no floor."""
    p = np.asarray(actual, dtype=np.float64)
    q = np.asarray(expected, dtype=np.float64)
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return math.sqrt(max(0.0, (kl(p) + kl(q)) / 2))


# ---------------------------------------------------------------------------------------------------------------
# Baseline


@dataclass(frozen=True)
class FeatureBaseline:
    name: str
    kind: str  # "numeric" | "categorical"
    expected: np.ndarray
    """Baseline shares of every bin: numeric ``len(edges) + 1`` bins then missing; categorical each category,
    unseen, then missing."""
    edges: np.ndarray = field(default_factory=lambda: np.empty(0))
    categories: tuple[str, ...] = ()
    boolean: bool = False

    @property
    def labels(self) -> list[str]:
        if self.kind == "numeric":
            e = [f"{x:g}" for x in self.edges]
            inner = [f"[{lo}, {hi})" for lo, hi in zip(e, e[1:])]
            bins = ([f"< {e[0]}"] + inner + [f">= {e[-1]}"]) if e else ["all"]
        else:
            bins = [*self.categories, "(unseen)"]
        return [*bins, "(missing)"]


@dataclass(frozen=True)
class Baseline:
    features: tuple[FeatureBaseline, ...]
    source: str
    prediction: FeatureBaseline | None = None
    """The predicted probabilities' bins, when training recorded them (no missing bin: every answer has one)."""

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]


def load_baseline(doc: Any, source: str) -> Baseline:
    """Check a ``baseline.json`` document and turn it into bins; raises DriftError naming the problem."""
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise DriftError(f"{source}: not a baseline ({BASELINE_FORMAT!r} expected in 'format', found {found!r}); give the baseline.json that training wrote")
    features = doc.get("features")
    if not isinstance(features, dict) or not features:
        raise DriftError(f"{source}: 'features' must be a non-empty object of feature statistics")
    out = []
    for name, spec in features.items():
        try:
            out.append(_feature_baseline(name, spec))
        except (KeyError, TypeError, ValueError) as e:
            raise DriftError(f"{source}: feature {name!r} is not valid baseline statistics ({e!r}); regenerate it with training") from None
    prediction = None
    if isinstance(doc.get("prediction"), dict) and doc["prediction"].get("count"):
        try:
            prediction = _feature_baseline("prediction", {**doc["prediction"], "kind": "numeric", "null_count": 0})
        except (KeyError, TypeError, ValueError) as e:
            raise DriftError(f"{source}: 'prediction' is not valid baseline statistics ({e!r}); regenerate it with training") from None
    return Baseline(tuple(out), source, prediction)


def _feature_baseline(name: str, spec: dict[str, Any]) -> FeatureBaseline:
    present, nulls = int(spec["count"]), int(spec["null_count"])
    missing = nulls / (present + nulls) if present + nulls else 0.0
    if spec["kind"] == "numeric":
        edges = np.asarray(spec["bins"]["edges"], dtype=np.float64)
        shares = np.asarray(spec["bins"]["proportions"], dtype=np.float64)
        if shares.size != edges.size + 1 or np.any(np.diff(edges) <= 0):
            raise ValueError("bins need strictly increasing edges and one proportion more than edges")
        return FeatureBaseline(name, "numeric", np.append(shares * (1 - missing), missing), edges=edges)
    if spec["kind"] == "categorical":
        freq = {str(k): float(v) for k, v in spec["frequencies"].items()}
        shares = np.array([*freq.values(), 0.0]) * (1 - missing)
        boolean = bool(freq) and set(freq) <= {"true", "false"}  # bool features are stored as "true"/"false"
        return FeatureBaseline(name, "categorical", np.append(shares, missing), categories=tuple(freq), boolean=boolean)
    raise ValueError(f"unknown kind {spec['kind']!r}")


# ---------------------------------------------------------------------------------------------------------------
# Scoring


class _FeatureCounts:
    """Bin counts of one feature over everything scored so far (bounded: bins plus a capped unseen tally)."""

    def __init__(self, base: FeatureBaseline):
        self.base = base
        self.counts = np.zeros(base.expected.size, dtype=np.int64)
        self.index = {c: i for i, c in enumerate(base.categories)}
        self.unseen: Counter = Counter()

    def add_numeric(self, values: np.ndarray) -> None:
        missing = np.isnan(values)
        n_missing = int(missing.sum())
        present = values[~missing] if n_missing else values
        self.counts[:-1] += np.bincount(np.searchsorted(self.base.edges, present, side="right"), minlength=self.counts.size - 1)
        self.counts[-1] += n_missing

    def add_categories(self, tally: Mapping[str | None, int]) -> None:
        unseen = self.counts.size - 2
        for value, n in tally.items():
            if value is None:
                self.counts[-1] += n
                continue
            i = self.index.get(value)
            if i is None:
                self.counts[unseen] += n
                if value in self.unseen or len(self.unseen) < MAX_UNSEEN_TRACKED:
                    self.unseen[value] += n
            else:
                self.counts[i] += n

    def result(self, threshold: float) -> dict[str, Any]:
        n = int(self.counts.sum())
        actual = self.counts / n if n else np.zeros_like(self.base.expected)
        score = round(psi(actual, self.base.expected), 6) if n else None
        out: dict[str, Any] = {
            "kind": self.base.kind,
            "psi": score,
            "js_distance": round(js_distance(actual, self.base.expected), 6) if n else None,
            "drifted": score is not None and score > threshold,
            "missing_share": {"baseline": round(float(self.base.expected[-1]), 6), "current": round(float(actual[-1]), 6)},
            "bins": [
                {"bin": label, "baseline": round(float(e), 6), "current": round(float(a), 6)}
                for label, e, a in zip(self.base.labels, self.base.expected, actual)
            ],
        }
        if self.unseen:
            out["unseen"] = dict(self.unseen.most_common(20))
        return out


_BYTE_KIND = np.zeros(256, dtype=np.int8)  # 0 other, 1 digit, 2 ".", 3 "-"
_BYTE_KIND[48:58], _BYTE_KIND[46], _BYTE_KIND[45] = 1, 2, 3
_POW10 = 10.0 ** np.arange(16)
_MAX_DIGITS = 15  # mantissas below 10**15 < 2**53 are exact in float64
_MAX_KEY_BYTES = 64  # longer category tokens are read one by one


class CsvTokens:
    """The comma-separated tokens of ``rows`` CSV rows of ``width`` cells, joined by commas into ``raw``
    (UTF-8), as byte offsets: the numbers and categories are read a byte position at a time over all
    rows at once, instead of a Python string (and a float() call) per cell."""

    def __init__(self, raw: bytes, rows: int, width: int, seps: np.ndarray | None = None):
        buf = np.frombuffer(raw, dtype=np.uint8)
        seps = np.flatnonzero(buf == 44) if seps is None else seps
        starts = np.zeros(rows * width, dtype=np.int64)
        starts[1:] = seps + 1
        ends = np.empty(rows * width, dtype=np.int64)
        ends[:-1], ends[-1] = seps, buf.size
        self.rows, self.width = rows, width
        self.padded = np.concatenate([buf, np.zeros(_MAX_KEY_BYTES, dtype=np.uint8)])  # gathers may run past the end
        self.starts, self.lengths = starts.reshape(rows, width), (ends - starts).reshape(rows, width)

    @classmethod
    def of_offsets(cls, padded: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> CsvTokens:
        """Tokens at ``starts`` (rows x width offsets into ``padded``, which holds at least :data:`_MAX_KEY_BYTES`
        bytes after the last token) of ``lengths`` bytes."""
        tokens = cls.__new__(cls)
        tokens.padded, tokens.starts, tokens.lengths = padded, starts, lengths
        tokens.rows, tokens.width = starts.shape
        return tokens

    @classmethod
    def of_rows(cls, rows: list[str], width: int) -> CsvTokens | None:
        """The tokens of CSV rows when every row has ``width`` cells (its commas are found once, by numpy, with
        the rows' ends), else None."""
        raw = "\n".join(rows).encode("utf-8")
        buf = np.frombuffer(raw, dtype=np.uint8)
        seps = np.flatnonzero((buf == 44) | (buf == 10))
        if seps.size != len(rows) * width - 1:
            return None
        ends = np.append(buf[seps] == 10, True).reshape(len(rows), width)  # each row's last cell, and only it, ends a row
        if not ends[:, -1].all() or ends[:, :-1].any():
            return None
        return cls(raw, len(rows), width, seps)

    @classmethod
    def of_cells(cls, padded: np.ndarray, starts: np.ndarray, rows: np.ndarray, lengths: np.ndarray, width: int) -> tuple[CsvTokens | None, int]:
        """The tokens of :func:`~training.capture.compact_cells`' rows that have ``width`` cells, and how many rows
        have another width (their commas are counted as ``str.count`` does; :meth:`of_rows` refuses them)."""
        span = rows.shape[1]  # at most capture.MAX_CELLS_BYTES: int16 compares (a quarter of int64's bytes)
        commas = (rows == 44) & (np.arange(span, dtype=np.int16) < lengths.astype(np.int16)[:, None])
        at = np.flatnonzero(commas)
        row_offsets = np.arange(starts.size) * span
        column = at.reshape(starts.size, width - 1) - row_offsets[:, None] if at.size == starts.size * (width - 1) else None
        # as many commas as width - 1 per row, each in its own row: then every row holds exactly width - 1
        wrong = 0
        if column is None or (column.size and (column.min() < 0 or column.max() >= span)):
            good = np.bincount(at // span, minlength=starts.size) == width - 1
            wrong = good.size - int(np.count_nonzero(good))
            commas, starts, lengths = commas[good], starts[good], lengths[good]
            if not starts.size:
                return None, wrong
            column = np.flatnonzero(commas).reshape(starts.size, width - 1) - (np.arange(starts.size) * span)[:, None]
        at = column + starts[:, None]  # each row's commas, in order, as offsets into padded
        first = np.empty((starts.size, width), dtype=np.int64)
        first[:, 0], first[:, 1:] = starts, at + 1
        ends = np.empty((starts.size, width), dtype=np.int64)
        ends[:, :-1], ends[:, -1] = at, starts + lengths
        return cls.of_offsets(padded, first, ends - first), wrong

    def text(self, row: int, column: int) -> str:
        start = int(self.starts[row, column])
        return self.padded[start : start + int(self.lengths[row, column])].tobytes().decode("utf-8", errors="replace")


def decimal_tokens(tokens: CsvTokens, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The values of plain decimal tokens (``-12.5``, ``3``, ``.25``, empty = missing) in ``columns``.

    Returns ``(values, slow)``, both ``rows x len(columns)``; ``slow`` marks the tokens this does not
    read (exponents, ``nan``, spaces, text, more than 15 digits), left for ``float()``. The others equal
    ``float(token)`` exactly: their digits make an integer mantissa below 2**53, and one division by an
    exact power of ten rounds correctly.
    """
    first = tokens.starts[:, columns].ravel()
    length = tokens.lengths[:, columns].ravel()
    span = int(min(length.max(initial=0), _MAX_DIGITS + 2))
    slow = length > span
    mantissa = np.zeros(first.size, dtype=np.int64)
    digits = np.zeros(first.size, dtype=np.int8)
    decimals = np.zeros(first.size, dtype=np.int8)
    after_dot = np.zeros(first.size, dtype=bool)
    negative = np.zeros(first.size, dtype=bool)
    for k in range(span):
        byte = tokens.padded[first + k]
        kind = _BYTE_KIND.take(byte)
        inside = length > k
        digit = (kind == 1) & inside
        dot = (kind == 2) & inside
        if k == 0:
            negative = (kind == 3) & inside
            slow |= (kind == 0) & inside
        else:
            slow |= ((kind == 0) | (kind == 3)) & inside
        slow |= dot & after_dot
        after_dot |= dot
        mantissa = np.where(digit, mantissa * 10 + byte.astype(np.int64) - 48, mantissa)
        digits += digit
        decimals += digit & after_dot
    slow |= ((digits == 0) & (length > 0)) | (digits > _MAX_DIGITS)
    values = mantissa / _POW10[np.minimum(decimals, _MAX_DIGITS)]
    np.negative(values, out=values, where=negative)
    values[length == 0] = np.nan
    return values.reshape(tokens.rows, columns.size), slow.reshape(tokens.rows, columns.size)


def category_tokens(tokens: CsvTokens, column: int) -> tuple[list[str], np.ndarray]:
    """The distinct tokens of a column and, per row, the index of its token among them.

    Tokens are keyed by their bytes and length packed into integers (exact, no hashing), so the
    distinct values are found by numpy, and only those become Python strings.
    """
    first, length = tokens.starts[:, column], tokens.lengths[:, column]
    span = int(length.max(initial=0))
    if span > _MAX_KEY_BYTES:
        return _codes([tokens.text(r, column) for r in range(tokens.rows)])
    words = span // 8 + 1  # the last word's top byte holds the length
    key = np.zeros((tokens.rows, words), dtype=np.uint64)
    key[:, -1] = length.astype(np.uint64) << np.uint64(56)
    for k in range(span):
        byte = tokens.padded[first + k].astype(np.uint64)
        byte[length <= k] = 0
        key[:, k // 8] |= byte << np.uint64(8 * (k % 8))
    flat = key[:, 0] if words == 1 else key.view(np.dtype((np.void, 8 * words))).ravel()
    _, index, inverse = np.unique(flat, return_index=True, return_inverse=True)
    raw = tokens.padded
    values = [raw[int(s) : int(s) + int(n)].tobytes().decode("utf-8", errors="replace") for s, n in zip(first[index], length[index])]
    return values, inverse.ravel()


def _codes(values: list[Any]) -> tuple[list[Any], np.ndarray]:
    """``category_tokens`` for values already in Python (JSON payloads)."""
    index: dict[Any, int] = {}
    inverse = np.fromiter((index.setdefault(v if v is None or isinstance(v, (str, int, float, bool)) else str(v), len(index)) for v in values), dtype=np.int64, count=len(values))
    return list(index), inverse


def _float(value: Any) -> float | None:
    """A value as the serving handler reads it: None/blank -> NaN; None when it is not a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return math.nan
    if isinstance(value, (dict, list)):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _floats(values: list[Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """Values as float64 (missing -> NaN) and a mask of the non-numeric ones (None when there are none)."""
    try:
        return np.array(values, dtype=np.float64), None
    except (ValueError, TypeError):
        pass
    parsed = [_float(v) for v in values]
    bad = np.array([v is None for v in parsed])
    return np.array([math.nan if v is None else v for v in parsed], dtype=np.float64), bad


def _category(value: Any) -> str | None:
    if value is None:
        return None
    text = value.strip() if isinstance(value, str) else str(value)
    return text or None


def _bool(value: Any) -> str | None:
    """``"true"``/``"false"``, None for missing, ``""`` for a token the serving handler refuses."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return BOOL_TOKENS.get(str(value).strip().lower(), "")


READERS = ("auto", "numpy", "arrow")
"""How a scorer reads the CSV cells of a chunk: ``arrow`` (``pyarrow.csv``), ``numpy`` (:class:`CsvTokens`), or
``auto``: arrow where pyarrow is importable, else numpy. A stream's chunks of compact CSV records
(:meth:`DriftScorer.feed_bytes`) are read from their bytes by the numpy reader under ``numpy`` and ``auto``
(faster than pyarrow's reader of their joined data, whose slicing costs more than the reading); ``arrow`` reads
every chunk with pyarrow."""


@cache
def arrow_reader() -> Any | None:
    """``(pyarrow, pyarrow.csv, pyarrow.compute)`` when this interpreter has pyarrow, else None (the Lambda package ships numpy only)."""
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.csv
    except ImportError:
        return None
    return pyarrow, pyarrow.csv, pyarrow.compute


# pyarrow reads "nan(...)" as NaN (float() refuses it), ends rows at "\r" (float() strips it), skips a byte-order
# mark that starts its input (float() refuses "\ufeff1") and reads an empty line as a row of nulls (the numpy
# tokenizer: a row of the wrong width): chunks holding any of them are read by the numpy tokenizer. Everything else
# pyarrow takes, it reads as float() does; what it refuses fails the chunk, which the numpy tokenizer then reads and
# counts (tests/training/test_drift_readers.py).
_ARROW_UNSAFE = ("(", "\r")


class _ArrowCsv:
    """A chunk's CSV rows read by ``pyarrow.csv`` (numeric columns as float64, the others as strings), one block,
    one thread; ``read`` returns None for a chunk pyarrow cannot read exactly as the numpy tokenizer does."""

    def __init__(self, baseline: Baseline):
        self.pa, csv, self.compute = arrow_reader()
        self.csv = csv
        names = [f"c{j}" for j in range(len(baseline.features))]
        types = {n: self.pa.float64() if f.kind == "numeric" else self.pa.string() for n, f in zip(names, baseline.features)}
        self.names = names
        # malloc's pool, not pyarrow's default (mimalloc), which keeps what a chunk freed: memory stays flat
        self.pool = self.pa.system_memory_pool()
        self.parse = csv.ParseOptions(quote_char=False, escape_char=False, double_quote=False, newlines_in_values=False, ignore_empty_lines=False)
        self.convert = csv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)

    def read(self, rows: list[str]) -> Any | None:
        text = "\n".join(rows)
        if any(c in text for c in _ARROW_UNSAFE) or text.startswith("\ufeff") or not rows[0] or not rows[-1] or "\n\n" in text:
            return None
        raw = text.encode("utf-8")
        del text
        options = self.csv.ReadOptions(column_names=self.names, use_threads=False, block_size=max(len(raw) + 1, 1 << 16))
        try:
            table = self.csv.read_csv(
                self.pa.BufferReader(raw), read_options=options, parse_options=self.parse, convert_options=self.convert, memory_pool=self.pool,
            )
        except self.pa.ArrowInvalid:  # a row of another width, a cell that is not a number: the numpy tokenizer counts them
            return None
        return table if table.num_rows == len(rows) else None


class DriftScorer:
    """Feed capture lines in chunks; :meth:`report` scores everything fed so far.

    ``reader`` (one of :data:`READERS`) chooses how CSV cells are read; every reader gives the same counts.
    """

    def __init__(self, baseline: Baseline, threshold: float = 0.2, min_records: int = 1, reader: str = "auto"):
        if reader not in READERS:
            raise DriftError(f"reader {reader!r} is not one of {', '.join(READERS)}")
        if reader == "arrow" and arrow_reader() is None:
            raise DriftError("reader 'arrow' needs pyarrow, which this interpreter cannot import; use 'numpy' or 'auto'")
        self.arrow = _ArrowCsv(baseline) if reader != "numpy" and arrow_reader() is not None else None
        self.reader = reader
        self.baseline = baseline
        self.threshold = threshold
        self.min_records = min_records
        self.features = baseline.names
        self.counts = [_FeatureCounts(f) for f in baseline.features]
        self.numeric = np.array([j for j, f in enumerate(baseline.features) if f.kind == "numeric"], dtype=np.int64)
        self.scored = 0
        self.malformed: Counter = Counter()
        self.prediction = _FeatureCounts(baseline.prediction) if baseline.prediction is not None else None
        self._scratch: np.ndarray | None = None  # compact_cells' padded chunk, reused

    def feed(self, lines: list[str]) -> None:
        """Score a chunk of capture lines (JSON Lines records): their requests and, with a prediction baseline, their answers."""
        if lines:
            text = "\n".join(lines)
            # compact_data counts lines by newlines: a "line" holding one is read line by line instead
            self._feed(text, lines, compact_data(text, len(lines)) if text.count("\n") == len(lines) - 1 else None)

    def feed_text(self, text: str, lines: int) -> None:
        """Score ``lines`` capture lines joined by newlines (a :func:`~training.capture.byte_chunks` chunk, decoded)."""
        data = compact_data(text, lines)
        self._feed(text, None if data is not None else text.split("\n"), data)

    def feed_stream(self, stream: BinaryIO) -> None:
        """Score a capture file (a local file, an S3 body), a chunk at a time."""
        for chunk in byte_chunks(stream):
            self.feed_bytes(chunk)

    def feed_bytes(self, chunk: bytes) -> None:
        """Score capture lines joined by newlines, as bytes (a :func:`~training.capture.byte_chunks` chunk). A chunk of
        compact CSV records is read straight from its bytes (:func:`~training.capture.compact_cells`) unless the reader
        is ``arrow``; any other chunk is decoded and read as :meth:`feed_text` reads it."""
        cells = compact_cells(chunk, self._scratch) if self.reader != "arrow" else None
        if cells is None:
            self.feed_text(chunk.decode("utf-8", errors="replace"), count_newlines(chunk) + 1)
            return
        self._scratch = cells[0]
        tokens, wrong = CsvTokens.of_cells(*cells, len(self.features))
        self.malformed["wrong_column_count"] += wrong
        if tokens is not None:
            self._add_tokens(tokens)
        if self.prediction is not None and may_hold_probabilities(chunk):
            self._add_probabilities(chunk.decode("utf-8", errors="replace"), None)

    def _feed(self, text: str, lines: list[str] | None, data: list[str] | None) -> None:
        """``data``: the chunk's CSV rows when every line is a compact record, else None and ``lines`` are read one by one."""
        self.feed_batch(Batch(csv_rows=data) if data is not None else read_records(lines, self.features))
        if self.prediction is not None and may_hold_probabilities(text):
            self._add_probabilities(text, lines)

    def _add_probabilities(self, text: str, lines: list[str] | None) -> None:
        values = np.asarray(read_probabilities(text.split("\n") if lines is None else lines, text), dtype=np.float64)
        self.prediction.add_numeric(values[np.isfinite(values)])

    def feed_batch(self, batch: Batch) -> None:
        d = len(self.features)
        self.malformed.update(batch.malformed)
        table = self.arrow.read(batch.csv_rows) if batch.csv_rows and self.arrow is not None else None
        if table is not None:
            self._add_table(table)
        elif batch.csv_rows:
            tokens = CsvTokens.of_rows(batch.csv_rows, d)
            if tokens is None:  # some rows of another width: counted, the others scored
                good = [r for r in batch.csv_rows if r.count(",") == d - 1]
                self.malformed["wrong_column_count"] += len(batch.csv_rows) - len(good)
                tokens = CsvTokens(",".join(good).encode("utf-8"), len(good), d) if good else None
            if tokens is not None:
                self._add_tokens(tokens)
        if batch.value_rows:
            rows = [r for r in batch.value_rows if len(r) == d]
            self.malformed["wrong_column_count"] += len(batch.value_rows) - len(rows)
            if rows:
                self._add_values([list(c) for c in zip(*rows)], len(rows))
        if batch.record_rows:
            names = set(self.features)
            records = [r for r in batch.record_rows if r.keys() == names]
            self.malformed["wrong_column_count"] += len(batch.record_rows) - len(records)
            if records:
                self._add_values([[r[f] for r in records] for f in self.features], len(records))

    def _add_tokens(self, tokens: CsvTokens) -> None:
        bad = np.zeros(tokens.rows, dtype=bool)
        numeric: dict[int, np.ndarray] = {}
        if self.numeric.size:
            values, slow = decimal_tokens(tokens, self.numeric)
            for r, i in np.argwhere(slow):
                v = _float(tokens.text(r, self.numeric[i]))
                if v is None:
                    bad[r] = True
                else:
                    values[r, i] = v
            numeric = {int(j): values[:, i] for i, j in enumerate(self.numeric)}
        categorical = {j: category_tokens(tokens, j) for j in range(len(self.features)) if j not in numeric}
        self._add(tokens.rows, numeric, categorical, bad)

    def _add_table(self, table: Any) -> None:
        """Bin a chunk pyarrow read: every numeric cell is a number (or the read failed), so no row is non-numeric."""
        numeric, categorical = {}, {}
        for j, column in enumerate(table.columns):
            if self.counts[j].base.kind == "numeric":
                numeric[j] = column.to_numpy()  # nulls (empty cells) become NaN: missing
            else:
                pool = self.arrow.pool
                encoded = self.arrow.compute.dictionary_encode(column.combine_chunks(memory_pool=pool), memory_pool=pool)
                values = [*encoded.dictionary.to_pylist(), None]
                missing = self.arrow.pa.scalar(len(values) - 1, encoded.indices.type)  # nulls: the missing value's code
                categorical[j] = values, self.arrow.compute.coalesce(encoded.indices, missing, memory_pool=pool).to_numpy()
        self._add(table.num_rows, numeric, categorical, np.zeros(table.num_rows, dtype=bool))

    def _add_values(self, columns: list[list[Any]], n: int) -> None:
        bad = np.zeros(n, dtype=bool)
        numeric = {}
        for j in self.numeric:
            numeric[int(j)], non_numeric = _floats(columns[j])
            if non_numeric is not None:
                bad |= non_numeric
        self._add(n, numeric, {j: _codes(columns[j]) for j in range(len(columns)) if j not in numeric}, bad)

    def _add(self, n: int, numeric: dict[int, np.ndarray], categorical: dict[int, tuple[list[Any], np.ndarray]], bad: np.ndarray) -> None:
        """Bin one chunk's columns; ``categorical`` holds each column's distinct values and row codes."""
        self.malformed["non_numeric"] += int(bad.sum())
        for values in numeric.values():
            # The endpoint refuses a request holding inf or -inf (400, contract check "finite"): such a row was
            # never scored, so it is malformed here too, not a value at the far end of the distribution.
            infinite = np.isinf(values) & ~bad
            if infinite.any():
                self.malformed["non_finite"] += int(infinite.sum())
                bad |= infinite
        for j, (values, codes) in categorical.items():
            if self.counts[j].base.boolean:
                refused = np.array([_bool(v) == "" for v in values], dtype=bool)
                if refused.any():
                    invalid = refused[codes] & ~bad
                    self.malformed["invalid_bool"] += int(invalid.sum())
                    bad |= invalid
        keep = ~bad if bad.any() else None
        for j, counts in enumerate(self.counts):
            if j in numeric:
                counts.add_numeric(numeric[j] if keep is None else numeric[j][keep])
            else:
                values, codes = categorical[j]
                tally = np.bincount(codes if keep is None else codes[keep], minlength=len(values))
                convert = _bool if counts.base.boolean else _category
                merged: Counter = Counter()
                for value, k in zip(values, tally.tolist()):
                    if k:
                        merged[convert(value)] += k
                counts.add_categories(merged)
        self.scored += n - int(bad.sum())

    def report(self, **context: Any) -> dict[str, Any]:
        features = {f.base.name: f.result(self.threshold) for f in self.counts}
        enough = self.scored >= self.min_records
        drifted = [name for name, r in features.items() if r["drifted"]] if enough else []
        scores = [r["psi"] for r in features.values() if r["psi"] is not None]
        return {
            "format": REPORT_FORMAT,
            **context,
            "baseline": self.baseline.source,
            "threshold": self.threshold,
            "min_records": self.min_records,
            "status": ("drift" if drifted else "no_drift") if enough else "insufficient_data",
            "records": {
                "scored": self.scored,
                "malformed": sum(self.malformed.values()),
                "malformed_by_reason": {r: self.malformed[r] for r in MALFORMED_REASONS if self.malformed[r]},
            },
            "max_psi": max(scores) if enough and scores else None,
            "drifted_features": drifted,
            "features": features,
            "prediction": self._prediction_result(enough),
        }

    def state(self) -> dict[str, Any]:
        """What was scored, as exact integers: per feature its bin counts (and named unseen categories), the
        prediction's bin counts, records scored and malformed by reason. Summing states (:meth:`merge`) gives
        the state of scoring all their records in one pass; a report of the sum equals that pass's report."""
        return {
            "scored": self.scored,
            "malformed": {r: self.malformed[r] for r in MALFORMED_REASONS if self.malformed[r]},
            "features": {
                f.base.name: {"counts": f.counts.tolist(), **({"unseen": dict(f.unseen)} if f.unseen else {})} for f in self.counts
            },
            "prediction": None if self.prediction is None else self.prediction.counts.tolist(),
        }

    def merge(self, state: Mapping[str, Any]) -> None:
        """Add a :meth:`state` (checked by :func:`check_state` first) to what this scorer holds."""
        self.scored += state["scored"]
        self.malformed.update(state["malformed"])
        for f in self.counts:
            counts = state["features"][f.base.name]
            f.counts += np.asarray(counts["counts"], dtype=np.int64)
            for value, n in counts.get("unseen", {}).items():
                if value in f.unseen or len(f.unseen) < MAX_UNSEEN_TRACKED:
                    f.unseen[value] += n
        if self.prediction is not None and state["prediction"] is not None:
            self.prediction.counts += np.asarray(state["prediction"], dtype=np.int64)

    def _prediction_result(self, enough: bool) -> dict[str, Any] | None:
        """The answers' drift: scored like a numeric feature, judged with the same threshold, never in ``drifted_features``."""
        if self.prediction is None:
            return None
        result = self.prediction.result(self.threshold)
        result["count"] = int(self.prediction.counts.sum())
        if not enough:
            result["drifted"] = False
        return result


# ---------------------------------------------------------------------------------------------------------------
# Reading baselines and capture: S3 or local files


def baseline_from_archive(stream: BinaryIO, source: str) -> Any | None:
    """The ``baseline.json`` document inside a ``model.tar.gz`` stream, or None when it has none (the
    bootstrap placeholder, or a model trained before baselines). Streams: the archive is never held."""
    try:
        with tarfile.open(fileobj=stream, mode="r|gz") as tar:
            for member in tar:
                if member.isfile() and member.name.lstrip("./") == BASELINE_FILE:
                    return json.load(tar.extractfile(member))  # type: ignore[arg-type]
    except (tarfile.TarError, OSError, EOFError, ValueError) as e:
        raise DriftError(f"{source}: not a readable model archive with {BASELINE_FILE} ({e})") from None
    return None


def read_baseline_file(path: Path) -> Baseline:
    """A local ``baseline.json`` or model archive (``.tar.gz``) holding one."""
    try:
        with path.open("rb") as f:
            if path.name.endswith((".tar.gz", ".tgz")):
                doc = baseline_from_archive(f, str(path))
                if doc is None:
                    raise DriftError(f"{path}: the archive has no {BASELINE_FILE} (an untrained or bootstrap model)")
            else:
                doc = json.load(f)
    except OSError as e:
        raise DriftError(f"cannot read baseline {path}: {e.strerror or e}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise DriftError(f"baseline {path} is not valid JSON: {e}") from None
    return load_baseline(doc, str(path))


def capture_files(path: Path) -> list[Path]:
    """A capture file, or every ``*.jsonl`` under a directory (sorted); raises DriftError when there is none."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DriftError(f"{path}: no such capture file or directory")
    files = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    if not files:
        raise DriftError(f"{path}: no capture files (*.jsonl) in this directory")
    return files


def score_paths(baseline: Path, current: Path, threshold: float = 0.2, min_records: int = 1) -> dict[str, Any]:
    """The drift report of local capture files against a local baseline (what ``mlops drift`` prints)."""
    scorer = DriftScorer(read_baseline_file(baseline), threshold, min_records)
    files = capture_files(current)
    for file in files:
        try:
            with file.open("rb") as f:
                scorer.feed_stream(f)
        except OSError as e:
            raise DriftError(f"cannot read capture file {file}: {e.strerror or e}") from None
    return scorer.report(current=str(current), files=len(files))


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise DriftError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


@dataclass(frozen=True)
class LiveModel:
    """What the endpoint serves now: its model, the model's artifact and the registered package it was made from."""

    name: str
    model_data: str | None
    package: str | None


def live_model(sm, endpoint_name: str) -> LiveModel:
    """The endpoint's live model (endpoint -> config -> model [-> package]). The CT flow creates each model from its
    package (``PrimaryContainer.ModelPackageName``), so the package is the live model version."""
    endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sm.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    container = model.get("PrimaryContainer") or model["Containers"][0]
    package = container.get("ModelPackageName")
    data = container.get("ModelDataUrl")
    if not data and package:
        data = sm.describe_model_package(ModelPackageName=package)["InferenceSpecification"]["Containers"][0].get("ModelDataUrl")
    return LiveModel(model["ModelName"], data or None, package or None)


def live_model_data(sm, endpoint_name: str) -> str:
    """S3 URI of the model artifact the endpoint serves now (endpoint -> config -> model [-> package])."""
    model = live_model(sm, endpoint_name)
    if model.model_data is None:
        raise DriftError(f"endpoint {endpoint_name}: its model {model.name} has no model.tar.gz (ModelDataUrl) to read {BASELINE_FILE} from")
    return model.model_data


def registered_baseline_uri(sm, package: str) -> str | None:
    """The data-quality statistics registered on a model package (``DriftCheckBaselines.ModelDataQuality.Statistics
    .S3Uri``): where the CT flow's ComputeBaseline wrote the baseline of a model whose own code writes none."""
    described = sm.describe_model_package(ModelPackageName=package)
    statistics = ((described.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}).get("Statistics") or {}
    return statistics.get("S3Uri") or None


@dataclass(frozen=True)
class LiveBaseline:
    """The baseline a run scores against, where it was read from, or why there is none."""

    uri: str
    baseline: Baseline | None
    reason: str = ""
    broken: bool = False
    """A baseline is registered but cannot be used (missing or corrupt): logged as a warning, not routine."""


def live_baseline(clients: Clients, endpoint_name: str) -> LiveBaseline:
    """The live model version's baseline: ``baseline.json`` in its archive, else the one registered on its model
    package (DriftCheckBaselines). A registered baseline that is missing or unreadable is no baseline, with the
    reason naming its URI: the run scores nothing rather than failing on every schedule."""
    model = live_model(clients.sagemaker, endpoint_name)
    package = model.package
    if model.model_data is not None:
        baseline = read_baseline_s3(clients.s3, model.model_data)
        if baseline is not None:
            return LiveBaseline(model.model_data, baseline)
        if package is None:
            return LiveBaseline(model.model_data, None, f"{model.model_data} has no {BASELINE_FILE} (the bootstrap placeholder, or no trained model yet)")
        where = f"{model.model_data} has no {BASELINE_FILE}"
    elif package is None:
        raise DriftError(f"endpoint {endpoint_name}: its model {model.name} has no model.tar.gz (ModelDataUrl) nor model package")
    else:
        where = f"model {model.name} has no model.tar.gz"
    uri = registered_baseline_uri(clients.sagemaker, package)
    if uri is None:
        return LiveBaseline(model.model_data or package, None, f"{where} and its model package {package} registers no DriftCheckBaselines")
    try:
        baseline = read_baseline_s3(clients.s3, uri)
    except DriftError as e:
        return LiveBaseline(uri, None, f"the registered baseline of {package} is unusable: {e}", broken=True)
    except clients.s3.exceptions.ClientError as e:
        code = e.response.get("Error", {}).get("Code", "error")
        return LiveBaseline(uri, None, f"the registered baseline {uri} of {package} cannot be read ({code})", broken=True)
    if baseline is None:
        return LiveBaseline(uri, None, f"the registered baseline {uri} of {package} is a model archive without {BASELINE_FILE}", broken=True)
    return LiveBaseline(uri, baseline)


def read_baseline_s3(s3, uri: str) -> Baseline | None:
    """The baseline at ``uri``: a ``baseline.json`` object or a model archive; None when the archive has none."""
    bucket, key = split_s3_uri(uri)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        doc = json.load(body) if key.endswith(".json") else baseline_from_archive(body, uri)
    except ValueError as e:
        raise DriftError(f"{uri} is not valid JSON: {e}") from None
    finally:
        body.close()
    return None if doc is None else load_baseline(doc, uri)


def window_hours(end: datetime, hours: int) -> list[datetime]:
    """The whole capture hours of a window ending at ``end`` (its own, still open, hour excluded)."""
    last = end.replace(minute=0, second=0, microsecond=0)
    return [last - timedelta(hours=h) for h in range(hours, 0, -1)]


def capture_objects(s3, bucket: str, model: str, endpoint: str, hours: list[datetime]) -> Iterator[tuple[datetime, str, str]]:
    """``(hour, key, etag)`` of the window's capture objects: ``<model>/<endpoint>/<variant>/YYYY/MM/DD/HH/*``."""
    paginator = s3.get_paginator("list_objects_v2")
    base = f"{model}/{endpoint}/"
    variants = [p["Prefix"] for page in paginator.paginate(Bucket=bucket, Prefix=base, Delimiter="/") for p in page.get("CommonPrefixes", [])]
    for variant in variants:
        for hour in hours:
            for page in paginator.paginate(Bucket=bucket, Prefix=f"{variant}{hour:%Y/%m/%d/%H}/"):
                for obj in page.get("Contents", []):
                    yield hour, obj["Key"], obj.get("ETag", "")


def capture_keys(s3, bucket: str, model: str, endpoint: str, hours: list[datetime]) -> Iterator[str]:
    """Capture object keys of the window (see :func:`capture_objects`)."""
    return (key for _, key, _ in capture_objects(s3, bucket, model, endpoint, hours))


# ---------------------------------------------------------------------------------------------------------------
# Partial counts: each capture hour scored once


PARTIAL_FORMAT = "mlops-drift-partial/1"
PARTIALS_DIR = "partials"
"""Partials live next to the reports: ``<report prefix>partials/YYYY/MM/DD/HH.json``, one per capture hour; a
processing run's plan, manifest and shards under ``<report prefix>partials/jobs/<job name>/``."""


class PartialError(ValueError):
    """A stored partial that cannot be merged (corrupt, foreign, another baseline's): its hour is rescored."""


def baseline_fingerprint(baseline: Baseline) -> str:
    """A digest of the bins the counts are over: a partial counted against other bins is never merged."""
    def spec(f: FeatureBaseline) -> list[Any]:
        return [f.name, f.kind, f.edges.tolist(), list(f.categories), f.boolean, f.expected.tolist()]

    doc = [[spec(f) for f in baseline.features], spec(baseline.prediction) if baseline.prediction is not None else None]
    return hashlib.sha256(json.dumps(doc, separators=(",", ":")).encode()).hexdigest()


def _digest(doc: Mapping[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def partial_document(hour: datetime, baseline: Baseline, state: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, Any]:
    """The stored partial of one capture hour: its state, the capture objects (key -> ETag) it covers, a digest."""
    doc = {
        "format": PARTIAL_FORMAT,
        "hour": hour.isoformat(),
        "baseline": baseline_fingerprint(baseline),
        "files": dict(sorted(files.items())),
        **state,
    }
    doc["sha256"] = _digest(doc)
    return doc


def _count(value: Any) -> bool:
    return type(value) is int and value >= 0


def check_state(state: Any, baseline: Baseline) -> dict[str, Any]:
    """A state (:meth:`DriftScorer.state`) that merges exactly into a scorer of ``baseline``; PartialError otherwise."""
    if not isinstance(state, dict) or not _count(state.get("scored")):
        raise PartialError("no record count")
    malformed = state.get("malformed")
    if not isinstance(malformed, dict) or not all(r in MALFORMED_REASONS and _count(n) for r, n in malformed.items()):
        raise PartialError("malformed counts are not counts of known reasons")
    features = state.get("features")
    if not isinstance(features, dict) or list(features) != baseline.names:
        raise PartialError("its features are not the baseline's")
    for f in baseline.features:
        counts = features[f.name].get("counts") if isinstance(features[f.name], dict) else None
        if not isinstance(counts, list) or len(counts) != f.expected.size or not all(map(_count, counts)):
            raise PartialError(f"feature {f.name!r}: not {f.expected.size} bin counts")
        if sum(counts) != state["scored"]:  # every scored record is in exactly one bin of every feature
            raise PartialError(f"feature {f.name!r}: its bins hold {sum(counts)} records, not the {state['scored']} scored")
        unseen = features[f.name].get("unseen", {})
        if not isinstance(unseen, dict) or not all(isinstance(k, str) and _count(n) for k, n in unseen.items()):
            raise PartialError(f"feature {f.name!r}: unseen categories are not counts")
    prediction = state.get("prediction")
    expected = None if baseline.prediction is None else baseline.prediction.expected.size
    if prediction is not None and (expected is None or not isinstance(prediction, list) or len(prediction) != expected or not all(map(_count, prediction))):
        raise PartialError("prediction counts do not fit the baseline's prediction bins")
    return state


def check_partial(doc: Any, hour: datetime, baseline: Baseline) -> dict[str, Any]:
    """A stored partial of ``hour`` counted against ``baseline``, intact; PartialError naming what is wrong."""
    if not isinstance(doc, dict) or doc.get("format") != PARTIAL_FORMAT:
        raise PartialError(f"not a partial ({PARTIAL_FORMAT!r} expected)")
    if doc.get("sha256") != _digest(doc):
        raise PartialError("its digest does not match its content (corrupt or edited)")
    if doc.get("hour") != hour.isoformat():
        raise PartialError(f"it is the partial of {doc.get('hour')!r}, not of {hour.isoformat()}")
    if doc.get("baseline") != baseline_fingerprint(baseline):
        raise PartialError("it was counted against another baseline")
    files = doc.get("files")
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise PartialError("its capture objects are not a key -> ETag object")
    return check_state(doc, baseline)


def partial_key(settings: JobSettings, hour: datetime) -> str:
    return f"{settings.report_prefix}{PARTIALS_DIR}/{hour:%Y/%m/%d/%H}.json"


def _read_json(s3, bucket: str, key: str) -> Any | None:
    """A JSON object of the bucket, None when there is none; PartialError when it is not JSON."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except s3.exceptions.NoSuchKey:
        return None
    try:
        return json.load(body)
    except ValueError as e:
        raise PartialError(f"not JSON ({e})") from None
    finally:
        body.close()


def _put_json(s3, bucket: str, key: str, doc: Any, indent: int | None = None) -> None:
    # No encryption arguments: the capture bucket's default encryption (the stack's KMS key) applies, as to reports.
    s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(doc, indent=indent, separators=None if indent else (",", ":")).encode(), ContentType="application/json")


def stored_partial(s3, settings: JobSettings, hour: datetime, baseline: Baseline) -> dict[str, Any] | None:
    """The hour's stored partial when it is intact and of this baseline; else None, with a log line saying why."""
    key = partial_key(settings, hour)
    try:
        doc = _read_json(s3, settings.capture_bucket, key)
        return None if doc is None else check_partial(doc, hour, baseline)
    except PartialError as e:
        LOG.warning("%s: partial s3://%s/%s refused (%s); rescoring hour %s", settings.model, settings.capture_bucket, key, e, f"{hour:%Y-%m-%dT%H}")
        return None


@dataclass
class HourPlan:
    """What a run does for one capture hour: keep its partial (``base``) and score the objects it lacks (``todo``)."""

    hour: datetime
    base: dict[str, Any] | None
    todo: dict[str, str]
    """key -> ETag of the capture objects to score (all of the hour's when ``base`` is None)."""

    @property
    def files(self) -> dict[str, str]:
        return {**(self.base["files"] if self.base else {}), **self.todo}


def plan_window(s3, settings: JobSettings, hours: list[datetime], baseline: Baseline) -> list[HourPlan]:
    """Per hour of the window: its intact partial and the capture objects it does not cover yet. An object the
    partial covers that changed (another ETag) or vanished sends the whole hour to be rescored."""
    listed: dict[datetime, dict[str, str]] = {h: {} for h in hours}
    for hour, key, etag in capture_objects(s3, settings.capture_bucket, settings.model, settings.endpoint_name, hours):
        listed[hour][key] = etag
    plans = []
    for hour in hours:
        base = stored_partial(s3, settings, hour, baseline)
        if base is not None and any(listed[hour].get(k) != etag for k, etag in base["files"].items()):
            LOG.warning("%s: capture of hour %s changed since its partial; rescoring the hour", settings.model, f"{hour:%Y-%m-%dT%H}")
            base = None
        covered = base["files"] if base else {}
        plans.append(HourPlan(hour, base, {k: e for k, e in listed[hour].items() if k not in covered}))
    return plans


def window_scorer(baseline: Baseline, settings: JobSettings, states: list[Mapping[str, Any]]) -> DriftScorer:
    """A scorer holding the sum of the window's hour states (exact integer sums: one pass over the window)."""
    scorer = DriftScorer(baseline, settings.threshold, settings.min_records)
    for state in states:
        scorer.merge(state)
    return scorer


# ---------------------------------------------------------------------------------------------------------------
# The scheduled job


@dataclass
class Clients:
    s3: Any
    sagemaker: Any
    cloudwatch: Any

    @classmethod
    def default(cls) -> Clients:
        import boto3  # boto3 honours AWS_ENDPOINT_URL (LocalStack) and the Lambda's region

        return cls(boto3.client("s3"), boto3.client("sagemaker"), boto3.client("cloudwatch"))


def report_key(settings: JobSettings, end: datetime) -> str:
    return f"{settings.report_prefix}{end:%Y/%m/%d/%H}.json"


def metric_data(report: dict[str, Any], model: str, when: datetime) -> list[dict[str, Any]]:
    """The CloudWatch datapoints of a report: counts always, scores only with enough records."""
    def datum(name: str, value: float, feature: str | None = None, unit: str = "None") -> dict[str, Any]:
        dims = [{"Name": "Model", "Value": model}] + ([{"Name": "Feature", "Value": feature}] if feature else [])
        return {"MetricName": name, "Dimensions": dims, "Timestamp": when, "Value": float(value), "Unit": unit}

    data = [
        datum(METRIC_RECORDS, report["records"]["scored"], unit="Count"),
        datum(METRIC_MALFORMED, report["records"]["malformed"], unit="Count"),
    ]
    if report["status"] != "insufficient_data":
        data.append(datum(METRIC_MAX, report["max_psi"]))
        prediction = report.get("prediction")
        if prediction and prediction["psi"] is not None:
            data.append(datum(METRIC_PREDICTION, prediction["psi"]))
        for name, r in report["features"].items():
            data.append(datum(METRIC_PSI, r["psi"], name))
            if r["js_distance"] is not None:
                data.append(datum(METRIC_JS, r["js_distance"], name))
    return data


def processing_job_request(settings: JobSettings, when: datetime, baseline_uri: str) -> dict[str, Any]:
    """CreateProcessingJob: the code package run in the framework container on ``processing_instance_count``
    instances, the run's manifest of capture objects shared out among them by key (:func:`run_shard`)."""
    code_dir = "/opt/ml/processing/input/code"
    env = {
        **JobSettings(**{**asdict(settings), "baseline_uri": baseline_uri}).to_env(),
        f"{JobSettings.PREFIX}SCHEDULED_TIME": when.isoformat(),
        CODE_SHA_ENV: sha_of_code_uri(settings.code_uri),
    }
    return {
        "ProcessingJobName": job_name(settings, when),
        "RoleArn": settings.processing_role_arn,
        "AppSpecification": {
            "ImageUri": settings.processing_image,
            "ContainerEntrypoint": [
                "/bin/sh",
                "-c",
                verify_code(f"{code_dir}/sourcedir.tar.gz", "/opt/ml/output/message"),  # then the run script below
                "/bin/sh",
                "-c",
                f"mkdir -p /opt/ml/code && tar -xzf {code_dir}/sourcedir.tar.gz -C /opt/ml/code && cd /opt/ml/code && exec python3 -m training.drift",
            ],
        },
        "ProcessingInputs": [
            {
                "InputName": "code",
                "S3Input": {
                    "S3Uri": settings.code_uri, "LocalPath": code_dir, "S3DataType": "S3Prefix", "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                },
            },
            {
                "InputName": "capture",
                "S3Input": {
                    "S3Uri": f"s3://{settings.capture_bucket}/{job_dir(settings, when)}manifest.json",
                    "LocalPath": CAPTURE_DIR,
                    "S3DataType": "ManifestFile",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "ShardedByS3Key",
                },
            },
        ],
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceCount": settings.processing_instance_count,
                "InstanceType": settings.processing_instance_type,
                "VolumeSizeInGB": 30,
                **({"VolumeKmsKeyId": settings.kms_key_arn} if settings.kms_key_arn else {}),
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": settings.processing_max_runtime_seconds},
        "Environment": env,
        "Tags": [{"Key": "mlops:model", "Value": settings.model}],
        **(
            {
                "NetworkConfig": {
                    "EnableNetworkIsolation": False,
                    "VpcConfig": {"Subnets": settings.subnet_ids.split(","), "SecurityGroupIds": settings.security_group_ids.split(",")},
                }
            }
            if settings.subnet_ids
            else {}
        ),
    }


def _score_objects(clients: Clients, bucket: str, keys: Iterator[str] | list[str], scorer: DriftScorer) -> None:
    for key in keys:
        body = clients.s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            scorer.feed_stream(body)
        finally:
            body.close()


def publish(settings: JobSettings, when: datetime, clients: Clients, baseline: Baseline, partials: list[dict[str, Any]]) -> dict[str, Any]:
    """The window's report from its hours' partials: stored next to the capture, its metrics published."""
    scorer = window_scorer(baseline, settings, partials)
    hours = [datetime.fromisoformat(p["hour"]) for p in partials]
    window = {"start": hours[0].isoformat(), "end": (hours[-1] + timedelta(hours=1)).isoformat()}
    report = scorer.report(model=settings.model, endpoint=settings.endpoint_name, window=window, files=sum(len(p["files"]) for p in partials))
    key = report_key(settings, when)
    _put_json(clients.s3, settings.capture_bucket, key, report, indent=2)
    data = metric_data(report, settings.model, when)
    for i in range(0, len(data), 1000):  # PutMetricData takes at most 1000 datapoints per call
        clients.cloudwatch.put_metric_data(Namespace=settings.metric_namespace, MetricData=data[i : i + 1000])
    LOG.info(
        "%s: %s, %d records scored, %d malformed, max PSI %s, drifted %s; report s3://%s/%s",
        settings.model, report["status"], report["records"]["scored"], report["records"]["malformed"],
        report["max_psi"], report["drifted_features"] or "none", settings.capture_bucket, key,
    )
    return report


def run_job(settings: JobSettings, when: datetime, clients: Clients, score_here: bool = True) -> dict[str, Any]:
    """One scheduled run: resolve the baseline, find the capture no partial covers yet, then score it here (and
    store the hours' partials) or start the processing job that does; the report sums the window's partials."""
    if settings.baseline_uri:
        uri = settings.baseline_uri
        found = LiveBaseline(uri, read_baseline_s3(clients.s3, uri), f"{uri} has no {BASELINE_FILE} (the bootstrap placeholder, or no trained model yet)")
    else:
        found = live_baseline(clients, settings.endpoint_name)
    uri, baseline = found.uri, found.baseline
    if baseline is None:
        LOG.log(logging.WARNING if found.broken else logging.INFO, "%s: %s; nothing to score", settings.model, found.reason)
        return {"status": "no_baseline", "baseline": uri, "reason": found.reason}
    plans = plan_window(clients.s3, settings, window_hours(when, settings.window_hours), baseline)
    todo = sum(len(p.todo) for p in plans)
    LOG.info("%s: %d capture objects to score, %d hours kept from their partials", settings.model, todo, sum(not p.todo and p.base is not None for p in plans))
    if not score_here and todo:
        return start_processing_job(settings, when, clients, uri, baseline, plans)

    partials = []
    for plan in plans:
        if plan.base is not None and not plan.todo:
            partials.append(plan.base)
            continue
        scorer = DriftScorer(baseline, settings.threshold, settings.min_records)
        if plan.base is not None:
            scorer.merge(plan.base)
        _score_objects(clients, settings.capture_bucket, list(plan.todo), scorer)
        doc = partial_document(plan.hour, baseline, scorer.state(), plan.files)
        _put_json(clients.s3, settings.capture_bucket, partial_key(settings, plan.hour), doc)
        partials.append(doc)
    return publish(settings, when, clients, baseline, partials)


# ---------------------------------------------------------------------------------------------------------------
# The processing engine: N instances, each scoring a shard of the objects to score; the last one merges

PLAN_FORMAT = "mlops-drift-plan/1"
SHARD_FORMAT = "mlops-drift-shard/1"
CAPTURE_DIR = "/opt/ml/processing/input/capture"
RESOURCE_CONFIG = Path("/opt/ml/config/resourceconfig.json")


def job_name(settings: JobSettings, when: datetime) -> str:
    return f"{settings.job_prefix}-drift-{when:%Y%m%d%H%M%S}"


def job_dir(settings: JobSettings, when: datetime) -> str:
    return f"{settings.report_prefix}{PARTIALS_DIR}/jobs/{job_name(settings, when)}/"


def capture_prefix(settings: JobSettings) -> str:
    return f"{settings.model}/{settings.endpoint_name}/"


def start_processing_job(settings: JobSettings, when: datetime, clients: Clients, uri: str, baseline: Baseline, plans: list[HourPlan]) -> dict[str, Any]:
    """Store the run's plan and the manifest of the objects to score, then start the job that scores them."""
    directory = job_dir(settings, when)
    prefix = capture_prefix(settings)
    plan = {
        "format": PLAN_FORMAT,
        "job": job_name(settings, when),
        "baseline": baseline_fingerprint(baseline),
        "hours": [{"hour": p.hour.isoformat(), "base": p.base is not None, "todo": p.todo} for p in plans],
    }
    _put_json(clients.s3, settings.capture_bucket, f"{directory}plan.json", plan)
    # A SageMaker manifest: the prefix, then keys relative to it. Each instance gets its share of the objects
    # (ShardedByS3Key), downloaded to CAPTURE_DIR under their relative keys.
    manifest = [{"prefix": f"s3://{settings.capture_bucket}/{prefix}"}, *(k.removeprefix(prefix) for p in plans for k in p.todo)]
    _put_json(clients.s3, settings.capture_bucket, f"{directory}manifest.json", manifest)
    # No more instances than objects: an instance without a share would only start up and store an empty shard.
    count = min(settings.processing_instance_count, len(manifest) - 1)
    request = processing_job_request(JobSettings(**{**asdict(settings), "processing_instance_count": count}), when, uri)
    try:
        clients.sagemaker.create_processing_job(**request)
        LOG.info("%s: started processing job %s (%d instances) on %s", settings.model, request["ProcessingJobName"], count, uri)
    except clients.sagemaker.exceptions.ResourceInUse:
        LOG.info("%s: processing job %s already exists (a retried schedule)", settings.model, request["ProcessingJobName"])
    return {"status": "started", "processing_job": request["ProcessingJobName"]}


def resource_config(path: Path = RESOURCE_CONFIG) -> tuple[str, list[str]]:
    """This instance's host name and all the job's hosts (SageMaker's resourceconfig.json; one host locally)."""
    try:
        doc = json.loads(path.read_text())
        return str(doc["current_host"]), [str(h) for h in doc["hosts"]]
    except FileNotFoundError:
        return "algo-1", ["algo-1"]


def _sealed(doc: dict[str, Any]) -> dict[str, Any]:
    doc["sha256"] = _digest(doc)
    return doc


def run_shard(settings: JobSettings, when: datetime, clients: Clients, input_dir: Path, host: str, hosts: list[str]) -> dict[str, Any]:
    """One instance of the processing job: score the capture objects of its shard (files under ``input_dir``) by
    hour, store the counts, and, when the shards of every host are stored, merge them into the hours' partials and
    the window's report. The last instance to store its shard sees all of them (S3 lists what was written before):
    it merges; instances finishing together may both merge, writing the same objects."""
    baseline = read_baseline_s3(clients.s3, settings.baseline_uri)
    if baseline is None:
        raise DriftError(f"{settings.baseline_uri} has no {BASELINE_FILE}")
    directory = job_dir(settings, when)
    plan = _read_json(clients.s3, settings.capture_bucket, f"{directory}plan.json")
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT or plan.get("baseline") != baseline_fingerprint(baseline):
        raise DriftError(f"s3://{settings.capture_bucket}/{directory}plan.json is not this job's plan (missing, or of another baseline)")
    where = {key: (h["hour"], etag) for h in plan["hours"] for key, etag in h["todo"].items()}
    prefix = capture_prefix(settings)
    scorers: dict[str, DriftScorer] = {}
    files: dict[str, dict[str, str]] = {}
    for path in sorted(p for p in input_dir.rglob("*") if p.is_file()):
        key = prefix + path.relative_to(input_dir).as_posix()
        if key not in where:
            LOG.warning("%s: %s is not in the job's plan; not scored", settings.model, key)
            continue
        hour, etag = where[key]
        scorer = scorers.setdefault(hour, DriftScorer(baseline, settings.threshold, settings.min_records))
        with path.open("rb") as f:
            scorer.feed_stream(f)
        files.setdefault(hour, {})[key] = etag
    shard = _sealed({
        "format": SHARD_FORMAT, "job": plan["job"], "host": host, "hosts": hosts, "baseline": plan["baseline"],
        "hours": {hour: {**scorer.state(), "files": files[hour]} for hour, scorer in scorers.items()},
    })
    _put_json(clients.s3, settings.capture_bucket, f"{directory}shards/{host}.json", shard)
    LOG.info("%s: shard %s scored %d objects, %d records", settings.model, host, sum(map(len, files.values())), sum(s.scored for s in scorers.values()))
    stored = {
        obj["Key"].rsplit("/", 1)[-1].removesuffix(".json")
        for page in clients.s3.get_paginator("list_objects_v2").paginate(Bucket=settings.capture_bucket, Prefix=f"{directory}shards/")
        for obj in page.get("Contents", [])
    }
    if not set(hosts) <= stored:
        LOG.info("%s: shards of %s still to come; the last instance merges", settings.model, ", ".join(sorted(set(hosts) - stored)))
        return {"status": "shard_stored", "host": host}
    return merge_shards(settings, when, clients, baseline, plan, hosts)


def check_shard(doc: Any, plan: dict[str, Any], host: str, baseline: Baseline) -> dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("format") != SHARD_FORMAT or doc.get("sha256") != _digest(doc):
        raise PartialError("not an intact shard")
    if doc.get("job") != plan["job"] or doc.get("host") != host or doc.get("baseline") != plan["baseline"]:
        raise PartialError("the shard of another job, host or baseline")
    planned = {h["hour"]: h["todo"] for h in plan["hours"]}
    for hour, state in doc["hours"].items():
        check_state(state, baseline)
        if hour not in planned or not isinstance(state.get("files"), dict) or not state["files"].items() <= planned[hour].items():
            raise PartialError(f"hour {hour}: objects the plan did not give it")
    return doc


def merge_shards(settings: JobSettings, when: datetime, clients: Clients, baseline: Baseline, plan: dict[str, Any], hosts: list[str]) -> dict[str, Any]:
    """Every host's shard summed (exact integers) into the hours' partials, then the window's report."""
    directory = job_dir(settings, when)
    shards = []
    for host in hosts:
        key = f"{directory}shards/{host}.json"
        try:
            shards.append(check_shard(_read_json(clients.s3, settings.capture_bucket, key), plan, host, baseline))
        except PartialError as e:
            raise DriftError(f"shard s3://{settings.capture_bucket}/{key} refused ({e}); its job's hours are rescored by the next run") from None
    partials = []
    for entry in plan["hours"]:
        hour = datetime.fromisoformat(entry["hour"])
        base = stored_partial(clients.s3, settings, hour, baseline) if entry["base"] else None
        if entry["base"] and base is None:
            LOG.warning("%s: hour %s lost its partial during the job; its partial covers this job's objects only", settings.model, entry["hour"])
        parts = [s["hours"][entry["hour"]] for s in shards if entry["hour"] in s["hours"]]
        if not parts and base is not None:
            partials.append(base)
            continue
        scorer = DriftScorer(baseline, settings.threshold, settings.min_records)
        covered = dict(base["files"]) if base else {}
        for part in [base, *parts] if base else parts:
            scorer.merge(part)
        for part in parts:
            covered.update(part["files"])
        missing = entry["todo"].keys() - covered.keys()
        if missing:
            LOG.warning("%s: hour %s: %d planned objects were not scored by any shard; the next run scores them", settings.model, entry["hour"], len(missing))
        doc = partial_document(hour, baseline, scorer.state(), covered)
        _put_json(clients.s3, settings.capture_bucket, partial_key(settings, hour), doc)
        partials.append(doc)
    return publish(settings, when, clients, baseline, partials)


def _when(value: str | None) -> datetime:
    if not value:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DriftError(f"scheduled_time {value!r} is not an ISO 8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def handler(event: dict[str, Any] | None, context: Any = None) -> dict[str, Any]:
    """Lambda entry point. Event (from the schedule): ``{"scheduled_time": "<ISO time>"}``.

    ``"baseline_uri"`` in the event (score against a given baseline instead of the live model's) is honoured only
    where ``MLOPS_DRIFT_EVENT_BASELINE=1`` is set: local runs and tests. The deployed function never sets it, so
    whoever may invoke it cannot point it at a baseline of their choosing (an archive the job would read)."""
    logging.getLogger().setLevel(logging.INFO)
    event = event or {}
    settings = JobSettings.from_env(os.environ)
    if event.get("baseline_uri"):
        if os.environ.get(EVENT_BASELINE_FLAG) != "1":
            LOG.warning("ignoring the event's baseline_uri: this function scores against the live model's baseline only")
        else:
            settings = JobSettings(**{**asdict(settings), "baseline_uri": event["baseline_uri"]})
    report = run_job(settings, _when(event.get("scheduled_time")), Clients.default(), score_here=settings.engine == "lambda")
    # The return value is the async invocation's record; the report itself is in S3.
    return {k: report[k] for k in ("status", "max_psi", "drifted_features", "records", "processing_job", "baseline") if k in report}


def main(input_dir: Path = Path(CAPTURE_DIR), config: Path = RESOURCE_CONFIG) -> int:
    """Processing-job entry point: settings and scheduled time from the environment the Lambda set; this
    instance's shard of the capture under ``input_dir``."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    try:
        settings = JobSettings.from_env(os.environ)
        when = _when(os.environ.get(f"{JobSettings.PREFIX}SCHEDULED_TIME"))
        if settings.engine == "processing":
            run_shard(settings, when, Clients.default(), input_dir, *resource_config(config))
        else:
            run_job(settings, when, Clients.default())
    except DriftError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())
