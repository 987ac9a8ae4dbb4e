"""training.quality.SpillJoin: the window's join partitioned on disk equals the in-memory join, key for key,
and its memory does not grow with the window."""

from __future__ import annotations

import base64
import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from training.quality import Labels, QualityScorer, SpillJoin, ground_truth_record

IDS = st.sampled_from(["r1", "r2", "r3", "e1", "e2", 'q"uote', "back\\slash", "", "caf\u00e9", "tab\tin", "cr\rin", "7"])
TASKS = st.sampled_from(["binary", "multiclass", "regression"])
NUMBER = st.one_of(st.floats(0, 1), st.integers(0, 3), st.sampled_from([float("nan"), float("inf"), "x", None, True]))
# The strategies are built once, here: a strategy built inside a draw is built and validated again for every value
# drawn (that was ~3/4 of these tests' CPU). A choice among values known only in the draw is an index drawn from
# _INDEX (what sampled_from of those values draws).
BOOLEANS = st.booleans()
PREDICTION = st.one_of(st.fixed_dictionaries({"label": NUMBER, "probability": NUMBER}), st.fixed_dictionaries({"value": NUMBER}), NUMBER)
_INDEX = {n: st.sampled_from(range(n)) for n in range(1, 17)}


def _pick(draw, options: list):
    return options[draw(_INDEX[len(options)])]


_ROWS = st.integers(0, 3)


def _capture(draw) -> str:
    """A capture line of any layout SageMaker or a stranger could give, right or wrong."""
    rows = draw(_ROWS)
    preds = [draw(PREDICTION) for _ in range(rows)]
    body = json.dumps({"predictions": preds} if draw(BOOLEANS) else (preds[0] if preds else []))
    output = {"observedContentType": "application/json", "mode": "OUTPUT", "data": body, "encoding": "JSON"}
    if draw(BOOLEANS):
        output.update(data=base64.b64encode(body.encode()).decode(), encoding="BASE64")
    meta = {"eventId": draw(IDS), "inferenceTime": "2026-11-30T10:00:00Z"}
    if draw(BOOLEANS):
        meta["inferenceId"] = draw(IDS)
    record = {"captureData": {"endpointInput": {"data": "1,2", "encoding": "CSV"}, "endpointOutput": output}, "eventMetadata": meta, "eventVersion": "0"}
    if draw(BOOLEANS):  # an id key before eventMetadata: the sliced id and the parsed one differ
        record = {"inferenceId": draw(IDS), **record}
    text = json.dumps(record, separators=(",", ":")) if draw(BOOLEANS) else json.dumps(record)
    return _pick(draw, [text, text, text, text[:-3], "", "{not json", '{"captureData":{}}'])


_LABEL_VALUES = st.lists(st.sampled_from([0, 1, 2, 0.5, 3.25]), min_size=1, max_size=3)


def _label(draw) -> str:
    ident = draw(IDS)
    values = draw(_LABEL_VALUES)
    compact = ground_truth_record(ident, values) if "," not in ident else ground_truth_record("r1", values)
    doc = json.loads(compact)
    return _pick(draw, [
        compact,
        json.dumps(doc),  # spaced: the full parse
        compact.replace('"data":"', '"data":"nan,'),
        compact.replace('"data":"', '"data":"x'),
        json.dumps({**doc, "groundTruthData": {"data": json.dumps(values), "encoding": "JSON"}}),
        json.dumps({**doc, "groundTruthData": {"data": base64.b64encode(",".join(map(str, values)).encode()).decode(), "encoding": "BASE64"}}),
        "{broken", "", "   ",
    ])


_LABELS, _CAPTURES, _BUCKETS = st.integers(0, 25), st.integers(0, 40), st.sampled_from([1, 2, 3, 7])


@st.composite
def windows(draw):
    return (draw(TASKS), [_label(draw) for _ in range(draw(_LABELS))], [_capture(draw) for _ in range(draw(_CAPTURES))],
            draw(_BUCKETS))


def _old(task: str, labels: list[str], captures: list[str]) -> dict:
    gt = Labels()
    gt.feed(labels)
    scorer = QualityScorer(task, gt, min_records=1)
    scorer.feed(captures)
    return scorer.report(model="m")


def _new(task: str, labels: list[str], captures: list[str], buckets: int) -> dict:
    join = SpillJoin(task, min_records=1, buckets=buckets)
    join.feed_labels(labels[: len(labels) // 2])  # fed in parts, as files arrive
    join.feed_labels(labels[len(labels) // 2 :])
    join.feed_captures(captures[: len(captures) // 2])
    join.feed_captures(captures[len(captures) // 2 :])
    return join.report(model="m")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windows())
def test_the_join_on_disk_equals_the_join_in_memory_exactly(window):
    """Duplicates, late and missing labels, labels delivered twice, malformed lines of every reason, multi-row
    requests, ids that need escaping, records whose sliced id differs from the parsed one: the same report, the
    metrics bit for bit (the pairs are scored in capture order)."""
    task, labels, captures, buckets = window
    assert _new(task, labels, captures, buckets) == _old(task, labels, captures)


def _bench_window(n: int) -> tuple[list[str], list[str]]:
    labels = [ground_truth_record(f"req-{i}", [i % 2]) for i in range(n)]
    captures = [
        json.dumps({"captureData": {"endpointOutput": {"data": json.dumps({"predictions": [{"label": 1, "probability": (i % 97) / 97}]}), "encoding": "JSON"}},
                    "eventMetadata": {"eventId": f"e-{i}", "inferenceId": f"req-{i}"}, "eventVersion": "0"}, separators=(",", ":"))
        for i in range(n)
    ]
    return labels, captures


def _peak(n: int, buckets: int) -> tuple[int, dict]:
    """Peak traced memory of the join and its metrics, under a budget of 4,096 pairs in memory."""
    labels, captures = _bench_window(n)
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    join = SpillJoin("binary", min_records=1, buckets=buckets, budget=4096)
    join.feed_labels(iter(labels))
    join.feed_captures(iter(captures))
    report = join.report()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, report


def test_memory_does_not_grow_with_the_window(monkeypatch):
    """Four times the labels and predictions (20,000 and 80,000), four times the buckets (as `spill_buckets` sizes them): the join's
    peak, metrics included, stays flat (under 4 bytes more per added pair; the pairs' columns alone are 16), while
    the in-memory join holds a dict entry of ~200 bytes per label. (Write buffers of 1,024 lines, so both
    windows fill them.)"""
    monkeypatch.setattr(SpillJoin, "FLUSH_LINES", 1024)
    np.unique(np.zeros(2))  # numpy imports numpy.ma on its first np.unique (~1 MB, once per process): not the join's
    small, report = _peak(20_000, 16)
    large, large_report = _peak(80_000, 64)
    assert report["records"]["joined"] == 20_000 and large_report["records"]["joined"] == 80_000
    assert large_report["metrics"]["roc_auc"] is not None
    per_pair = (large - small) / 60_000
    assert per_pair < 4, (small, large)
    labels, _ = _bench_window(40_000)
    tracemalloc.start()
    gt = Labels()
    gt.feed(iter(labels))
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert held / 40_000 > 50 * max(per_pair, 1), (held, per_pair)  # what the old join held for the labels alone


_SIX = st.integers(0, 5)
_GOOD_P = ["0.25", "1", "0", "-0.5", "1e-3", "2.5E+2", "\u00a00.75"]
_P_GOOD, _P_ANY = st.sampled_from(_GOOD_P), st.sampled_from(_GOOD_P + ["0.5 ", "x", "1.", ".5"])
_GOOD_IDS = st.sampled_from(["r1", "r2", "r3", "e1", "7", "caf\u00e9", "tab\tin"])
_INPUT_DATA = st.sampled_from(["1,2", '{\\"instances\\": [[1, 2]]}', '\\"inferenceId\\":\\"r2\\"'])


def _sagemaker_capture(draw) -> str:
    """A capture record as SageMaker writes it (compact, its key order) of the built-in recipe's one-row answer,
    or a near miss of that layout (two probabilities, no probability, a spaced or escaped id, odd numbers)."""
    good = draw(_SIX) > 0  # mostly records the column-wise slicing takes
    p = draw(_P_GOOD if good else _P_ANY)
    ids = _GOOD_IDS if good else IDS
    answers = [
        '{\\"predictions\\": [{\\"label\\": 1, \\"probability\\": %s}]}' % p,
        '{\\"predictions\\": [{\\"label\\": 1, \\"probability\\":%s}]}' % p,
    ]
    answer = _pick(draw, answers if good else answers + [
        '{\\"predictions\\": [{\\"label\\": 1, \\"probability\\": %s}, {\\"label\\": 0, \\"probability\\": 0.75}]}' % p,
        '{\\"predictions\\": [{\\"label\\": 1}]}',
        '{\\"predictions\\": [{\\"probability\\": %s, \\"label\\": 1}]}' % p,
    ])
    event, inference = draw(ids), draw(ids) if good or draw(BOOLEANS) else None  # no InferenceId: line by line
    meta = f'"eventId":{json.dumps(event)}' + (f',"inferenceId":{json.dumps(inference)}' if inference is not None else "") + ',"inferenceTime":"2026-11-30T10:00:00Z"'
    data = draw(_INPUT_DATA)
    return ('{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"%s","encoding":"CSV"},'
            '"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT","data":"%s","encoding":"JSON"}},'
            '"eventMetadata":{%s},"eventVersion":"0"}' % (data, answer, meta))


_SM_LABEL_IDS, _BINARY, _SM_LABELS = st.sampled_from(["r1", "r2", "r3", "e1", "7", "caf\u00e9", 'q"uote']), st.sampled_from([0, 1]), st.integers(0, 20)
_THIRTY_ONE, _BROKEN, _SM_BUCKETS = st.integers(0, 30), st.sampled_from(["", "{not json"]), st.sampled_from([1, 2, 7])


@st.composite
def sagemaker_windows(draw):
    labels = [ground_truth_record(draw(_SM_LABEL_IDS), [draw(_BINARY)]) for _ in range(draw(_SM_LABELS))]
    captures = [_sagemaker_capture(draw) if draw(_THIRTY_ONE) else draw(_BROKEN) for _ in range(draw(_CAPTURES))]
    return labels, captures, draw(BOOLEANS), draw(_SM_BUCKETS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(sagemaker_windows())
def test_runs_of_sagemaker_records_sliced_column_wise_equal_the_join_in_memory(monkeypatch, window):
    """Runs of 3 lines (so many runs are all in SageMaker's layout and take the column-wise slicing, and some
    are not), lines with or without their newline: the same report as the in-memory join, bit for bit."""
    import training.quality as quality

    labels, captures, newlines, buckets = window
    monkeypatch.setattr(quality, "BATCH_LINES", 3)
    fed = [c + "\n" for c in captures] if newlines else captures
    assert _new("binary", labels, fed, buckets) == _old("binary", labels, captures)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"a", b"\n", "\u00e9".encode(), "\u20ac".encode(), b"\xff", b"\xe2\x82", b"\r", b"{}"]), max_size=40),
       st.lists(st.integers(0, 200), max_size=6))
def test_lines_of_a_chunked_stream_are_its_lines_each_decoded(parts, cuts):
    """Chunks cut anywhere (inside a UTF-8 character too), invalid bytes, empty lines, no final newline: the
    lines of a chunk decoded in one piece are the stream's lines each decoded on its own."""
    from training.quality import line_blocks, lines_of

    data = b"".join(parts)
    cuts = sorted(min(c, len(data)) for c in cuts)
    chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    want = [line.decode("utf-8", errors="replace") for line in lines]
    assert list(lines_of(iter(chunks))) == want
    assert [line for block in line_blocks(iter(chunks)) for line in block] == want


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    cuts = sorted(min(c, len(data)) for c in cuts)
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]


_PLAIN = ('{"captureData":{"endpointInput":{"observedContentType":"text/csv","mode":"INPUT","data":"1,2","encoding":"CSV"},'
          '"endpointOutput":{"observedContentType":"application/json","mode":"OUTPUT","data":"{\\"predictions\\": [{\\"label\\": 1, '
          '\\"probability\\": 0.5}]}","encoding":"JSON"}},"eventMetadata":{"eventId":"e","inferenceId":"r1",'
          '"inferenceTime":"2026-11-30T10:00:00Z"},"eventVersion":"0"}').encode()
# Near misses of SageMaker's layout, each with whether the bytes path must take it (True) or may decline it (False).
_NEAR_MISSES = [
    (_PLAIN.replace(b'"r1"', b'"r\xff1"'), True),  # invalid UTF-8 in the id: replaced, as the text path decodes it
    (_PLAIN.replace(b": 0.5}", b":0.5}"), True),
    (_PLAIN.replace(b'"endpointInput":{', b'"endpointInput":{"\\"probability\\"":1,'), True),  # the key before the output
    (_PLAIN.replace(b'"inferenceId":"r1"', b'"inferenceId":"r1","inferenceId":"r2"'), True),  # the first one counts
    (_PLAIN.replace(b'"r1"', b'"' + b"r" * 200 + b'"'), False),  # an id longer than the bytes path reads
    (_PLAIN.replace(b'"r1"', b'""'), False),
    (_PLAIN.replace(b'"r1"', b'"r\\"1"'), False),
    (_PLAIN.replace(b": 0.5}", b":\t0.5}"), False), (_PLAIN.replace(b": 0.5}", b":  0.5}"), False),
    (_PLAIN.replace(b": 0.5}", b"  0.5}"), False), (_PLAIN.replace(b": 0.5}", b" 0.5}"), False), (_PLAIN.replace(b": 0.5}", b"::0.5}"), False),
    (_PLAIN.replace(b": 0.5}", b": 0.5 }"), False), (_PLAIN.replace(b": 0.5}", b": }"), False), (_PLAIN.replace(b": 0.5}", b": x}"), False),
    (_PLAIN.replace(b": 0.5}", b": " + b"1" * 140 + b"}"), False), (_PLAIN.replace(b"0.5}", "\u00a00.5}".encode()), False),
    (_PLAIN.replace(b"0.5}]}", b'0.5}, {\\"probability\\": 0.75}]}'), False),  # two answers: findall's list
    (_PLAIN.replace(b'"endpointOutput"', b'"endpointOut"'), False), (_PLAIN.replace(b'"inferenceId"', b'"inferenceID"'), False),
    (_PLAIN.replace(b'\\"probability\\"', b'\\"prob\\"'), False),
    (_PLAIN.replace(b'"eventVersion":"0"}', b'"eventVersion":"1"}'), False), (_PLAIN + b"\r", False), (_PLAIN[:-3], False),
    (b"", False), (b"   ", False), (b"{not json", False), (b"\xff\xfe", False),
]
_AWKWARD_BYTES = st.sampled_from([_PLAIN, *(line for line, _ in _NEAR_MISSES)])


@pytest.mark.parametrize(("line", "fast"), _NEAR_MISSES)
def test_each_near_miss_is_sliced_from_bytes_as_from_text_or_declined(line, fast):
    """Between plain records: the bytes path gives the text path's ids and scores, takes the lines it must, and
    declines (the block then read as text) every other."""
    from training.quality import _sliced_capture_bytes, _sliced_captures, block_lines

    block = b"\n".join([_PLAIN, line, _PLAIN])
    got, want = _sliced_capture_bytes(block), _sliced_captures(block_lines(block))
    assert (got is not None) == fast
    if got is not None:
        assert got == want


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.builds(lambda d: d.encode(), st.composite(lambda draw: _sagemaker_capture(draw))()), _AWKWARD_BYTES), min_size=1, max_size=30))
def test_blocks_sliced_from_their_bytes_give_what_the_text_slicing_gives_or_decline(lines):
    """The quality job's numpy slicing of a block (``_sliced_capture_bytes``) gives the ids and scores the text
    slicing (``_sliced_captures``) gives of the block's lines, or declines; it never takes a block the text slicing
    refuses."""
    from training.quality import _sliced_capture_bytes, _sliced_captures, block_lines

    block = b"\n".join(lines)
    got = _sliced_capture_bytes(block)
    if got is not None:
        assert got == _sliced_captures(block_lines(block))
    if all(line == _PLAIN for line in lines):
        assert got is not None and got[0] == ["r1"] * len(lines), "plain SageMaker records take the bytes path"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(sagemaker_windows(), windows().map(lambda w: (w[1], w[2], True, w[3]))), st.lists(st.integers(0, 4000), max_size=5))
def test_capture_bytes_cut_anywhere_join_as_the_join_in_memory(window, cuts):
    """What ``run_job`` feeds (``feed_label_bytes`` and ``feed_capture_bytes`` of objects' chunks, cut anywhere, in
    ``byte_blocks``): the same report as the in-memory join of the lines, bit for bit."""
    from training.quality import byte_blocks

    labels, captures, newlines, buckets = window
    data = "".join(c + "\n" for c in captures).encode() if newlines else "\n".join(captures).encode()
    join = SpillJoin("binary", min_records=1, buckets=buckets)
    join.feed_label_bytes(byte_blocks(iter(_cut("\n".join(labels).encode(), cuts[::-1]))))
    join.feed_capture_bytes(byte_blocks(iter(_cut(data, cuts))))
    assert join.report(model="m") == _old("binary", labels, captures)


_LINE_IDS, _LINE_VALUES, _TEN = st.sampled_from(["r1", "r2", "e1", "7", "caf\u00e9", "x" * 130]), st.lists(st.sampled_from([0, 1, 0.5]), min_size=1, max_size=3), st.integers(0, 9)


def _label_line(draw) -> bytes:
    """A ground-truth line as the labelling job writes it, or a near miss of that layout."""
    ident = draw(_LINE_IDS)
    line = ground_truth_record(ident, draw(_LINE_VALUES))
    return _pick(draw, [
        line, line, line, line + " ", line + "\r", line.replace('"data":"', '"data":"x'), line.replace('"data":"', '"data":"a\\\\b'),
        line.replace(f'"eventId":{json.dumps(ident)}', '"eventId":""'), line.replace(f'"eventId":{json.dumps(ident)}', '"eventId":"q\\"1"'),
        line.replace('"data":"', '"data":"' + "1," * 70), line.replace('"eventVersion":"0"', '"eventVersion":"1"'), json.dumps(json.loads(line)),
        line[:-1], line + line, "", "{broken",
    ]).encode() if draw(_TEN) else b"r\xff" + line.encode()[2:]


_LABEL = ground_truth_record("r1", [1])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.composite(_label_line)(), min_size=1, max_size=30))
@example([_LABEL.replace('"encoding":"CSV"', '"encoding":"TSV"').encode()])
@example([_LABEL.replace('"eventVersion":"0"', '"eventVersion":"1"').encode()])
@example([_LABEL.replace('{"groundTruthData"', '{"groundTruthDatum"').encode()])
def test_label_blocks_sliced_from_their_bytes_give_what_the_expression_matches_or_decline(lines):
    """``_sliced_label_bytes`` gives the ids and data ``_GROUND_TRUTH`` matches in each line, or declines; it never
    takes a block holding a line the expression does not match."""
    from training.quality import _GROUND_TRUTH, _sliced_label_bytes, block_lines

    block = b"\n".join(lines)
    got = _sliced_label_bytes(block)
    matches = [_GROUND_TRUTH.match(line) for line in block_lines(block)]
    if got is not None:
        assert all(matches), "sliced a block the expression does not match"
        assert list(zip(*got)) == [(m["id"], m["data"]) for m in matches]
    compact = [ground_truth_record(i, [1]).encode() for i in ("r1", "r2")] + [ground_truth_record("r3", [0, 1]).replace("r3", "caf\u00e9").encode()]
    assert _sliced_label_bytes(b"\n".join(compact)) == (["r1", "r2", "caf\u00e9"], ["1", "1", "0,1"])  # (unescaped UTF-8 ids too)
