"""training.spill_metrics: the quality job's metrics out of core equal training.metrics over the same pairs in
capture order, bit for bit (roc_auc also scikit-learn's), whatever the memory budget; the disk is held to its limit."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

import training.spill_metrics as spill
from training.metrics import task_metrics
from training.quality import QualityError, SpillJoin, _Disk, ground_truth_record

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture
def small_leaves(monkeypatch):
    """Chunks of the summation passes as small as numpy's own unsplit block (128), so a few hundred pairs span
    several chunks and the replayed tree is exercised."""
    monkeypatch.setattr(spill, "LEAF", 128)


def _spilled(task: str, seqs: np.ndarray, y: np.ndarray, score: np.ndarray, budget: int, pieces: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        disk = _Disk(tmp, 1 << 40)
        order = spill.CaptureOrder(disk, int(seqs.max()) + 1 if len(seqs) else 0, budget)
        for part in np.array_split(np.arange(len(y)), pieces):  # added in bucket-like pieces, in any order
            order.add(seqs[part], y[part], score[part])
        metrics = order.ordered().metrics(task)
        assert disk.used == 0  # every spill file removed
    return metrics


SCORES = st.one_of(
    st.floats(0, 1),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 0.25]),  # ties, and 0.0 tied with -0.0
    st.floats(0, 1e-300),  # skewed: every score crowded near 0
    st.floats(-1e308, 1e308),
)


@st.composite
def pairs(draw, task: str):
    n = draw(st.integers(1, 700))
    if task == "binary":
        y = draw(st.sampled_from(["mixed", "ones", "zeros", "odd"]))
        labels = {"mixed": st.sampled_from([0.0, 1.0]), "ones": st.just(1.0), "zeros": st.just(0.0), "odd": st.sampled_from([0.0, 1.0, 2.0, 0.5])}[y]
    elif task == "multiclass":
        labels = st.sampled_from([0.0, 1.0, 2.0, 3.0, -0.0, 7.5])
    else:
        labels = st.floats(-1e6, 1e6)
    scores = {
        "binary": SCORES,
        "multiclass": labels,  # the predicted class
        "regression": st.one_of(st.floats(-1e6, 1e6), st.sampled_from([0.0, -0.0, 0.5]), st.floats(0, 1e-300)),
    }[task]
    kind = draw(st.sampled_from(["any", "equal", "few"]))
    if kind == "equal":  # every score the same
        score = [draw(scores)] * n
    elif kind == "few":
        score = draw(st.lists(st.sampled_from([0.0, 0.3, 0.5, 1.0]), min_size=n, max_size=n))
    else:
        score = draw(st.lists(scores, min_size=n, max_size=n))
    y = draw(st.lists(labels, min_size=n, max_size=n))
    rows = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))  # a request's rows share its sequence number
    seqs = np.repeat(np.arange(n), rows)[:n] * draw(st.sampled_from([1, 5]))
    return np.asarray(y, dtype=np.float64), np.asarray(score, dtype=np.float64), seqs, draw(st.sampled_from([1, 2, 3, 7, 64, 1 << 20])), draw(st.integers(1, 9))


def _shuffled(seqs, y, score, seed):
    """The pairs as buckets give them: requests in any order, a request's rows in their order."""
    rng = np.random.default_rng(seed)
    requests = np.unique(seqs)
    rng.shuffle(requests)
    order = np.concatenate([np.flatnonzero(seqs == r) for r in requests])
    return seqs[order], y[order], score[order]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_the_metrics_out_of_core_equal_training_metrics_exactly(task, small_leaves):
    """Ties, all-equal scores, one class only, scores crowded near 0 or spread over every exponent, 0.0 tied with
    -0.0, multi-row requests, a budget of 1 to 7 pairs (every range split again, recursively, down to single scores):
    the same dict, bit for bit, as training.metrics over the pairs in capture order."""

    @SETTINGS
    @given(pairs(task), st.integers(0, 2**32))
    def check(data, seed):
        y, score, seqs, budget, pieces = data
        want = task_metrics(task, y, score)
        got = _spilled(task, *_shuffled(seqs, y, score, seed), budget=budget, pieces=pieces)
        assert got == want

    check()


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([0, 1]), st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0])), min_size=2, max_size=400), st.sampled_from([1, 3, 50]))
def test_roc_auc_out_of_core_is_scikit_learns(rows, budget):
    y = np.array([r[0] for r in rows], dtype=np.float64)
    score = np.array([r[1] for r in rows])
    got = _spilled("binary", np.arange(len(y)), y, score, budget, 3)["roc_auc"]
    if len(set(y)) < 2:
        assert got is None
    else:
        assert got == pytest.approx(roc_auc_score(y, score), abs=1e-12)


def test_a_range_of_one_score_larger_than_the_budget_is_one_tie_group():
    """10,000 equal scores with a budget of 100: read in chunks, ranked as one group (AUC 0.5), no sort of it."""
    y = np.tile([0.0, 1.0], 5000)
    got = _spilled("binary", np.arange(y.size), y, np.full(y.size, 0.7), 100, 4)
    assert got["roc_auc"] == 0.5 and got == task_metrics("binary", y, np.full(y.size, 0.7))


@pytest.mark.parametrize("n", [1, 7, 128, 129, 1000, 4099, 100_003])
def test_the_replayed_summation_is_numpys(n, small_leaves):
    values = np.random.default_rng(n).standard_normal(n) * 10.0 ** np.random.default_rng(n + 1).integers(-30, 30, n)
    (got,) = spill.pairwise_sum(n, lambda at, count: [np.add.reduce(values[at : at + count].copy())])
    assert got == np.add.reduce(values)


def test_memory_stays_within_the_budget_whatever_the_volume(monkeypatch):
    """Four times the pairs under the same budget: the same peak of the metrics' arrays (traced by numpy's
    allocator): the budget's worth, the score sample and the ranges' bookkeeping, not a column of the pairs."""
    import tracemalloc

    def peak(n: int) -> int:
        rng = np.random.default_rng(n)
        y = rng.integers(0, 2, n).astype(np.float64)
        score = np.round(rng.random(n), 3)
        with tempfile.TemporaryDirectory() as tmp:
            disk = _Disk(tmp, 1 << 40)
            order = spill.CaptureOrder(disk, n, 2048)
            for part in np.array_split(rng.permutation(n), 50):
                order.add(part.astype(np.int64), y[part], score[part])
            del y, score
            tracemalloc.start()
            metrics = order.ordered().metrics("binary")
            top = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert metrics["roc_auc"] is not None
        return top

    monkeypatch.setattr(spill, "LEAF", 2048)
    np.unique(np.zeros(2))  # numpy imports numpy.ma on its first np.unique (~1 MB, once per process): not the job's
    small, large = peak(37_500), peak(150_000)
    # The pairs' two columns would be 2.4 MB at 150,000; what grows is a few hundred bytes per score range
    # (2 * pairs / budget of them: 37 and 147 here).
    assert large < 2 * small and large < 150_000 * 8 / 4, (small, large)


def test_rejects_a_window_larger_than_the_disk_it_may_use():
    """A join whose spill outgrows its disk limit stops with a message naming the setting to raise."""
    import os

    join = SpillJoin("binary", min_records=1, buckets=4, disk_limit=50_000)
    with pytest.raises(QualityError, match=r"quality\.lambda_ephemeral_storage_mb \(accepted: 512 to 10240\)"):
        join.feed_labels(ground_truth_record(f"req-{i}", [i % 2]) for i in range(5000))
        join.report()
    assert join.disk.used > join.disk.limit
    join.close()
    assert not os.path.exists(join.disk.directory)
