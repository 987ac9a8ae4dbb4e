"""Model-quality benchmark: N captured predictions joined with N ground-truth labels, two ways, each in its own process.

- **ours**: the quality job's join (``training.quality``): the labels into a dict, the capture files streamed
  line by line, metrics from ``training.metrics``.
- **pandas floor**: what one would write by hand: every capture and label record ``json.loads``-ed into a
  DataFrame, ``merge`` on the id, scikit-learn's metrics. Its metrics must equal ours.

The data: binary predictions with probabilities (one row per request, as the built-in recipe's endpoint answers),
an ``inferenceId`` on every request, labels for 90% of them (the rest not labelled yet) plus 5% for ids never
captured; 10 capture files and 5 label files. Prints a markdown table: time, records/s, peak RSS of the process.

Run::

    .venv/bin/python benchmarks/bench_quality.py [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.quality import Labels, QualityScorer, ground_truth_record  # noqa: E402

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


def ours(folder: Path) -> dict:
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


def child(method: str, folder: Path) -> None:
    start = time.perf_counter()
    result = {"ours": ours, "floor": floor}[method](folder)
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["ours", "floor"])
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.data))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(args.rows, folder)
        best: dict[str, dict] = {}
        for _ in range(args.repeats):
            for method in ("ours", "floor"):  # alternated, so load on the machine hits both alike
                out = subprocess.run([sys.executable, __file__, "--child", method, "--data", tmp], capture_output=True, text=True, check=True)
                result = json.loads(out.stdout)
                if method not in best or result["seconds"] < best[method]["seconds"]:
                    best[method] = result
    a, b = best["ours"], best["floor"]
    assert a["joined"] == b["joined"], (a["joined"], b["joined"])
    worst = max(abs(a["metrics"][k] - b["metrics"][k]) for k in b["metrics"])
    print(f"{args.rows:,} captured predictions, {int(args.rows * 0.95):,} labels; best of {args.repeats}\n")
    print("| method | time (s) | records/s | peak RSS (MB) | vs ours |")
    print("|---|---:|---:|---:|---:|")
    for name, r in (("ours (`training.quality`, streaming)", a), ("pandas merge + scikit-learn metrics (floor)", b)):
        print(f"| {name} | {r['seconds']:.2f} | {args.rows / r['seconds']:,.0f} | {r['peak_rss_mb']:.0f} | {r['seconds'] / a['seconds']:.1f}x |")
    print(f"\nsame {a['joined']:,} joined pairs; largest metric difference {worst:.1e}")


if __name__ == "__main__":
    main()
