"""Drift benchmark: capture records x 20 features, scored by several methods on the same files, each in its own process.

- **ours**: the drift job's scorer (``training.drift``), streaming the capture files as the job streams S3 objects,
  with the reader the interpreter gives it (``auto``; the processing engine: the scikit-learn 1.9-0 image has
  pyarrow): chunks of compact records read from their bytes by numpy, any other chunk by pyarrow's CSV reader;
  **ours numpy**: the same job with the numpy reader only (what the Lambda ships).
- **pyarrow floor** (the reference the job is held to): ``pyarrow.json.read_json`` per file, the request
  payloads joined in Arrow and read by ``pyarrow.csv`` with typed columns, then numpy bins (the job's bins,
  ``np.searchsorted`` + ``np.bincount``) and Arrow ``value_counts`` for categories. Same PSI as ours.
- **numpy floor**: every record ``json.loads``-ed into memory, ``np.histogram`` / ``np.unique`` per feature.
- **polars**, **duckdb**: the same reading and bins written with each (NDJSON reader, CSV reader / SQL split).
- **evidently** (``Report([DataDriftPreset()])``), **alibi-detect** (``TabularDrift``), **nannyml**
  (``UnivariateDriftCalculator``; also with a constant threshold), **whylogs** (profiles + ``calculate_drift_scores``):
  each tool's own drift test and thresholds on DataFrames of the same records, its verdicts reported.

Each method runs in a child process of its own interpreter: ours and the pyarrow floor in the same one (the
pyarrow virtualenv), the others in theirs (``--env NAME=PYTHON``; default ``$MLOPS_BENCHENVS/<name>/bin/python``,
``.bench-envs/`` without it, when it exists; a method without an interpreter is skipped and said so). Ours, ours
numpy and the floor alternate, ``--repeats`` times each, and the medians are compared: CPU seconds per record
(user + system, all threads) and peak RSS, printed as ratios to the floor; the others run once.

The data: a 20-feature contract (12 float, two of them with ~1% missing values; 4 int; 3 category; 1 bool),
100k training rows for the baseline, the capture records in 20 hourly files with 4 features drifted (two
floats shifted by 0.75 sd, one int by +1, one category's mix changed). Every method must flag exactly those.

Run (not part of ``make test``; the virtualenvs as in the README's Benchmarks)::

    .venv/bin/python benchmarks/bench_drift.py [--rows 1000000] [--repeats 5] [--methods ours,ours numpy,pyarrow floor,...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.capture import capture_line  # noqa: E402
from training.drift import BOOL_TOKENS, PSI_FLOOR, DriftScorer, load_baseline  # noqa: E402
from benchmarks.measure import BENCHENVS, cpu_seconds, peak_rss_mb  # noqa: E402

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


def ours(directory: Path, reader: str = "auto") -> dict:
    baseline = load_baseline(json.loads((directory / "baseline.json").read_text()), "baseline.json")
    scorer = DriftScorer(baseline, reader=reader)
    for file in capture_files(directory):
        with file.open("rb") as f:
            scorer.feed_stream(f)
    report = scorer.report()
    return {"records": report["records"]["scored"], "drifted": report["drifted_features"], "psi": {k: v["psi"] for k, v in report["features"].items()}}


def ours_numpy(directory: Path) -> dict:
    """The Lambda's reader (numpy only), in the same interpreter as the others."""
    return ours(directory, reader="numpy")


def _bins(doc: dict, name: str, numeric: np.ndarray | None = None, tally: dict | None = None) -> np.ndarray:
    """Counts over the job's bins: numeric bins then missing; categories, unseen, then missing."""
    spec = doc["features"][name]
    if spec["kind"] == "numeric":
        absent = np.isnan(numeric)
        edges = np.asarray(spec["bins"]["edges"])
        return np.append(np.bincount(np.searchsorted(edges, numeric[~absent], side="right"), minlength=edges.size + 1), absent.sum())
    freq = spec["frequencies"]
    tally = dict(tally)
    if set(freq) <= {"true", "false"}:
        merged: dict = {}
        for k, v in tally.items():
            key = None if k is None else BOOL_TOKENS.get(str(k).strip().lower(), str(k))
            merged[key] = merged.get(key, 0) + v
        tally = merged
    absent = tally.pop(None, 0) + tally.pop("", 0)
    seen = [tally.pop(c, 0) for c in freq]
    return np.array([*seen, sum(tally.values()), absent])


def _psi_of_counts(doc: dict, counts: dict[str, np.ndarray]) -> dict:
    psi = {}
    for name, spec in doc["features"].items():
        c = counts[name]
        actual = c / c.sum()
        missing = spec["null_count"] / (spec["count"] + spec["null_count"])
        shares = np.array(spec["bins"]["proportions"]) if spec["kind"] == "numeric" else np.append(np.array(list(spec["frequencies"].values())), 0.0)
        expected = np.append(shares * (1 - missing), missing)
        a, e = np.maximum(actual, PSI_FLOOR), np.maximum(expected, PSI_FLOOR)
        psi[name] = float(np.sum((a - e) * np.log(a / e)))
    return psi


def _result(doc: dict, counts: dict[str, np.ndarray]) -> dict:
    psi = _psi_of_counts(doc, counts)
    return {"records": int(next(iter(counts.values())).sum()), "drifted": sorted(f for f, v in psi.items() if v > 0.2), "psi": psi}


def _add(counts: dict, name: str, c: np.ndarray) -> None:
    counts[name] = counts.get(name, 0) + c


def pyarrow_floor(directory: Path) -> dict:
    """pyarrow's JSON and CSV readers and numpy bins, a file at a time (the file's table in memory)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.json as pj

    doc = json.loads((directory / "baseline.json").read_text())
    names = list(doc["features"])
    types = {n: pa.float64() if s["kind"] == "numeric" else pa.string() for n, s in doc["features"].items()}
    counts: dict = {}
    for file in capture_files(directory):
        data = pj.read_json(file).column("captureData").combine_chunks().field("endpointInput").field("data")
        text = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(data)], pa.int32()), data), "\n")[0].as_buffer()
        table = pcsv.read_csv(
            pa.BufferReader(text), read_options=pcsv.ReadOptions(column_names=names),
            convert_options=pcsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True),
        )
        for name in names:
            column = table.column(name)
            if types[name] == pa.float64():
                _add(counts, name, _bins(doc, name, numeric=column.to_numpy()))
            else:
                _add(counts, name, _bins(doc, name, tally={v["values"]: v["counts"] for v in pc.value_counts(column).to_pylist()}))
    return _result(doc, counts)


def polars_method(directory: Path) -> dict:
    import polars as pl

    doc = json.loads((directory / "baseline.json").read_text())
    names = list(doc["features"])
    schema = {n: pl.Float64 if s["kind"] == "numeric" else pl.String for n, s in doc["features"].items()}
    counts: dict = {}
    for file in capture_files(directory):
        data = pl.read_ndjson(file)["captureData"].struct.field("endpointInput").struct.field("data")
        text = data.str.join("\n").item().encode()
        table = pl.read_csv(text, has_header=False, new_columns=names, schema_overrides=schema, null_values=[""])
        for name in names:
            if schema[name] == pl.Float64:
                _add(counts, name, _bins(doc, name, numeric=table[name].fill_null(np.nan).to_numpy()))
            else:
                vc = table[name].value_counts()
                _add(counts, name, _bins(doc, name, tally=dict(zip(vc[name].to_list(), vc["count"].to_list()))))
    return _result(doc, counts)


def duckdb_method(directory: Path) -> dict:
    import duckdb

    doc = json.loads((directory / "baseline.json").read_text())
    names = list(doc["features"])
    con = duckdb.connect()
    split = ", ".join(
        f"TRY_CAST(NULLIF(c[{i + 1}], '') AS DOUBLE) AS {n}" if doc["features"][n]["kind"] == "numeric" else f"NULLIF(c[{i + 1}], '') AS {n}"
        for i, n in enumerate(names)
    )
    counts: dict = {}
    for file in capture_files(directory):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE t AS SELECT {split} FROM (SELECT string_split(captureData.endpointInput.data, ',') AS c "
            f"FROM read_ndjson('{file}', columns={{captureData: 'STRUCT(endpointInput STRUCT(data VARCHAR))'}}))"
        )
        for name in names:
            if doc["features"][name]["kind"] == "numeric":
                x = con.execute(f"SELECT coalesce({name}, 'NaN'::DOUBLE) FROM t").fetchnumpy()
                _add(counts, name, _bins(doc, name, numeric=next(iter(x.values()))))
            else:
                rows = con.execute(f"SELECT {name}, count(*) FROM t GROUP BY 1").fetchall()
                _add(counts, name, _bins(doc, name, tally=dict(rows)))
    return _result(doc, counts)


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


def frames(directory: Path):
    """The capture records and the training rows as pandas DataFrames (numbers as float64, categories and the bool
    as strings): what the comparison tools take. Every record in memory, as each tool needs."""
    import pandas as pd

    table = floor_table(directory)
    frame = {}
    for j, f in enumerate(FEATURES):
        col = table[:, j]
        frame[f] = np.where(col == "", "nan", col).astype(np.float64) if f in FLOATS + INTS else col
    current = pd.DataFrame(frame)
    del table
    reference = pd.read_csv(directory / "reference.csv", dtype={f: str for f in CATEGORIES})[FEATURES]
    reference["b00"] = reference["b00"].astype(str)
    return current, reference


def evidently(directory: Path) -> dict:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    started = time.perf_counter()
    current, reference = frames(directory)
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


def alibi_detect(directory: Path) -> dict:
    """``TabularDrift``: Kolmogorov-Smirnov per numeric feature, chi-squared per categorical one, p-value 0.05 with
    its default Bonferroni correction; missing values (which it cannot take) as one value below every number."""
    from alibi_detect.cd import TabularDrift

    started = time.perf_counter()
    current, reference = frames(directory)
    parsed = time.perf_counter() - started

    def matrix(frame):
        columns = []
        for f in FEATURES:
            if f in FLOATS + INTS:
                x = frame[f].to_numpy(dtype=np.float64)
                columns.append(np.where(np.isnan(x), -1e12, x))
            else:
                cats = sorted(set(reference[f]))
                columns.append(frame[f].map({c: i for i, c in enumerate(cats)}).fillna(len(cats)).to_numpy(dtype=np.float64))
        return np.column_stack(columns).astype(np.float32)

    categorical = {FEATURES.index(f): None for f in [*CATEGORIES, *BOOLS]}
    detector = TabularDrift(matrix(reference), p_val=0.05, categories_per_feature=categorical)
    verdict = detector.predict(matrix(current), drift_type="feature")["data"]
    return {"records": len(current), "drifted": sorted(f for f, d in zip(FEATURES, verdict["is_drift"]) if d), "parse_seconds": parsed}


def nannyml(directory: Path, constant: bool = False) -> dict:
    """``UnivariateDriftCalculator`` with its default method (Jensen-Shannon) and chunking (the reference and the
    capture each in 10 chunks); a feature is flagged when any capture chunk alerts. Its default threshold is learnt
    from the spread over the reference's chunks (mean + 3 sd); ``constant`` uses ``ConstantThreshold(upper=0.1)``."""
    import nannyml as nml
    from nannyml.thresholds import ConstantThreshold

    started = time.perf_counter()
    current, reference = frames(directory)
    parsed = time.perf_counter() - started
    extra = {"thresholds": {"jensen_shannon": ConstantThreshold(upper=0.1)}} if constant else {}
    calculator = nml.UnivariateDriftCalculator(column_names=FEATURES, treat_as_categorical=[*CATEGORIES, *BOOLS], **extra)
    calculator.fit(reference)
    result = calculator.calculate(current).filter(period="analysis").to_df()
    drifted = sorted({column for column, method, field in result.columns if field == "alert" and bool(result[(column, method, field)].any())})
    return {"records": len(current), "drifted": drifted, "parse_seconds": parsed}


def nannyml_constant(directory: Path) -> dict:
    return nannyml(directory, constant=True)


def whylogs(directory: Path) -> dict:
    """Profiles of both frames (``why.log``) and ``calculate_drift_scores`` with its default algorithms and thresholds
    (Kolmogorov-Smirnov over the numeric sketches, chi-squared over the frequent items); drift = category DRIFT."""
    import whylogs as why
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    started = time.perf_counter()
    current, reference = frames(directory)
    parsed = time.perf_counter() - started
    scores = calculate_drift_scores(
        target_view=why.log(pandas=current).view(), reference_view=why.log(pandas=reference).view(), with_thresholds=True,
    )
    drifted = sorted(f for f, s in scores.items() if s and s.get("drift_category") == "DRIFT")
    return {"records": len(current), "drifted": drifted, "parse_seconds": parsed}


METHODS = {
    "ours": ours, "ours numpy": ours_numpy, "pyarrow floor": pyarrow_floor, "numpy floor": floor, "polars": polars_method, "duckdb": duckdb_method,
    "evidently": evidently, "alibi-detect": alibi_detect, "nannyml": nannyml, "nannyml constant threshold": nannyml_constant, "whylogs": whylogs,
}
ENV = {
    "ours": "pyarrow", "ours numpy": "pyarrow", "pyarrow floor": "pyarrow", "numpy floor": "pyarrow", "polars": "polars", "duckdb": "duckdb",
    "evidently": "evidently", "alibi-detect": "alibi-detect", "nannyml": "nannyml", "nannyml constant threshold": "nannyml", "whylogs": "whylogs",
}
"""Which virtualenv each method runs in (ours beside the floor: the same interpreter and numpy)."""


IMPORTS = {
    "ours": ["pyarrow", "pyarrow.csv"], "pyarrow floor": ["pyarrow", "pyarrow.compute", "pyarrow.csv", "pyarrow.json"], "polars": ["polars"],
    "duckdb": ["duckdb"], "evidently": ["pandas", "evidently", "evidently.presets"], "alibi-detect": ["pandas", "alibi_detect.cd"],
    "nannyml": ["pandas", "nannyml"], "nannyml constant threshold": ["pandas", "nannyml"], "whylogs": ["pandas", "whylogs", "whylogs.viz.drift.column_drift_algorithms"],
}
"""Imported before the clock starts, as ours imports numpy and the job's modules before it."""


def child(method: str, directory: Path) -> None:
    import importlib

    for module in IMPORTS.get(method, []):
        try:
            importlib.import_module(module)
        except ImportError:  # ours without pyarrow: the numpy reader (the Lambda's)
            if method != "ours":
                raise
    idle = peak_rss_mb()
    started, cpu = time.perf_counter(), cpu_seconds()
    result = METHODS[method](directory)
    result["cpu_seconds"] = cpu_seconds() - cpu
    result["seconds"] = time.perf_counter() - started
    result["peak_rss_mb"] = peak_rss_mb()
    result["idle_rss_mb"] = idle
    print(json.dumps(result))


def run(python: str, method: str, directory: Path) -> dict:
    out = subprocess.run([python, __file__, "--method", method, "--data", str(directory)], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{method} failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["cpu_seconds"])
    pick = dict(ordered[len(ordered) // 2])
    pick["peak_rss_mb"] = statistics.median(r["peak_rss_mb"] for r in runs)
    pick["seconds"] = statistics.median(r["seconds"] for r in runs)
    pick["cpu_range"] = (ordered[0]["cpu_seconds"], ordered[-1]["cpu_seconds"])
    return pick


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5, help="alternated runs of ours and the pyarrow floor (medians); the others run once")
    ap.add_argument("--data", type=Path, help="generated data directory (kept; default: a temporary one)")
    ap.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    ap.add_argument("--env", action="append", default=[], metavar="NAME=PYTHON", help="interpreter of a virtualenv (pyarrow, polars, duckdb, evidently)")
    ap.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.method:
        child(args.method, args.data)
        return

    pythons = {name: str(BENCHENVS / name / "bin" / "python") for name in set(ENV.values()) if (BENCHENVS / name / "bin" / "python").exists()}
    pythons |= dict(item.split("=", 1) for item in args.env)
    wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
    for method in ("ours", "ours numpy", "numpy floor"):  # numpy only: without the pyarrow virtualenv, this interpreter
        if ENV[method] not in pythons:
            ENV[method] = "here"
    pythons["here"] = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.data or Path(tmp)
        if not (directory / "baseline.json").exists():
            t = time.perf_counter()
            prepare(directory, args.rows)
            print(f"generated {args.rows} records in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        runs: dict[str, list[dict]] = {}
        skipped = [m for m in wanted if ENV[m] not in pythons]
        alternated = [m for m in ("ours", "ours numpy", "pyarrow floor") if m in wanted and m not in skipped]
        for _ in range(args.repeats):
            for method in alternated:
                runs.setdefault(method, []).append(run(pythons[ENV[method]], method, directory))
        for method in wanted:
            if method not in alternated and method not in skipped:
                try:
                    runs[method] = [run(pythons[ENV[method]], method, directory)]
                except RuntimeError as e:
                    skipped.append(f"{method} ({e})")
        results = {m: median(r) for m, r in runs.items()}
        records = results["ours"]["records"]

    print(f"\n{records:,} capture records x {len(FEATURES)} features, {FILES} files; drifted by construction: {', '.join(sorted(DRIFTED))}")
    print(f"medians of {args.repeats} alternated runs of {', '.join(alternated)}; the others once; load average {os.getloadavg()[0]:.2f} at the end\n")
    ref = results.get("pyarrow floor", results["ours"])
    per = {m: r["cpu_seconds"] / r["records"] for m, r in results.items()}
    print("| method | CPU (s) | CPU per record (us) | wall (s) | peak RSS (MB) | CPU per record vs floor | memory vs floor "
          "| drifted features flagged | verdicts right | largest PSI difference to ours |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|---:|")
    base = results["ours"]
    for method, r in results.items():
        diff = f"{max(abs(r['psi'][f] - base['psi'][f]) for f in FEATURES):.1e}" if "psi" in r else "-"
        print(
            f"| {method} | {r['cpu_seconds']:.2f} | {per[method] * 1e6:.2f} | {r['seconds']:.2f} | {r['peak_rss_mb']:.0f} "
            f"| {per[method] / per['pyarrow floor' if 'pyarrow floor' in per else 'ours']:.2f}x | {r['peak_rss_mb'] / ref['peak_rss_mb']:.2f}x "
            f"| {', '.join(sorted(r['drifted']))} | {'yes' if sorted(r['drifted']) == sorted(DRIFTED) else 'no'} | {diff} |"
        )
    if "pyarrow floor" in results:
        floor_ = results["pyarrow floor"]
        for method in [m for m in alternated if m != "pyarrow floor"]:
            r = results[method]
            pairs = sorted(o["cpu_seconds"] / f["cpu_seconds"] for o, f in zip(runs[method], runs["pyarrow floor"]))
            print(
                f"\n{method} / pyarrow floor: CPU per record {per[method] / per['pyarrow floor']:.2f}x "
                f"(each alternation's ratio {pairs[0]:.2f}-{pairs[-1]:.2f}x) "
                f"({method} {r['cpu_range'][0]:.2f}-{r['cpu_range'][1]:.2f} s, floor {floor_['cpu_range'][0]:.2f}-{floor_['cpu_range'][1]:.2f} s), "
                f"peak memory {r['peak_rss_mb'] / floor_['peak_rss_mb']:.2f}x ({r['peak_rss_mb']:.0f} vs {floor_['peak_rss_mb']:.0f} MB); "
                f"records/s per core: {r['records'] / r['cpu_seconds']:,.0f}"
            )
    print(f"\ninterpreter + imports alone (ours): {base['idle_rss_mb']:.0f} MB")
    if skipped:
        print(f"skipped (no interpreter, or failed): {', '.join(skipped)}")

if __name__ == "__main__":
    main()
