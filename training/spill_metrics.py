"""The quality job's metrics over joined (label, score) pairs that are not all held in memory at once.

The values equal :func:`training.metrics.task_metrics` over the same pairs in capture order, bit for bit:

- **Counts** (accuracy, precision, recall, f1, f1_macro) are integers summed chunk by chunk.
- **Float sums** (log_loss, rmse, mae, r2) are numpy's own pairwise summation, replayed over chunks read from
  disk: ``np.add.reduce`` of a contiguous float64 array of ``n`` values splits it at ``n // 2`` rounded down to a
  multiple of 8 until a part is at most 128 values, so a part of at most :data:`LEAF` values read from disk and
  reduced alone gives the same number as inside the whole array, and the parts are added in the same tree
  (``tests/training/test_spill_metrics.py`` holds the replay to ``np.add.reduce``).
- **roc_auc** is Mann-Whitney U computed exactly out of core: the pairs are spilled by score *range* (the float's
  bit pattern made monotone, ranges cut at quantiles of a sample), ranges are taken in ascending score order,
  each sorted in memory; tied scores share their mean rank (an exact integer, doubled); a range larger than the
  memory budget is split again by key, recursively, and a range of one score value is one tie group read in
  chunks. The doubled rank sum is an exact integer, so the result equals the ranks' float sum whenever that
  sum is exact (fewer than ~94 million pairs: every partial sum of half-integers below 2**52), and is the
  exactly rounded value beyond.

Memory: at most ``budget`` pairs in memory (a range, a sort, the write buffers), whatever the volume; disk: the
pairs (24 bytes each while ordered by capture, 16 bytes in capture order, 9 bytes per pair while ranked).
numpy and the standard library only (this runs in the quality Lambda).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np

from training.metrics import LOG_LOSS_EPS, THRESHOLD

PAIRS = np.dtype([("k", "<u8"), ("y", "<f8"), ("s", "<f8")])
"""A joined pair while it is put back in capture order: key (the request's sequence number), label, score."""
RANKED = np.dtype([("k", "<u8"), ("f", "u1")])
"""A pair while it is ranked: key (the score's monotone bit pattern), 1 when the label is 1."""
BUDGET = 1 << 18
"""Pairs held in memory at once by default (~6 MB per array of them)."""
LEAF = 1 << 16
"""Pairs per chunk of the summation passes (a power of two: numpy's pairwise parts are multiples of 8)."""
PW_BLOCK = 128
FANOUT = 64
SIGN = np.uint64(1 << 63)


class Disk(Protocol):
    directory: str

    def add(self, nbytes: int) -> None: ...

    def free(self, nbytes: int) -> None: ...


def score_keys(score: np.ndarray) -> np.ndarray:
    """uint64 keys in the order of the float64 scores; equal scores (0.0 and -0.0 too) get equal keys."""
    bits = (np.asarray(score, dtype=np.float64) + 0.0).view(np.uint64)
    return np.where(bits & SIGN, ~bits, bits | SIGN)


def pairwise_sum(n: int, leaf: Callable[[int, int], list], at: int = 0) -> list:
    """The sums ``leaf(start, count)`` gives for consecutive chunks, added in the tree ``np.add.reduce`` uses
    over ``n`` values (each entry of the returned list is one such sum)."""
    if n <= LEAF:
        return leaf(at, n)
    half = n // 2
    half -= half % 8
    left = pairwise_sum(half, leaf, at)
    right = pairwise_sum(n - half, leaf, at + half)
    return [a + b for a, b in zip(left, right)]


class RangeSpill:
    """Records of ``dtype`` (a ``k`` key field) spilled to files by key range (``bounds``: ascending cut points;
    range ``i`` holds ``bounds[i-1] <= k < bounds[i]``), read back in ascending key order by :meth:`runs`."""

    def __init__(self, disk: Disk, name: str, dtype: np.dtype, bounds: np.ndarray, lo: int, hi: int, budget: int) -> None:
        self.disk, self.name, self.dtype, self.budget = disk, name, dtype, max(1, budget)
        self.bounds = np.asarray(bounds, dtype=np.uint64)
        edges = [lo, *map(int, self.bounds), hi + 1]
        self.ranges = [(edges[i], edges[i + 1] - 1) for i in range(len(edges) - 1)]
        self.buffers: list[list[np.ndarray]] = [[] for _ in self.ranges]
        self.buffered = 0
        self.count = 0

    def _path(self, part: int) -> str:
        return f"{self.disk.directory}/{self.name}{part}"

    def add(self, records: np.ndarray) -> None:
        if not len(records):
            return
        if len(self.ranges) == 1:
            self.buffers[0].append(records)
        else:
            part = np.searchsorted(self.bounds, records["k"], side="right")
            order = np.argsort(part, kind="stable")
            part, records = part[order], records[order]
            cuts = np.flatnonzero(part[1:] != part[:-1]) + 1
            for chunk, p in zip(np.split(records, cuts), part[np.r_[0, cuts]]):
                self.buffers[p].append(chunk)
        self.buffered += len(records)
        self.count += len(records)
        if self.buffered >= self.budget:
            self.flush()

    def flush(self) -> None:
        for part, chunks in enumerate(self.buffers):
            if chunks:
                self.disk.add(sum(len(c) for c in chunks) * self.dtype.itemsize)
                with open(self._path(part), "ab") as f:
                    for chunk in chunks:
                        chunk.tofile(f)
                chunks.clear()
        self.buffered = 0

    def runs(self) -> Iterator[np.ndarray]:
        """Every record, in ascending key order (equal keys in the order added), in arrays of at most
        ``budget`` records; each file is removed once read."""
        self.flush()
        for part, (lo, hi) in enumerate(self.ranges):
            yield from self._runs(self._path(part), lo, hi, 0)

    def _runs(self, path: str, lo: int, hi: int, depth: int) -> Iterator[np.ndarray]:
        if not os.path.exists(path):
            return
        size = os.path.getsize(path)
        count = size // self.dtype.itemsize
        if count <= self.budget:
            records = np.fromfile(path, dtype=self.dtype)
            self._remove(path, size)
            yield records[np.argsort(records["k"], kind="stable")]
            return
        if lo < hi:  # the keys' actual range, read once
            lo, hi = (1 << 64) - 1, 0
            for chunk in self._chunks(path):
                lo, hi = min(lo, int(chunk["k"].min())), max(hi, int(chunk["k"].max()))
        if lo == hi:  # one key: the file's order is the order
            yield from self._chunks(path)
            self._remove(path, size)
            return
        # Larger than the budget: split it by key into FANOUT sub-ranges on disk, then each in turn.
        shift = max(0, (hi - lo).bit_length() - FANOUT.bit_length() + 1)
        parts = ((hi - lo) >> shift) + 1
        sub = RangeSpill(self.disk, f"{os.path.basename(path)}.{depth}-", self.dtype,
                         np.array([lo + (i << shift) for i in range(1, parts)], dtype=np.uint64), lo, hi, self.budget)
        for chunk in self._chunks(path):
            sub.add(chunk)
        self._remove(path, size)
        sub.flush()
        for part, (a, b) in enumerate(sub.ranges):
            yield from sub._runs(sub._path(part), a, b, depth + 1)

    def _chunks(self, path: str) -> Iterator[np.ndarray]:
        with open(path, "rb") as f:
            while len(chunk := np.fromfile(f, dtype=self.dtype, count=self.budget)):
                yield chunk

    def _remove(self, path: str, size: int) -> None:
        os.remove(path)
        self.disk.free(size)


class CaptureOrder:
    """Joined pairs added in any order (each with its request's sequence number), put back in capture order
    (stable: a request's rows keep their order) in two float64 files, ``y`` and ``score``."""

    def __init__(self, disk: Disk, requests: int, budget: int = BUDGET) -> None:
        self.disk, self.budget = disk, budget
        span = max(budget // 2, -(-requests // 512), 1)
        self.spill = RangeSpill(disk, "q", PAIRS, np.arange(span, max(requests, 1), span, dtype=np.uint64), 0, max(requests - 1, 0), budget)

    def add(self, seqs: Any, y: Any, score: Any) -> None:
        if not len(y):
            return
        records = np.empty(len(y), dtype=PAIRS)
        records["k"] = np.frombuffer(seqs, dtype=np.int64) if not isinstance(seqs, np.ndarray) else seqs
        records["y"] = np.frombuffer(y, dtype=np.float64) if not isinstance(y, np.ndarray) else y
        records["s"] = np.frombuffer(score, dtype=np.float64) if not isinstance(score, np.ndarray) else score
        self.spill.add(records)

    def ordered(self) -> "Ordered":
        n = self.spill.count
        step = max(1, n // max(1024, min(65536, self.budget // 4)))  # a sample of the scores: where ranges are cut
        sample, seen = [], 0
        paths = {c: f"{self.disk.directory}/ordered-{c}" for c in "ys"}
        with open(paths["y"], "wb") as fy, open(paths["s"], "wb") as fs:
            for run in self.spill.runs():
                self.disk.add(len(run) * 16)
                np.ascontiguousarray(run["y"]).tofile(fy)
                scores = np.ascontiguousarray(run["s"])
                scores.tofile(fs)
                first = (-seen) % step
                sample.append(scores[first::step].copy())
                seen += len(run)
        return Ordered(self.disk, paths, n, np.concatenate(sample) if sample else np.empty(0), self.budget)


class Ordered:
    """The joined pairs in capture order on disk; :meth:`metrics` is :func:`training.metrics.task_metrics`."""

    def __init__(self, disk: Disk, paths: dict[str, str], n: int, sample: np.ndarray, budget: int) -> None:
        self.disk, self.paths, self.n, self.sample, self.budget = disk, paths, n, sample, budget
        self._files = {c: open(p, "rb") for c, p in paths.items()}

    def _read(self, column: str, at: int, count: int) -> np.ndarray:
        f = self._files[column]
        f.seek(at * 8)
        return np.fromfile(f, dtype=np.float64, count=count)

    def close(self) -> None:
        for column, f in self._files.items():
            f.close()
            if os.path.exists(self.paths[column]):
                self.disk.free(os.path.getsize(self.paths[column]))
                os.remove(self.paths[column])

    def metrics(self, task: str) -> dict[str, float | None]:
        try:
            if self.n == 0:
                return {}
            return {"binary": self._binary, "multiclass": self._multiclass, "regression": self._regression}[task]()
        finally:
            self.close()

    def _binary(self) -> dict[str, float | None]:
        n = self.n
        counts = {"tp": 0, "fp": 0, "fn": 0, "correct": 0, "positives": 0}
        keys = score_keys(self.sample)
        keys.sort()
        parts = max(1, min(4096, -(-2 * n // self.budget)))
        bounds = np.unique(keys[(np.arange(1, parts) * len(keys)) // parts]) if parts > 1 and len(keys) else np.empty(0, np.uint64)
        ranked = RangeSpill(self.disk, "r", RANKED, bounds, 0, (1 << 64) - 1, self.budget)

        def leaf(at: int, count: int) -> list:
            y = self._read("y", at, count).astype(np.int64)
            p = self._read("s", at, count)
            predicted = (p >= THRESHOLD).astype(np.int64)
            counts["tp"] += int(((predicted == 1) & (y == 1)).sum())
            counts["fp"] += int(((predicted == 1) & (y == 0)).sum())
            counts["fn"] += int(((predicted == 0) & (y == 1)).sum())
            counts["correct"] += int((predicted == y).sum())
            counts["positives"] += int(y.sum())
            records = np.empty(count, dtype=RANKED)
            records["k"] = score_keys(p)
            records["f"] = y == 1
            ranked.add(records)
            clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
            return [np.add.reduce(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))]

        (log_sum,) = pairwise_sum(n, leaf)
        tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
        return {
            "roc_auc": _roc_auc(ranked, counts["positives"], n),
            "accuracy": float(np.float64(counts["correct"]) / n),
            "f1": float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0,
            "log_loss": float(-(log_sum / n)),
            "precision": float(tp / (tp + fp)) if tp + fp else 0.0,
            "recall": float(tp / (tp + fn)) if tp + fn else 0.0,
        }

    def _multiclass(self) -> dict[str, float | None]:
        from collections import Counter

        true, said, both = Counter(), Counter(), Counter()
        correct = 0
        for at in range(0, self.n, LEAF):
            y = self._read("y", at, min(LEAF, self.n - at))
            predicted = self._read("s", at, min(LEAF, self.n - at))
            hit = predicted == y
            correct += int(hit.sum())
            for counter, values in ((true, y), (said, predicted), (both, y[hit])):
                classes, k = np.unique(values, return_counts=True)
                counter.update(dict(zip(classes.tolist(), k.tolist())))
        scores = []
        for c in sorted(true.keys() | said.keys()):
            tp = both[c]
            fp, fn = said[c] - tp, true[c] - tp
            scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
        return {"accuracy": float(np.float64(correct) / self.n), "f1_macro": float(np.mean(scores))}

    def _regression(self) -> dict[str, float | None]:
        n = self.n

        def errors(at: int, count: int) -> list:
            y = self._read("y", at, count)
            error = self._read("s", at, count) - y
            return [np.add.reduce(y), np.add.reduce(error**2), np.add.reduce(np.abs(error))]

        y_sum, squares, absolute = pairwise_sum(n, errors)
        mean = y_sum / n

        def spread(at: int, count: int) -> list:
            return [np.add.reduce((self._read("y", at, count) - mean) ** 2)]

        (total,) = pairwise_sum(n, spread)
        total, residual = float(total), float(squares)
        return {
            "rmse": float(np.sqrt(squares / n)),
            "mae": float(absolute / n),
            "r2": (1.0 - residual / total) if total else (1.0 if residual == 0 else 0.0),
        }


def _roc_auc(ranked: RangeSpill, positives: int, n: int) -> float | None:
    """:func:`training.metrics.roc_auc` from pairs ranked out of core (``positives``: the labels' integer sum)."""
    negatives = n - positives
    if positives == 0 or negatives == 0:
        for _ in ranked.runs():  # remove the spill
            pass
        return None
    below, twice, pending = 0, 0, None  # pending: the last tie group of a run (key, size, ones): it may go on
    for run in ranked.runs():
        keys = run["k"]
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
        sizes = np.diff(np.r_[starts, len(keys)])
        ones = np.add.reduceat(run["f"].astype(np.int64), starts)
        if pending is not None:
            if keys[0] == pending[0]:
                sizes[0] += pending[1]
                ones[0] += pending[2]
            else:
                twice += pending[2] * (2 * below + pending[1] + 1)
                below += pending[1]
        # A group of `size` tied scores after `below` lower ones spans ranks below+1 .. below+size: mean rank
        # below + (size + 1) / 2, so its `ones` positives add ones * (2 * below + size + 1) to twice the rank sum.
        done = sizes[:-1]
        before = below + np.r_[0, np.cumsum(done)[:-1]] if len(done) else np.empty(0, np.int64)
        twice += int((ones[:-1] * (2 * before + done + 1)).sum())
        below += int(done.sum())
        pending = (keys[-1], int(sizes[-1]), int(ones[-1]))
    if pending is not None:
        twice += pending[2] * (2 * below + pending[1] + 1)
    u = np.float64(twice / 2) - positives * (positives + 1) / 2.0
    return float(u / (positives * negatives))
