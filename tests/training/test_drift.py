"""The drift statistics against numpy/scipy, capture parsing (every payload form, malformed records
counted), bounded memory, and verdicts on generated data with and without drift."""

from __future__ import annotations

import base64
import io
import json
import math
import tracemalloc
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.special import rel_entr

from training import baseline as training_baseline
from training import validate as training_validate
from training.baseline import compute_baseline
from training.capture import byte_chunks, capture_line
from training.drift import (
    BASELINE_FILE,
    BASELINE_FORMAT,
    BOOL_TOKENS,
    PSI_FLOOR,
    CsvTokens,
    DriftError,
    category_tokens,
    DriftScorer,
    decimal_tokens,
    js_distance,
    load_baseline,
    psi,
)
from training.sample_data import generate
from training.validate import validate_frame

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "region", "autopay"]


def reference_psi(actual, expected):
    """PSI = KL(a||e) + KL(e||a), with empty bins floored as documented."""
    a, e = np.maximum(actual, PSI_FLOOR), np.maximum(expected, PSI_FLOOR)
    return float(np.sum(rel_entr(a, e) + rel_entr(e, a)))


def numeric_doc(edges, proportions, count=100, null_count=0):
    return {"kind": "numeric", "count": count, "null_count": null_count, "bins": {"edges": list(edges), "proportions": list(proportions)}}


def baseline_doc(**features):
    return {"format": BASELINE_FORMAT, "features": features}


def csv_cell(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def capture_csv(frame) -> list[str]:
    return [capture_line(",".join(csv_cell(v) for v in row)) for row in frame[FEATURES].itertuples(index=False)]


def score(baseline_document, lines, threshold=0.2, min_records=1):
    scorer = DriftScorer(load_baseline(baseline_document, "test"), threshold, min_records)
    scorer.feed(lines)
    return scorer.report()


@pytest.fixture(scope="module")
def churn_baseline(contract):
    typed = validate_frame(generate(20_000, seed=11), contract).frame
    return compute_baseline(typed, contract, np.linspace(0, 1, 50))


# ---------------------------------------------------------------------------------------------------------------
# Statistics against numpy / scipy


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=2, max_size=12).filter(lambda p: sum(a for a, _ in p) and sum(e for _, e in p)))
def test_psi_and_jensen_shannon_match_scipy_including_empty_bins(pairs):
    a = np.array([p[0] for p in pairs], dtype=float)
    e = np.array([p[1] for p in pairs], dtype=float)
    a, e = a / a.sum(), e / e.sum()
    assert psi(a, e) == pytest.approx(reference_psi(a, e), rel=1e-12, abs=1e-12)
    assert js_distance(a, e) == pytest.approx(jensenshannon(a, e, base=2), rel=1e-9, abs=1e-12)


def test_numeric_bins_match_numpy_histogram_with_out_of_range_and_missing_values():
    rng = np.random.default_rng(3)
    edges = np.array([-1.0, 0.0, 0.5, 2.0, 9.0])  # the last bins stay empty: nothing near 9
    expected = np.array([0.1, 0.3, 0.2, 0.3, 0.1, 0.0])
    values = np.round(rng.normal(0.3, 1.2, 5000), 3)
    values[::50] = np.nan
    lines = [capture_line("" if np.isnan(v) else repr(float(v))) for v in values]
    report = score(baseline_doc(x=numeric_doc(edges, expected, count=95, null_count=5)), lines)["features"]["x"]

    present = values[~np.isnan(values)]
    hist = np.histogram(present, bins=[-np.inf, *edges, np.inf])[0]
    actual = np.append(hist, np.isnan(values).sum()) / values.size
    shares = np.append(expected * 0.95, 0.05)
    assert [b["current"] for b in report["bins"]] == pytest.approx(actual, abs=1e-6)
    assert report["psi"] == pytest.approx(reference_psi(actual, shares), abs=1e-5)
    assert report["js_distance"] == pytest.approx(jensenshannon(actual, shares, base=2), abs=1e-5)
    assert report["missing_share"] == {"baseline": 0.05, "current": pytest.approx(np.isnan(values).mean(), abs=1e-6)}


def test_binning_is_training_baselines_own():
    """A value on an edge goes to the bin above it, as training.baseline.assign_bins puts it."""
    rng = np.random.default_rng(4)
    values = rng.integers(0, 12, 3000).astype(float)  # many values exactly on the edges
    edges = np.unique(np.quantile(values, np.linspace(0.1, 0.9, 9)))
    proportions = training_baseline.bin_proportions(values, edges)
    report = score(baseline_doc(x=numeric_doc(edges, proportions)), [capture_line(f"{v:g}") for v in values])
    assert [b["current"] for b in report["features"]["x"]["bins"][:-1]] == pytest.approx(proportions, abs=1e-6)
    assert report["features"]["x"]["psi"] == pytest.approx(0.0, abs=1e-9)


def test_unseen_categories_have_their_own_bin_and_are_named():
    doc = baseline_doc(c={"kind": "categorical", "count": 10, "null_count": 0, "frequencies": {"a": 0.5, "b": 0.5}})
    lines = [capture_line(v) for v in ["a"] * 40 + ["b"] * 40 + ["zz"] * 15 + ["yy"] * 5]
    r = score(doc, lines)["features"]["c"]
    assert [b["bin"] for b in r["bins"]] == ["a", "b", "(unseen)", "(missing)"]
    actual = [0.4, 0.4, 0.2, 0.0]
    assert [b["current"] for b in r["bins"]] == pytest.approx(actual)
    assert r["psi"] == pytest.approx(reference_psi(np.array(actual), np.array([0.5, 0.5, 0, 0])), abs=1e-5)
    assert r["unseen"] == {"zz": 15, "yy": 5}


def test_constant_feature_is_stable_until_it_moves(contract):
    frame = generate(2000, seed=1).assign(support_calls=3)
    doc = compute_baseline(validate_frame(frame, contract).frame, contract, np.array([0.5]))
    assert doc["features"]["support_calls"]["bins"]["edges"] == [3.0]  # one edge: below 3, from 3 up
    same = score(doc, capture_csv(generate(500, seed=2).assign(support_calls=3)))
    moved = score(doc, capture_csv(generate(500, seed=2).assign(support_calls=1)))
    assert same["features"]["support_calls"]["psi"] == pytest.approx(0.0, abs=1e-9)
    assert moved["features"]["support_calls"]["drifted"] and moved["features"]["support_calls"]["psi"] > 5


def test_restated_constants_agree_with_training():
    assert (BASELINE_FORMAT, BASELINE_FILE) == (training_baseline.BASELINE_FORMAT, training_baseline.BASELINE_FILE)
    assert {k: ("true" if v else "false") for k, v in training_validate._BOOL_TOKENS.items()} == BOOL_TOKENS


# ---------------------------------------------------------------------------------------------------------------
# Fast decimal parsing: exactly float(), or left to float()

TOKENS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(places=4, allow_nan=False, allow_infinity=False).map(str),
    st.integers(-(10**17), 10**17).map(str),
    st.text(alphabet="0123456789.-+eE nai", max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TOKENS, min_size=1, max_size=30))
def test_decimal_tokens_equal_float_or_are_left_to_it(tokens):
    tokens = [t.replace(",", "") for t in tokens]
    values, slow = decimal_tokens(CsvTokens(",".join(tokens).encode(), len(tokens), 1), np.array([0]))
    for token, value, left in zip(tokens, values[:, 0], slow[:, 0]):
        if left:
            continue
        if token == "":
            assert math.isnan(value)
        else:
            assert value == float(token) and math.copysign(1, value) == math.copysign(1, float(token)), token


def test_decimal_tokens_leave_everything_float_refuses():
    tokens = ["1e5", "abc", "-", ".", "1.2.3", "1-2", "+3", " 4", "nan", "12345678901234567", "5.", ".5", "-0"]
    _, slow = decimal_tokens(CsvTokens(",".join(tokens).encode(), len(tokens), 1), np.array([0]))
    assert [t for t, s in zip(tokens, slow[:, 0]) if not s] == ["5.", ".5", "-0"]


CELLS = st.text(alphabet=st.characters(blacklist_characters=",", blacklist_categories=("Cs",)), max_size=10)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(CELLS, CELLS.map(lambda t: t + "\0"), st.text(alphabet="ab,", max_size=90).map(lambda t: t.replace(",", ""))), min_size=1, max_size=40))
def test_category_tokens_count_exactly_what_a_counter_of_the_strings_counts(tokens):
    """Keys pack bytes and length: "a" and "a\0", 7-, 8- and 9-byte tokens, non-ASCII, and tokens past the
    64-byte key (read one by one) all stay distinct."""
    values, codes = category_tokens(CsvTokens(",".join(tokens).encode(), len(tokens), 1), 0)
    assert len(values) == len(set(values))
    assert Counter(values[c] for c in codes) == Counter(tokens)


# ---------------------------------------------------------------------------------------------------------------
# Capture records: every payload form, malformed ones counted


def rows_as(form: str, rows: list[list]) -> list[str]:
    header = FEATURES[::-1]
    csv_text = "\n".join(",".join(csv_cell(v) for v in r) for r in rows)
    if form == "csv":
        return [capture_line(",".join(csv_cell(v) for v in r)) for r in rows]
    if form == "csv spaced layout":  # the brief's pretty-printed record: parsed in full, not sliced
        return [json.dumps(json.loads(capture_line(",".join(csv_cell(v) for v in r))), indent=None) for r in rows]
    if form == "csv multi-row":
        return [capture_line(csv_text)]
    if form == "csv base64":
        return [capture_line(base64.b64encode(csv_text.encode()).decode(), "text/csv", "BASE64")]
    if form == "csv header":
        body = ",".join(header) + "\n" + "\n".join(",".join(csv_cell(v) for v in r[::-1]) for r in rows)
        return [capture_line(body)]
    if form == "csv quoted":
        return [capture_line("\n".join(",".join(f'"{csv_cell(v)}"' for v in r) for r in rows))]
    if form == "json instances":
        return [capture_line(json.dumps({"instances": rows}), "application/json", "JSON")]
    if form == "json records":
        return [capture_line(json.dumps([dict(zip(FEATURES, r)) for r in rows]), "application/json", "JSON")]
    if form == "json one record":
        return [capture_line(json.dumps(dict(zip(FEATURES, r))), "application/json", "JSON") for r in rows]
    raise AssertionError(form)


FORMS = ["csv", "csv spaced layout", "csv multi-row", "csv base64", "csv header", "csv quoted", "json instances", "json records", "json one record"]


@pytest.mark.parametrize("form", FORMS)
def test_every_payload_form_scores_like_plain_csv(churn_baseline, form):
    frame = generate(300, seed=9)
    rows = [[None if isinstance(v, float) and math.isnan(v) else v for v in r] for r in frame[FEATURES].astype(object).itertuples(index=False)]
    rows = [[bool(v) if isinstance(v, (bool, np.bool_)) else v for v in r] for r in rows]
    expected = score(churn_baseline, rows_as("csv", rows))
    got = score(churn_baseline, rows_as(form, rows))
    assert got["records"] == expected["records"] == {"scored": 300, "malformed": 0, "malformed_by_reason": {}}
    assert got["features"] == expected["features"]


def test_malformed_records_are_counted_and_the_rest_scored(churn_baseline):
    good = rows_as("csv", [[12, 50.5, 1, "basic", "north", True]] * 250)
    bad = [
        "{not json",
        json.dumps({"captureData": {}}),
        capture_line("!!!not base64!!!", "text/csv", "BASE64"),
        capture_line("12,50.5,1,basic,north"),  # five values for six features
        capture_line("12,50.5,1,basic,north,True,extra"),
        capture_line("twelve,50.5,1,basic,north,True"),
        capture_line("12,50.5,1,basic,north,maybe"),
        capture_line(json.dumps({"instances": [[12, [50.5], 1, "basic", "north", True]]}), "application/json", "JSON"),
        capture_line("12,50.5,1,basic,north,True", "image/png", "BASE64".replace("BASE64", "PNG")),
    ]
    report = score(churn_baseline, good[:100] + bad + good[100:])
    assert report["records"]["scored"] == 250
    assert report["records"]["malformed_by_reason"] == {
        "bad_json": 2, "bad_base64": 1, "bad_payload": 2, "wrong_column_count": 2, "non_numeric": 1, "invalid_bool": 1,
    }
    assert report["records"]["malformed"] == 9
    # The rejected rows' valid cells (tenure 12, plan basic) did not reach the bins.
    plan = {b["bin"]: b["current"] for b in report["features"]["plan"]["bins"]}
    assert plan["basic"] == 1.0


def _lines(chunks) -> list[str]:
    return [line for chunk in chunks for line in chunk.decode("utf-8", errors="replace").split("\n")]


def test_byte_chunks_split_lines_across_blocks_and_tolerate_bad_utf8(monkeypatch):
    import training.capture as capture

    monkeypatch.setattr(capture, "READ_SIZE", 7)  # lines straddle blocks
    data = "first line\nsecond\n\xe9t\xe9\nlast without newline".encode() + b"\n\xff\xfe broken\n"
    lines = _lines(byte_chunks(io.BytesIO(data), chunk_bytes=16))
    assert lines[:4] == ["first line", "second", "été", "last without newline"]
    assert lines[4].endswith(" broken") and "\ufffd" in lines[4] and len(lines) == 5


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(["", "ab", "été", "x" * 30, "\r", "{}"]), max_size=40),
    st.sampled_from([b"", b"\n", b"\n\n", b"\xe9"]),
    st.integers(1, 16),
    st.integers(1, 64),
)
def test_byte_chunks_hold_the_streams_lines(texts, end, read_size, chunk_bytes):
    """The job's reader (whole lines in chunks of bytes) yields exactly the stream's lines (a last newline ends the
    last line, it does not start an empty one), in chunks of at most ``chunk_bytes`` plus a block plus a line."""
    import training.capture as capture

    data = "\n".join(texts).encode() + end
    body = data[:-1] if data.endswith(b"\n") else data
    expected = [line.decode("utf-8", errors="replace") for line in body.split(b"\n")] if data else []
    original = capture.READ_SIZE
    capture.READ_SIZE = read_size  # lines and multi-byte characters straddle blocks
    try:
        chunks = list(byte_chunks(io.BytesIO(data), chunk_bytes=chunk_bytes))
    finally:
        capture.READ_SIZE = original
    for chunk in chunks:
        assert len(chunk) <= chunk_bytes + read_size + 30 + 3 or chunk.count(b"\n") == 0
    assert _lines(chunks) == expected


def test_memory_stays_flat_as_the_volume_grows(churn_baseline):
    """Peak memory scoring 200k records is about that of 20k: records are streamed, not held."""
    template = capture_line("12,50.5,1,basic,north,True").encode() + b"\n"

    class Stream:
        def __init__(self, records):
            self.left = records

        def read(self, size):
            n = min(self.left, max(1, size // len(template)))
            self.left -= n
            return template * n

    def peak(records: int) -> int:
        scorer = DriftScorer(load_baseline(churn_baseline, "test"))
        tracemalloc.start()
        scorer.feed_stream(Stream(records))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert scorer.scored == records
        return top

    small, large = peak(20_000), peak(200_000)
    assert large < 1.5 * small, (small, large)


# ---------------------------------------------------------------------------------------------------------------
# Verdicts on generated data


def test_no_false_alarm_on_fresh_samples_from_the_baseline_distribution(churn_baseline):
    for seed in range(20, 30):
        report = score(churn_baseline, capture_csv(generate(2000, seed=seed)), min_records=200)
        assert report["status"] == "no_drift", (seed, {k: v["psi"] for k, v in report["features"].items()})
        assert report["max_psi"] < 0.05


def test_the_drifted_features_and_only_those_are_flagged(churn_baseline):
    drift = {"shift": {"tenure_months": 0.8, "support_calls": -0.6}, "mix": {"region": {"north": 0.1, "south": 0.1, "east": 0.2, "west": 0.6}}}
    report = score(churn_baseline, capture_csv(generate(5000, seed=31, drift=drift)), min_records=200)
    assert report["status"] == "drift"
    assert set(report["drifted_features"]) == {"tenure_months", "support_calls", "region"}
    assert report["max_psi"] == max(report["features"][f]["psi"] for f in report["drifted_features"])


def test_unseen_category_drift_is_flagged(churn_baseline):
    drift = {"mix": {"region": {"north": 0.3, "south": 0.25, "east": 0.1, "atlantis": 0.35}}}
    report = score(churn_baseline, capture_csv(generate(3000, seed=32, drift=drift)), min_records=200)
    assert report["drifted_features"] == ["region"]
    assert report["features"]["region"]["unseen"] == {"atlantis": pytest.approx(1050, abs=150)}


def test_too_few_records_is_not_a_verdict(churn_baseline):
    report = score(churn_baseline, capture_csv(generate(50, seed=3, drift={"shift": {"tenure_months": 3}})), min_records=200)
    assert report["status"] == "insufficient_data" and report["max_psi"] is None and report["drifted_features"] == []


# ---------------------------------------------------------------------------------------------------------------
# Baselines


@pytest.mark.parametrize(
    "doc, message",
    [
        ({"format": "mlops-baseline/0", "features": {}}, "not a baseline"),
        ([1, 2], "not a baseline"),
        ({"format": BASELINE_FORMAT, "features": {}}, "non-empty object"),
        (baseline_doc(x=numeric_doc([1.0, 0.5], [0.3, 0.3, 0.4])), "feature 'x'"),
        (baseline_doc(x=numeric_doc([1.0], [1.0])), "feature 'x'"),
        (baseline_doc(x={"kind": "text", "count": 1, "null_count": 0}), "feature 'x'"),
    ],
)
def test_rejects_invalid_baselines(doc, message):
    with pytest.raises(DriftError, match=message):
        load_baseline(doc, "baseline.json")


@pytest.mark.parametrize("payload", ["12,inf,1,basic,north,True", "-inf,50.5,1,basic,north,True",
                                     json.dumps({"instances": [[12, "Infinity", 1, "basic", "north", True]]})])
def test_infinite_values_are_malformed_as_the_endpoint_refuses_them(churn_baseline, payload):
    # The endpoint answers such a row 400 (contract check "finite"): it was never scored, so drift must not bin it.
    good = rows_as("csv", [[12, 50.5, 1, "basic", "north", True]] * 50)
    content_type = "application/json" if payload.startswith("{") else "text/csv"
    bad = capture_line(payload, content_type, "JSON" if content_type == "application/json" else "CSV")
    report = score(churn_baseline, good + [bad])
    assert report["records"]["scored"] == 50
    assert report["records"]["malformed_by_reason"] == {"non_finite": 1}


_PLAIN = (capture_line("1,2.5,3,a,north,true"), capture_line("4,,6,b,south,false"))
_LINE_PARTS = st.sampled_from([
    *_PLAIN,
    capture_line('7,"8",9,a,north,true'),  # a quote in the data: escaped, read in full
    capture_line("1,2\n3,4"),  # a newline in the data: escaped
    capture_line("x,y") + "\r",
    capture_line("1,2,3") + capture_line("4,5,6"),  # the prefix again mid-line
    "garbage " + capture_line("1,2,3"),
    "",
    "   ",
    "{broken",
])


@settings(max_examples=200, deadline=None)
@given(st.lists(_LINE_PARTS, min_size=1, max_size=8))
def test_a_run_of_compact_lines_is_read_exactly_as_line_by_line(lines):
    """``compact_data`` (one regular expression over the run) either gives what ``read_records`` slices from each
    line, with nothing else in the run, or declines (None), and the lines are then read one by one."""
    from training.capture import compact_data, read_records

    data = compact_data("\n".join(lines), len(lines))
    by_line = read_records(lines, FEATURES)
    if data is not None:
        assert data == by_line.csv_rows and not by_line.value_rows and not by_line.record_rows and not by_line.malformed
    if all(line in _PLAIN for line in lines):
        assert data is not None, "a run of plain compact records takes the one-pass read"
