"""Drift benchmark: 1M capture records x 20 features, scored three ways, each in its own process.

- **ours**: the drift job's scorer (``training.drift``), streaming the capture files as the Lambda
  streams S3 objects.
- **numpy floor**: a straightforward numpy implementation of the same statistics: every record
  ``json.loads``-ed into memory, the CSV payloads split into one array, ``np.histogram`` and
  ``np.unique`` per feature. Same bins, same PSI: its scores must equal ours.
- **evidently**: ``Report([DataDriftPreset()])`` (defaults: Wasserstein distance for numeric columns,
  Jensen-Shannon for categorical ones, threshold 0.1) on the same records, parsed into a DataFrame
  the way the floor parses them, against the training data the baseline was computed from.

The data: a 20-feature contract (12 float, two of them with ~1% missing values; 4 int; 3 category;
1 bool), 100k training rows for the baseline, 1M capture records in 20 hourly files with 4 features
drifted (two floats shifted by 0.75 sd, one int by +1, one category's mix changed). Every method must
flag exactly those four. Prints a markdown table: time, records/s, peak RSS of the process.

Run (evidently needs pandas < 3, so it has its own virtualenv)::

    python3.11 -m venv .bench-venv && .bench-venv/bin/pip install -e ".[bench]"
    .bench-venv/bin/python benchmarks/bench_drift.py [--rows 1000000] [--repeats 3]
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

from training.capture import capture_line, line_chunks  # noqa: E402
from training.drift import BOOL_TOKENS, PSI_FLOOR, DriftScorer, load_baseline  # noqa: E402

FLOATS = [f"f{i:02d}" for i in range(12)]
INTS = [f"i{i:02d}" for i in range(4)]
CATEGORIES = {"c00": ["a", "b", "c", "d", "e"], "c01": ["north", "south", "east", "west"], "c02": ["basic", "standard", "premium"]}
BOOLS = ["b00"]
FEATURES = FLOATS + INTS + list(CATEGORIES) + BOOLS
NULLABLE = ("f03", "f07")
DRIFTED = {"f00", "f05", "i01", "c00"}
FILES = 20


def contract():
    from training.contract import DataContract

    columns = {f: {"type": "float", "max_null_rate": 0.05 if f in NULLABLE else 0.0} for f in FLOATS}
    columns |= {f: {"type": "int"} for f in INTS}
    columns |= {f: {"type": "category", "allowed": cats} for f, cats in CATEGORIES.items()}
    columns |= {f: {"type": "bool"} for f in BOOLS} | {"label": {"type": "int"}}
    return DataContract.model_validate({"target": "label", "columns": columns})


def generate(rows: int, seed: int, drift: bool):
    import pandas as pd

    rng = np.random.default_rng(seed)
    data = {}
    for i, f in enumerate(FLOATS):
        mean, sd = 10.0 * (i + 1), 2.0 + i
        x = rng.normal(mean, sd, rows) + (0.75 * sd * (1 if f == "f00" else -1) if drift and f in ("f00", "f05") else 0.0)
        x = np.round(x, 2)
        if f in NULLABLE:
            x[rng.random(rows) < 0.01] = np.nan
        data[f] = x
    for i, f in enumerate(INTS):
        data[f] = rng.poisson(2 + i, rows) + (1 if drift and f == "i01" else 0)
    for f, cats in CATEGORIES.items():
        p = np.full(len(cats), 1 / len(cats)) if not (drift and f == "c00") else np.array([0.5, 0.2, 0.1, 0.1, 0.1])
        data[f] = np.array(cats)[rng.choice(len(cats), rows, p=p)]
    data["b00"] = rng.random(rows) < 0.55
    data["label"] = rng.integers(0, 2, rows)
    return pd.DataFrame(data)


def prepare(directory: Path, rows: int) -> None:
    """Reference CSV, baseline.json and ``FILES`` capture files of ``rows`` records in all."""
    from training.baseline import compute_baseline
    from training.validate import validate_frame

    directory.mkdir(parents=True, exist_ok=True)
    reference = generate(100_000, seed=1, drift=False)
    reference.to_csv(directory / "reference.csv", index=False)
    typed = validate_frame(reference, contract()).frame
    (directory / "baseline.json").write_text(json.dumps(compute_baseline(typed, contract(), np.linspace(0, 1, 10))))
    current = generate(rows, seed=2, drift=True)
    cells = [np.where(np.isnan(current[f]), "", current[f].map("{:.2f}".format)) if f in FLOATS else current[f].astype(str).to_numpy() for f in FEATURES]
    per_file = -(-rows // FILES)
    for k in range(FILES):
        lines = (capture_line(",".join(r)) for r in zip(*(c[k * per_file : (k + 1) * per_file] for c in cells)))
        (directory / f"capture-{k:02d}.jsonl").write_text("\n".join(lines) + "\n")


def capture_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("capture-*.jsonl"))


# ---------------------------------------------------------------------------------------------------------------
# The three methods (each runs in a child process: python bench_drift.py --method NAME --data DIR)


def ours(directory: Path) -> dict:
    baseline = load_baseline(json.loads((directory / "baseline.json").read_text()), "baseline.json")
    scorer = DriftScorer(baseline)
    for file in capture_files(directory):
        with file.open("rb") as f:
            for lines in line_chunks(f):
                scorer.feed(lines)
    report = scorer.report()
    return {"records": report["records"]["scored"], "drifted": report["drifted_features"], "psi": {k: v["psi"] for k, v in report["features"].items()}}


def floor_table(directory: Path) -> np.ndarray:
    """Every record in memory, payloads split into one (records x features) string array."""
    data = []
    for file in capture_files(directory):
        with file.open() as f:
            for line in f:
                data.append(json.loads(line)["captureData"]["endpointInput"]["data"])
    return np.array([d.split(",") for d in data])


def floor(directory: Path) -> dict:
    doc = json.loads((directory / "baseline.json").read_text())
    table = floor_table(directory)
    n = len(table)
    psi = {}
    for j, (name, spec) in enumerate(doc["features"].items()):
        col = table[:, j]
        missing = spec["null_count"] / (spec["count"] + spec["null_count"])
        if spec["kind"] == "numeric":
            x = np.where(col == "", "nan", col).astype(np.float64)
            absent = np.isnan(x)
            counts = np.histogram(x[~absent], bins=[-np.inf, *spec["bins"]["edges"], np.inf])[0]
            actual = np.append(counts, absent.sum()) / n
            expected = np.append(np.array(spec["bins"]["proportions"]) * (1 - missing), missing)
        else:
            freq = spec["frequencies"]
            if set(freq) <= {"true", "false"}:
                col = np.vectorize(lambda v: BOOL_TOKENS.get(v.lower(), v))(col)
            values, counts = np.unique(col, return_counts=True)
            tally = dict(zip(values.tolist(), counts.tolist()))
            absent = tally.pop("", 0)
            seen = [tally.pop(c, 0) for c in freq]
            actual = np.array([*seen, sum(tally.values()), absent]) / n
            expected = np.append(np.append(np.array(list(freq.values())), 0.0) * (1 - missing), missing)
        a, e = np.maximum(actual, PSI_FLOOR), np.maximum(expected, PSI_FLOOR)
        psi[name] = float(np.sum((a - e) * np.log(a / e)))
    return {"records": n, "drifted": [f for f, s in psi.items() if s > 0.2], "psi": psi}


def evidently(directory: Path) -> dict:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    table = floor_table(directory)
    frame = {}
    for j, f in enumerate(FEATURES):
        col = table[:, j]
        frame[f] = np.where(col == "", "nan", col).astype(np.float64) if f in FLOATS + INTS else col
    current = pd.DataFrame(frame)
    del table
    reference = pd.read_csv(directory / "reference.csv", dtype={f: str for f in CATEGORIES})[FEATURES]
    reference["b00"] = reference["b00"].astype(str)
    parsed = time.perf_counter() - started
    definition = DataDefinition(numerical_columns=FLOATS + INTS, categorical_columns=[*CATEGORIES, *BOOLS])
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )
    drifted = []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift") and float(metric["value"]) >= config["threshold"]:
            drifted.append(config["column"])  # the default tests here are all distances: drift at or above the threshold
    return {"records": len(current), "drifted": sorted(drifted), "parse_seconds": parsed}


METHODS = {"ours": ours, "numpy floor": floor, "evidently": evidently}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM: unlike ru_maxrss, not carried over from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(method: str, directory: Path) -> None:
    idle = peak_rss_mb()
    started = time.perf_counter()
    result = METHODS[method](directory)
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = peak_rss_mb()
    result["idle_rss_mb"] = idle
    print(json.dumps(result))


def run(method: str, directory: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--method", method, "--data", str(directory)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3, help="runs of ours and the floor (best taken); evidently runs once")
    ap.add_argument("--data", type=Path, help="generated data directory (default: a temporary one)")
    ap.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.method:
        child(args.method, args.data)
        return

    with tempfile.TemporaryDirectory() as tmp:
        directory = args.data or Path(tmp)
        if not (directory / "baseline.json").exists():
            t = time.perf_counter()
            prepare(directory, args.rows)
            print(f"generated {args.rows} records in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        results = {}
        for method in METHODS:
            runs = [run(method, directory) for _ in range(args.repeats if method != "evidently" else 1)]
            results[method] = min(runs, key=lambda r: r["seconds"])
            print(f"{method}: {results[method]['seconds']:.2f} s", file=sys.stderr)

    base = results["ours"]
    same_scores = max(abs(base["psi"][f] - results["numpy floor"]["psi"][f]) for f in FEATURES)
    print(f"\n{args.rows:,} capture records x {len(FEATURES)} features; drifted by construction: {', '.join(sorted(DRIFTED))}\n")
    print("| method | time (s) | records/s | peak RSS (MB) | vs ours | drifted features flagged |")
    print("|---|---:|---:|---:|---:|---|")
    for method, r in results.items():
        note = f" (parse {r['parse_seconds']:.1f} s + report {r['seconds'] - r['parse_seconds']:.1f} s)" if "parse_seconds" in r else ""
        print(
            f"| {method}{note} | {r['seconds']:.2f} | {r['records'] / r['seconds']:,.0f} | {r['peak_rss_mb']:.0f} "
            f"| {r['seconds'] / base['seconds']:.1f}x | {', '.join(sorted(r['drifted']))} |"
        )
    verdicts = {m: sorted(r["drifted"]) for m, r in results.items()}
    print(f"\nsame verdicts: {'yes' if all(v == sorted(DRIFTED) for v in verdicts.values()) else f'NO {verdicts}'}; "
          f"largest PSI difference ours vs floor: {same_scores:.2e}; interpreter + imports alone: {base['idle_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
