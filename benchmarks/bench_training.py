"""Training benchmark: the real entry points on generated churn data of 100k and 1M rows.

For each size it generates the data (``training.sample_data``, timed in this process), then runs
``python -m training.validate`` and ``python -m training.train`` (default hyperparameters) as
subprocesses, as a SageMaker job would, and measures each one's wall time and peak resident memory
(``ru_maxrss`` of that child, from ``wait4``). Prints a markdown table.

    python benchmarks/bench_training.py [--rows 100000 1000000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from training.sample_data import CONTRACT_PATH, generate, write_csv  # noqa: E402


def measured(args: list[str]) -> tuple[float, float, str]:
    """Run ``python -m <args>``; return wall seconds, peak RSS in MiB and stdout. Exits on failure."""
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe: nothing blocks while stdout is read
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
        out = process.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, unlike RUSAGE_CHILDREN
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            sys.exit(f"{' '.join(args)} failed:\n{err.read()}")
    return wall, usage.ru_maxrss / 1024, out  # ru_maxrss is in KiB on Linux


def bench(rows: int, work: Path) -> dict[str, str]:
    started = time.perf_counter()
    frame = generate(rows, seed=0)
    generated = time.perf_counter() - started
    data = work / f"train-{rows}" / "churn.csv"
    started = time.perf_counter()
    write_csv(frame, data)
    written = time.perf_counter() - started
    del frame

    contract = ["--contract", str(CONTRACT_PATH)]
    out = work / f"out-{rows}"
    v_wall, v_rss, _ = measured(["training.validate", "--data", str(data.parent), "--output-dir", str(out), *contract])
    t_wall, t_rss, stdout = measured(
        ["training.train", "--train", str(data.parent), "--model-dir", str(work / f"model-{rows}"),
         "--output-data-dir", str(out), *contract]
    )
    fit = re.search(r"fitted \d+ rows in ([0-9.]+) s", stdout)
    auc = re.search(r"validation:roc_auc=([0-9.]+)", stdout)
    return {
        "rows": f"{rows:,}",
        "generate + write CSV": f"{generated:.2f} s + {written:.2f} s ({data.stat().st_size / 2**20:.0f} MiB)",
        "validate: wall / peak RSS": f"{v_wall:.1f} s / {v_rss:.0f} MiB",
        "train: wall / fit / peak RSS": f"{t_wall:.1f} s / {fit.group(1) if fit else '?'} s / {t_rss:.0f} MiB",
        "validation roc_auc": auc.group(1) if auc else "?",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [bench(rows, Path(tmp)) for rows in args.rows]
    headers = list(results[0])
    print(f"training benchmark (python {sys.version.split()[0]}, {os.cpu_count()} CPUs, default hyperparameters)\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "|".join("---" for _ in headers) + "|")
    for r in results:
        print("| " + " | ".join(r[h] for h in headers) + " |")


if __name__ == "__main__":
    main()
