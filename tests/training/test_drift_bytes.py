"""The drift Lambda's read of capture bytes (``compact_cells``: the data of compact records found by numpy, no Python
string per line) gives exactly what the text path gives: the same data as ``compact_data``, or it declines and the
chunk is read line by line; the same counts, malformed rows and predictions as the line-by-line read and as pyarrow."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import training.capture as capture
from training.capture import capture_line, compact_cells, compact_data, read_probabilities, read_records
from test_drift_readers import BASELINE as READERS_BASELINE
from training.drift import CsvTokens, DriftScorer, _feature_baseline

# test_drift_readers' four features (tests/training is on the path of its test modules; importing it skips this
# module without pyarrow, a test dependency), with a prediction baseline
BASELINE = dataclasses.replace(READERS_BASELINE, prediction=_feature_baseline(
    "prediction", {"kind": "numeric", "count": 10, "null_count": 0, "bins": {"edges": [0.25, 0.5, 0.75], "proportions": [0.25] * 4}},
))
FEATURES = BASELINE.names

CELL = st.one_of(
    st.sampled_from(["", "0.25", "-1.5", "7", "1e3", "inf", "nan", "nan(1)", " 2", "abc", "a", "b", "premium", " a ", "true", "False",
                     "0", "yes", "\ufeff1", "é", "1\r", "x" * 70, "9007199254740993", "1.2.3"]),
    st.text(st.characters(blacklist_characters='",\n\\', blacklist_categories=("Cs",)), max_size=6),
)
ANSWERS = st.sampled_from(['{"predictions": []}', '{"predictions": [{"probability": 0.3}]}', '{"predictions": [{"probability": 0.9}, {"probability": 1e-3}]}'])


@st.composite
def data(draw) -> str:
    cells = draw(st.lists(CELL, min_size=4, max_size=4))
    shape = draw(st.sampled_from(["ok"] * 8 + ["short", "long", "empty", "wide", "quote", "backslash"]))
    if shape == "short":
        cells = cells[:-1]
    elif shape == "long":
        cells.append("extra")
    elif shape == "empty":
        return ""
    elif shape == "wide":  # longer than the first window (128 bytes), sometimes than MAX_CELLS_BYTES
        cells[2] = "w" * draw(st.sampled_from([130, 600, capture.MAX_CELLS_BYTES + 10]))
    elif shape == "quote":
        cells[2] = '"q,x"'
    elif shape == "backslash":
        cells[2] = "a\\b"
    return ",".join(cells)


# Whole lines: compact records (their data escaped by json.dumps when it holds a quote or backslash: then not compact),
# other layouts, broken JSON, blank lines, invalid UTF-8, a record cut short, two records on one line.
LINES = st.one_of(
    st.builds(lambda d, a: capture_line(d, response_body=a).encode(), data(), ANSWERS),
    st.builds(lambda d: capture_line(d, encoding="BASE64").encode(), data()),
    st.sampled_from([
        b"", b"   ", b"not json", b"{", capture_line("1,2,a,true").encode()[:-3], capture_line("1,2,a,true").encode() + b"\r",
        capture_line("1,2,a,true").encode() * 2, b"x" + capture_line("1,2,a,true").encode(),
        capture_line("1,2,a,true").encode().replace(b"a,true", b"\xff\xfe,true"), capture_line("1,2,\xe9t\xe9,true").encode(),
        capture_line("1,2,a,true").encode().replace(b'","encoding":"CSV"}', b'","encoding":"JSON"}'),
        capture_line("1,2,a,true").encode().replace(b'"eventVersion":"0"}', b'"eventVersion":"1"}'),
        capture_line('{"x": 1, "n": 2, "plan": "a", "flag": true}', content_type="application/json", encoding="JSON").encode(),
    ]),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINES, min_size=1, max_size=30))
@example([capture_line("1,2,a,true").encode(), capture_line(",3,premium,0").encode()])
def test_compact_cells_give_what_compact_data_gives_or_decline(lines):
    """Whenever the numpy read accepts a chunk, its data are the expression's, line for line; it never accepts a
    chunk the expression declines."""
    chunk = b"\n".join(lines)
    text = chunk.decode("utf-8", errors="replace")
    expected = compact_data(text, len(lines)) if text.count("\n") == len(lines) - 1 else None
    cells = compact_cells(chunk)
    if cells is None:
        return
    padded, starts, rows, lengths = cells
    assert expected is not None, "compact_cells accepted a chunk compact_data declines"
    got = [rows[i, : lengths[i]].tobytes().decode("utf-8", errors="replace") for i in range(len(lines))]
    assert got == expected
    assert all(padded[s : s + n].tobytes() == rows[i, :n].tobytes() for i, (s, n) in enumerate(zip(starts, lengths)))


def test_compact_cells_read_plain_records_and_decline_others():
    """The fast path is taken for plain compact records (else the equality above would hold vacuously), and given up
    for each layout the expression gives up."""
    plain = [capture_line(r).encode() for r in ("1,2,a,true", ",3,premium,0", "x" * 300)]
    assert compact_cells(b"\n".join(plain)) is not None
    assert compact_cells(capture_line("w" * (capture.MAX_CELLS_BYTES + 1)).encode()) is None  # longer than it reads
    for bad in (b"not json", capture_line('1,"2",a,true').encode(), capture_line("1,2,a,true").encode() + b" ", b""):
        assert compact_cells(b"\n".join([*plain, bad])) is None, bad


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LINES, min_size=1, max_size=40), st.sampled_from([None, 200, 1500]))
@example([capture_line("1,2,a,true,extra").encode(), capture_line("1,2,a,true").encode(), capture_line("1,2").encode()], None)
@example([capture_line("inf,2,a,true").encode(), capture_line("1,2,a,maybe").encode(), capture_line("abc,2,a,true").encode()], None)
def test_the_numpy_reader_scores_bytes_as_line_by_line(lines, chunk_bytes):
    """A capture stream read by the Lambda's reader (chunks of bytes, compact ones by numpy) gives the counts,
    malformed rows by reason and prediction counts of reading each line on its own, and so do the processing
    engine's (``auto`` with pyarrow: compact chunks by numpy, the others by pyarrow) and pyarrow's alone."""
    stream = b"\n".join(lines) + b"\n"
    scorers = [DriftScorer(BASELINE, reader=r) for r in ("numpy", "auto", "arrow")]
    with pytest.MonkeyPatch.context() as patch:
        if chunk_bytes is not None:  # several chunks, lines straddling blocks
            patch.setattr(capture, "READ_SIZE", 64)
            patch.setattr(capture.byte_chunks, "__defaults__", (chunk_bytes,))
        for scorer in scorers:
            scorer.feed_stream(io.BytesIO(stream))
    by_line = DriftScorer(BASELINE, reader="numpy")
    texts = [line.decode("utf-8", errors="replace") for line in stream[:-1].split(b"\n")]
    for text in texts:
        by_line.feed_batch(read_records([text], FEATURES))
    answers = np.asarray(read_probabilities(texts), dtype=np.float64)
    by_line.prediction.add_numeric(answers[np.isfinite(answers)])
    for scorer in scorers:
        assert scorer.state() == by_line.state(), scorer.reader
        assert scorer.report() == by_line.report(), scorer.reader


def test_rows_of_another_width_are_counted_and_the_others_scored():
    rows = [capture_line(r).encode() for r in ("1,2,a,true", "1,2,a", "1,2,a,true,x", ",3,premium,0")]
    cells = compact_cells(b"\n".join(rows))
    assert cells is not None
    tokens, wrong = CsvTokens.of_cells(*cells, len(FEATURES))
    assert wrong == 2 and tokens.rows == 2
    assert [tokens.text(1, j) for j in range(4)] == ["", "3", "premium", "0"]
    tokens, wrong = CsvTokens.of_cells(*compact_cells(rows[1]), len(FEATURES))
    assert tokens is None and wrong == 1


@pytest.mark.parametrize("answer", ["probability", '{"probability": 0.5}', '{"predictions": [{"probability": 0.5}]}'])
def test_the_probability_check_needs_the_escaped_key(answer):
    """Only the key as it sits in a record (escaped, inside the output's JSON string) can give an answer."""
    line = capture_line("1,2,a,true", response_body=answer)
    assert capture.may_hold_probabilities(line) == bool(read_probabilities([line]))
    assert capture.may_hold_probabilities(line.encode()) == capture.may_hold_probabilities(line)


def test_compact_chunks_skip_pyarrow_unless_asked_for(monkeypatch):
    """The processing engine (``auto`` with pyarrow) reads a stream of compact records from its bytes; ``arrow``
    still reads every chunk with pyarrow."""
    import training.drift as drift

    stream = b"\n".join(capture_line(r).encode() for r in ("1,2,a,true", ",3,premium,0")) + b"\n"
    calls = []
    read = drift._ArrowCsv.read
    monkeypatch.setattr(drift._ArrowCsv, "read", lambda self, rows: calls.append(rows) or read(self, rows))
    auto = DriftScorer(BASELINE, reader="auto")
    auto.feed_stream(io.BytesIO(stream))
    assert auto.arrow is not None and calls == [] and auto.state()["scored"] == 2
    DriftScorer(BASELINE, reader="arrow").feed_stream(io.BytesIO(stream))
    assert calls == [["1,2,a,true", ",3,premium,0"]]
