"""The drift job's two CSV readers, pyarrow's (the processing engine) and the numpy tokenizer (the Lambda), give the
same counts, bit for bit, on awkward data: missing cells, quotes, unseen and padded categories, bool spellings, a
BOM, inf/nan in their spellings, cells float() refuses, rows of the wrong width and malformed records."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import training.drift as drift
from training.capture import Batch, capture_line
from training.drift import BASELINE_FORMAT, DriftError, DriftScorer, load_baseline

pytest.importorskip("pyarrow")  # a test dependency (pyproject's test extra pins the image's pyarrow)

BASELINE = load_baseline(
    {
        "format": BASELINE_FORMAT,
        "features": {
            "x": {"kind": "numeric", "count": 90, "null_count": 10, "bins": {"edges": [-1.0, 0.0, 0.5, 2.0], "proportions": [0.1, 0.2, 0.3, 0.2, 0.2]}},
            "n": {"kind": "numeric", "count": 100, "null_count": 0, "bins": {"edges": [1.0, 3.0], "proportions": [0.3, 0.4, 0.3]}},
            "plan": {"kind": "categorical", "count": 100, "null_count": 0, "frequencies": {"a": 0.5, "b": 0.3, "premium": 0.2}},
            "flag": {"kind": "categorical", "count": 100, "null_count": 0, "frequencies": {"true": 0.6, "false": 0.4}},
        },
    },
    "test",
)

NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.floats(min_value=-5, max_value=5).map("{:.2f}".format),
    st.floats(min_value=-1e6, max_value=1e6).map("{:e}".format),
    st.integers(-10**20, 10**20).map(str),
    st.sampled_from([
        "", " ", "0", "-0", "+1", "1.", ".5", "-.5", " 1.5", "1.5 ", "\t2", "007", "1e500", "-1e500", "1e-400",
        "inf", "-inf", "+inf", "Inf", "INFINITY", "nan", "NaN", "-nan", "nan(1)", "1_000", "0x10", "1.2.3", "--1",
        "1e", "e5", ".", "-", "abc", "True", "NULL", "\ufeff1", "\u0661\u0662", "\xa01", "9007199254740993", "1\r", "(1)",
    ]),
)
WORDS = st.one_of(
    st.sampled_from(["a", "b", "premium", "", " a ", "A", "zz", "\ufeffa", "é", "a b", "x" * 70, "nan", "1", "(a)"]),
    st.text(st.characters(blacklist_characters=',\n"\\', blacklist_categories=("Cs",)), max_size=8),
)
BOOLS = st.sampled_from(["true", "True", "FALSE", " false ", "1", "0", "1.0", "0.0", "", "yes", "2", "t"])


@st.composite
def rows(draw) -> str:
    cells = [draw(NUMBERS), draw(NUMBERS), draw(WORDS), draw(BOOLS)]
    shape = draw(st.sampled_from(["ok"] * 8 + ["short", "long", "quoted", "empty"]))
    if shape == "short":
        cells = cells[:-1]
    elif shape == "long":
        cells.append("extra")
    elif shape == "quoted":
        cells[2] = f'"{cells[2]},x"'
    elif shape == "empty":
        return ""
    return ",".join(cells)


def scorers() -> tuple[DriftScorer, DriftScorer]:
    return DriftScorer(BASELINE, reader="arrow"), DriftScorer(BASELINE, reader="numpy")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(rows(), min_size=1, max_size=30), min_size=1, max_size=4))
@example([["\ufeff1,1,a,true", "2,2,b,false"]])  # a byte-order mark starting the chunk (pyarrow would skip it)
@example([["", "1,1,a,true"], ["1,1,a,true", ""]])  # an empty row at either end (pyarrow: a row of nulls)
@example([["nan(1),1,a,true"], ["1\r,1,a,true"]])
def test_readers_count_csv_rows_identically(chunks):
    """CSV rows straight into the readers (every character the capture slicing lets through, and more)."""
    arrow, numpy = scorers()
    for chunk in chunks:
        arrow.feed_batch(Batch(csv_rows=list(chunk)))
        numpy.feed_batch(Batch(csv_rows=list(chunk)))
    assert arrow.state() == numpy.state()
    assert arrow.report() == numpy.report()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(rows().map(capture_line), st.sampled_from(["not json", "{", capture_line("1,2,a,true")[:-3], ""])), min_size=1, max_size=60))
def test_readers_score_capture_lines_identically(lines):
    """Whole capture records: compact ones, escaped ones (parsed in full), quoted payloads, malformed lines."""
    arrow, numpy = scorers()
    arrow.feed(lines)
    numpy.feed(lines)
    assert arrow.state() == numpy.state()
    assert arrow.report() == numpy.report()


def test_arrow_reads_clean_chunks_itself(monkeypatch):
    """The equality above must not come from pyarrow always giving way: a clean chunk is read by pyarrow alone."""
    scorer = DriftScorer(BASELINE, reader="arrow")
    monkeypatch.setattr(drift.CsvTokens, "of_rows", lambda *a: pytest.fail("the numpy tokenizer read a chunk pyarrow can read"))
    scorer.feed([capture_line(r) for r in ["0.25,1,a,true", ",3,premium,0", "-2.5e1,2,zz,False", "nan,inf,,"]])
    assert scorer.state()["scored"] == 3 and scorer.state()["malformed"] == {"non_finite": 1}


def test_arrow_gives_way_where_float_differs(monkeypatch):
    """``nan(1)`` (pyarrow: NaN; float(): refused), ``\\r`` (pyarrow ends the row there), a byte-order mark first
    (pyarrow skips it; float() refuses it) and an empty row (pyarrow: nulls) go to the numpy tokenizer."""
    scorer = DriftScorer(BASELINE, reader="arrow")
    assert scorer.arrow.read(["\ufeff1,1,a,true"]) is None
    assert scorer.arrow.read(["1,1,a,true", ""]) is None
    assert scorer.arrow.read(["nan(1),1,a,true"]) is None
    assert scorer.arrow.read(["1\r,1,a,true"]) is None
    assert scorer.arrow.read(["1,1,a,true"]) is not None


def test_rejects_unknown_reader():
    with pytest.raises(DriftError, match="reader 'polars' is not one of auto, numpy, arrow"):
        DriftScorer(BASELINE, reader="polars")


def test_rejects_arrow_reader_without_pyarrow(monkeypatch):
    monkeypatch.setattr(drift, "arrow_reader", lambda: None)
    with pytest.raises(DriftError, match="needs pyarrow"):
        DriftScorer(BASELINE, reader="arrow")
    assert DriftScorer(BASELINE).arrow is None  # auto: the Lambda's numpy reader
