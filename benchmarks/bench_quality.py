"""Model-quality benchmark: N captured predictions joined with N ground-truth labels, two ways, each in its own process.

- **ours**: the quality job's join (``training.quality.SpillJoin``, what ``run_job`` runs, reading each file as
  ``run_job`` reads an S3 object: ``byte_blocks`` of 1 MB chunks): labels and captures streamed into hash buckets
  on disk, joined bucket by bucket, the metrics computed out of core (``training.spill_metrics``: equal to
  ``training.metrics`` over the pairs in capture order, at most 262,144 pairs in memory).
- **in-memory join**: the join before #16 (``Labels`` + ``QualityScorer``): every label in a dict.
- **pandas floor**: what one would write by hand: every capture and label record ``json.loads``-ed into a
  DataFrame, ``merge`` on the id, scikit-learn's metrics. Its metrics must equal ours.

The data: binary predictions with probabilities (one row per request, as the built-in recipe's endpoint answers),
an ``inferenceId`` on every request, labels for 90% of them (the rest not labelled yet) plus 5% for ids never
captured; 10 capture files and 5 label files. Prints a markdown table: time, records/s, peak RSS of the process.

- **pyarrow floor**: ``pyarrow.json`` for the records and the answers inside them, Arrow's hash join, the job's
  metrics (``training.metrics``); run in the pyarrow virtualenv, beside ours (``--pyarrow-python``).

Run (not part of ``make test``)::

    python3.11 -m venv .bench-envs/pyarrow && .bench-envs/pyarrow/bin/pip install numpy pyarrow
    .venv/bin/python benchmarks/bench_quality.py [--rows 1000000] [--repeats 3]
    # memory flat with the volume: 3M predictions, ours beside the pyarrow floor only (the others take minutes)
    .venv/bin/python benchmarks/bench_quality.py --rows 3000000 --methods "ours,pyarrow floor"

``--data DIR`` keeps the generated files in DIR (made there when absent) to reuse them between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.quality import Labels, QualityScorer, SpillJoin, byte_blocks, ground_truth_record, spill_buckets  # noqa: E402
from benchmarks.measure import BENCHENVS, cpu_seconds, peak_rss_mb  # noqa: E402

CAPTURE_FILES, LABEL_FILES = 10, 5


def make_data(rows: int, folder: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, rows)
    p = np.clip(np.where(y == 1, 0.7, 0.3) + rng.normal(0, 0.2, rows), 0, 1)
    (folder / "capture").mkdir()
    (folder / "labels").mkdir()
    for f, part in enumerate(np.array_split(np.arange(rows), CAPTURE_FILES)):
        with (folder / "capture" / f"{f:02d}.jsonl").open("w") as out:
            for i in part:
                body = json.dumps({"predictions": [{"label": int(p[i] >= 0.5), "probability": float(p[i])}]})
                record = {
                    "captureData": {
                        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "12,50.5,1,basic,north,true", "encoding": "CSV"},
                        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "data": body, "encoding": "JSON"},
                    },
                    "eventMetadata": {"eventId": f"e-{i}", "inferenceId": f"req-{i}", "inferenceTime": "2026-11-30T10:00:00Z"},
                    "eventVersion": "0",
                }
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
    labelled = rng.permutation(rows)[: int(rows * 0.9)]
    strangers = [f"other-{i}" for i in range(int(rows * 0.05))]
    lines = [ground_truth_record(f"req-{i}", [int(y[i])]) for i in labelled] + [ground_truth_record(s, [1]) for s in strangers]
    for f, part in enumerate(np.array_split(np.arange(len(lines)), LABEL_FILES)):
        (folder / "labels" / f"{f:02d}.jsonl").write_text("\n".join(lines[i] for i in part) + "\n")


def _blocks(path: Path):
    """A file's lines as ``run_job`` reads an S3 object's: ``byte_blocks`` of its 1 MB chunks."""
    with path.open("rb") as f:
        yield from byte_blocks(iter(lambda: f.read(1 << 20), b""))


def ours(folder: Path) -> dict:
    """What ``run_job`` does: buckets sized from the label files' bytes, labels then captures spilled, joined."""
    label_files = sorted((folder / "labels").glob("*.jsonl"))
    scorer = SpillJoin("binary", min_records=1, buckets=spill_buckets(sum(p.stat().st_size for p in label_files)))
    for path in label_files:
        scorer.feed_label_bytes(_blocks(path))
    for path in sorted((folder / "capture").glob("*.jsonl")):
        scorer.feed_capture_bytes(_blocks(path))
    report = scorer.report()
    return {"joined": report["records"]["joined"], "metrics": report["metrics"]}


def in_memory(folder: Path) -> dict:
    """The join before #16: every label in a dict (``Labels``), the captures streamed against it."""
    labels = Labels()
    for path in sorted((folder / "labels").glob("*.jsonl")):
        with path.open() as f:
            labels.feed(f)
    scorer = QualityScorer("binary", labels, min_records=1)
    for path in sorted((folder / "capture").glob("*.jsonl")):
        with path.open() as f:
            scorer.feed(f)
    report = scorer.report()
    return {"joined": report["records"]["joined"], "metrics": report["metrics"]}


def floor(folder: Path) -> dict:
    import pandas as pd
    from sklearn import metrics as sk

    captures = []
    for path in sorted((folder / "capture").glob("*.jsonl")):
        for line in path.open():
            r = json.loads(line)
            answer = json.loads(r["captureData"]["endpointOutput"]["data"])["predictions"][0]
            captures.append((r["eventMetadata"].get("inferenceId") or r["eventMetadata"]["eventId"], answer["probability"]))
    labels = []
    for path in sorted((folder / "labels").glob("*.jsonl")):
        for line in path.open():
            r = json.loads(line)
            labels.append((r["eventMetadata"]["eventId"], float(r["groundTruthData"]["data"])))
    joined = pd.DataFrame(captures, columns=["id", "p"]).merge(pd.DataFrame(labels, columns=["id", "y"]).drop_duplicates("id", keep="last"), on="id")
    y, p = joined["y"].to_numpy().astype(int), joined["p"].to_numpy()
    predicted = (p >= 0.5).astype(int)
    return {
        "joined": len(joined),
        "metrics": {
            "roc_auc": sk.roc_auc_score(y, p), "accuracy": sk.accuracy_score(y, predicted), "f1": sk.f1_score(y, predicted),
            "log_loss": sk.log_loss(y, p, labels=[0, 1]), "precision": sk.precision_score(y, predicted), "recall": sk.recall_score(y, predicted),
        },
    }


def pyarrow_floor(folder: Path) -> dict:
    """pyarrow's JSON reader for the records and for the answers inside them, its hash join, our metrics."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj

    from training.metrics import task_metrics

    def joined_text(strings) -> pa.Buffer:
        return pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(strings)], pa.int32()), strings), "\n")[0].as_buffer()

    captures = []
    for path in sorted((folder / "capture").glob("*.jsonl")):
        table = pj.read_json(path)
        meta = table.column("eventMetadata").combine_chunks()
        ids = pc.coalesce(meta.field("inferenceId"), meta.field("eventId"))
        answers = pj.read_json(pa.BufferReader(joined_text(table.column("captureData").combine_chunks().field("endpointOutput").field("data"))))
        first = pc.list_element(answers.column("predictions"), 0).combine_chunks()
        captures.append(pa.table({"id": ids, "p": first.field("probability")}))
    labels = []
    for path in sorted((folder / "labels").glob("*.jsonl")):
        table = pj.read_json(path)
        labels.append(pa.table({
            "id": table.column("eventMetadata").combine_chunks().field("eventId"),
            "y": pc.cast(table.column("groundTruthData").combine_chunks().field("data"), pa.float64()),
        }))
    latest = pa.concat_tables(labels).group_by("id", use_threads=False).aggregate([("y", "last")]).rename_columns(["id", "y"])
    joined = pa.concat_tables(captures).join(latest, "id", join_type="inner")
    y, p = joined.column("y").to_numpy(), joined.column("p").to_numpy()
    return {"joined": joined.num_rows, "metrics": task_metrics("binary", y, p)}


METHODS = {"ours": ours, "in-memory join": in_memory, "pyarrow floor": pyarrow_floor, "floor": floor}
ENV = {"ours": "pyarrow", "in-memory join": "pyarrow", "pyarrow floor": "pyarrow", "floor": None}
"""Ours beside the pyarrow floor in its virtualenv (same interpreter and numpy); the pandas floor here."""


def child(method: str, folder: Path) -> None:
    if method == "pyarrow floor":  # imported before the clock starts, as ours imports its modules
        import pyarrow.compute  # noqa: F401
        import pyarrow.json  # noqa: F401
    start, cpu = time.perf_counter(), cpu_seconds()
    result = METHODS[method](folder)
    result["cpu_seconds"] = cpu_seconds() - cpu
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=list(METHODS))
    parser.add_argument("--data", help="a folder of data made by an earlier run (made here when absent)")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of: {', '.join(METHODS)}")
    parser.add_argument("--pyarrow-python", default=str(BENCHENVS / "pyarrow" / "bin" / "python"), help="interpreter with numpy and pyarrow")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.data))
        return
    python = {"pyarrow": args.pyarrow_python if Path(args.pyarrow_python).exists() else None, None: sys.executable}
    chosen = args.methods.split(",")
    unknown = set(chosen) - set(METHODS)
    if unknown or "ours" not in chosen:
        parser.error(f"--methods: {', '.join(sorted(unknown)) or 'ours is required'}; accepted: {', '.join(METHODS)}")
    methods = [m for m in METHODS if m in chosen and python[ENV[m]]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.data) if args.data else Path(tmp)
        if not (folder / "capture").exists():
            make_data(args.rows, folder)
        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeats):
            for method in methods:  # alternated, so load on the machine hits all alike
                out = subprocess.run([python[ENV[method]], __file__, "--child", method, "--data", str(folder)], capture_output=True, text=True, check=True)
                runs.setdefault(method, []).append(json.loads(out.stdout))
    med = {m: sorted(r, key=lambda x: x["cpu_seconds"])[len(r) // 2] for m, r in runs.items()}
    a = med["ours"]
    for m, r in med.items():
        assert r["joined"] == a["joined"], (m, r["joined"], a["joined"])
    print(f"{args.rows:,} captured predictions, {int(args.rows * 0.95):,} labels; medians of {args.repeats} alternated runs\n")
    print("| method | CPU (s) | CPU per record (us) | wall (s) | peak RSS (MB) | CPU / ours | largest metric difference to ours |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    names = {"ours": "ours (`training.quality.SpillJoin`, joined on disk by bucket)", "in-memory join": "the in-memory join before #16 (`Labels` + `QualityScorer`)", "pyarrow floor": "pyarrow JSON reader + hash join (floor)", "floor": "pandas merge + scikit-learn metrics"}
    for m, r in med.items():
        worst = max(abs(a["metrics"][k] - r["metrics"][k]) for k in r["metrics"])
        print(f"| {names[m]} | {r['cpu_seconds']:.2f} | {r['cpu_seconds'] / args.rows * 1e6:.2f} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} "
              f"| {r['cpu_seconds'] / a['cpu_seconds']:.2f}x | {worst:.1e} |")
    if "pyarrow floor" in med:
        f = med["pyarrow floor"]
        pairs = sorted(o["cpu_seconds"] / p["cpu_seconds"] for o, p in zip(runs["ours"], runs["pyarrow floor"]))
        print(f"\nours / pyarrow floor: CPU per record {a['cpu_seconds'] / f['cpu_seconds']:.2f}x, peak memory {a['peak_rss_mb'] / f['peak_rss_mb']:.2f}x; "
              f"same {a['joined']:,} joined pairs; each alternation's ratio {pairs[0]:.2f}-{pairs[-1]:.2f}x; load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
