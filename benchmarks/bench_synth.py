"""Synth benchmark: our program's cost against the bare cost of registering the same resources.

Two measures, each against two floors (see ``benchmarks/synth_floor.py``):

* **warm** (in one process, after a warm-up): ``synth_keys`` (config validation, the components, policy builders,
  the recording monitor) against the same resources replayed to the same mock engine: the *fair* floor (inputs
  that were Outputs of other resources are Outputs of the same resources, through pulumi-aws's classes) and the
  *constant* floor (plain values: what no real program can reach).
* **cold** (what a user waits for): CPU seconds (user + system) and peak memory of a new ``mlops synth`` process
  against a new process replaying the manifest (the cold fair floor), alternated, medians. The image-URI cache
  and the build folder are warm (the first run, which fills them, is not counted).
* **cold, instructions** (``--instructions``, the dev stack): the same two processes run once each under
  valgrind's callgrind, which counts the instructions they execute. On a shared virtual machine the CPU-s
  ratio of two medians moves by ±0.1 from one run to the next; the count is the same whatever else the
  machine is doing (``PYTHONHASHSEED=0``), so it is the figure to judge a change by. ~50x slower: ~5 min.

Stacks: the dev stack and stacks of 1, 10 and 50 copies of its model. ``make bench`` runs it; ``--quick`` runs
fewer repeats.
"""

from __future__ import annotations

import argparse
import compileall
import copy
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.synth_floor import replay  # noqa: E402
from infra.config import STACKS_DIR  # noqa: E402
from infra.review.synth import run_program, synth_keys  # noqa: E402


def stack_keys(models: int | None) -> dict:
    keys = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())["config"]
    if models is not None:
        template = keys["mlops:models"]["churn"]
        keys["mlops:models"] = {f"model{i:02d}": copy.deepcopy(template) for i in range(models)}
    return keys


def cpu(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        samples.append(time.process_time() - t)
    return statistics.median(samples)


def run(cmd: list[str]) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS (MB) of one run of ``cmd``, from GNU time."""
    proc = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", *cmd], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    user, system, rss = proc.stderr.strip().splitlines()[-1].split()
    return float(user) + float(system), int(rss) / 1024


def cold_commands(stack_file: Path, manifest: Path) -> tuple[list[str], list[str]]:
    """A cold ``mlops synth`` of ``stack_file`` writing ``manifest``, and the cold fair floor replaying it; the synth
    is run once here (it fills the image cache and build folder and writes the manifest the floor replays)."""
    program = [sys.executable, "-c", "from infra.cli import main; main()", "synth", "--file", str(stack_file),
               "--out", str(manifest), "--format", "json"]
    run(program)
    return program, [sys.executable, str(ROOT / "benchmarks" / "synth_floor.py"), str(manifest)]


def cold(stack_file: Path, manifest: Path, repeats: int) -> dict[str, float]:
    program, floor = cold_commands(stack_file, manifest)
    ours, base = [], []
    for _ in range(repeats):  # alternated: a busy spell hits both
        ours.append(run(program))
        base.append(run(floor))
    return {"ours": statistics.median(c for c, _ in ours), "floor": statistics.median(c for c, _ in base),
            "ours_mb": max(m for _, m in ours), "floor_mb": max(m for _, m in base)}


def instructions(cmd: list[str]) -> int:
    """Instructions one run of ``cmd`` executes, counted by callgrind (no profile file is kept)."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={os.devnull}", *cmd], cwd=ROOT,
                          env={**os.environ, "PYTHONHASHSEED": "0"}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode or not found:
        raise SystemExit(f"{' '.join(cmd)} under callgrind failed:\n{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def cold_instructions(stack_file: Path, manifest: Path) -> tuple[int, int]:
    """Instructions of a cold ``mlops synth`` and of the cold fair floor replaying its manifest (caches warm)."""
    program, floor = cold_commands(stack_file, manifest)
    return instructions(program), instructions(floor)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="3 repeats, no 50-model cold case")
    ap.add_argument("--instructions", action="store_true",
                    help="only the dev stack's cold instruction counts (valgrind's callgrind, ~5 min)")
    args = ap.parse_args()
    if args.instructions:
        return print_instructions()
    repeats = 3 if args.quick else args.repeats
    cases = [("dev stack", None), ("1 model", 1), ("10 models", 10), ("50 models", 50)]

    print("## warm (one process)\n")
    print("| stack | resources | program (CPU-s) | fair floor | ratio | constant floor | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, models in cases:
        keys = stack_keys(models)
        manifest = synth_keys("bench", keys, "us-east-1")  # warm-up, and the resources to replay
        ours = cpu(lambda: synth_keys("bench", keys, "us-east-1"), repeats)
        fair = cpu(lambda: run_program(lambda: replay(manifest), stack="bench", region="us-east-1"), repeats)
        const = cpu(lambda: run_program(lambda: replay(manifest, fair=False), stack="bench", region="us-east-1"), repeats)
        print(f"| {label} | {len(manifest.resources)} | {ours:.3f} | {fair:.3f} | {ours / fair:.2f}x | {const:.3f} | {ours / const:.2f}x |")

    compile_for_cold()
    print("\n## cold (a new process each; CPU-s = user + system, medians of alternated runs)\n")
    print("| stack | resources | `mlops synth` CPU-s | cold fair floor | ratio | peak MB (ours / floor) | per model (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    previous = None
    with tempfile.TemporaryDirectory() as tmp:
        for label, models in cases if not args.quick else cases[:3]:
            stack_file = Path(tmp) / f"Pulumi.bench{models or ''}.yaml"
            stack_file.write_text(yaml.safe_dump({"config": stack_keys(models)}))
            manifest = Path(tmp) / f"bench{models or ''}.json"
            r = cold(stack_file, manifest, repeats)
            count = len(json.loads(manifest.read_text())["resources"])
            marginal = "-"
            if models and previous and previous[0]:
                marginal = f"{(r['ours'] - previous[1]) / (models - previous[0]) * 1000:.0f}"
            if models:
                previous = (models, r["ours"])
            print(f"| {label} | {count} | {r['ours']:.2f} | {r['floor']:.2f} | {r['ours'] / r['floor']:.2f}x | "
                  f"{r['ours_mb']:.0f} / {r['floor_mb']:.0f} | {marginal} |")
    print(f"\n{os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average {os.getloadavg()[0]:.1f} at the end.")


def compile_for_cold() -> None:
    # As pip leaves an installed package: bytecode compiled (an editable checkout under PYTHONDONTWRITEBYTECODE,
    # as CI sets, would otherwise recompile every module of ours in every process and the floor's few).
    # pulumi-aws too: `make install` leaves it to be compiled on first import, which this environment forbids.
    import pulumi_aws

    for package in (ROOT / "components", ROOT / "infra", ROOT / "training", ROOT / "benchmarks",
                    Path(pulumi_aws.__file__).parent):
        compileall.compile_dir(package, quiet=1, workers=0)


def print_instructions() -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (Debian's package valgrind)")
    compile_for_cold()
    with tempfile.TemporaryDirectory() as tmp:
        stack_file = Path(tmp) / "Pulumi.bench.yaml"
        stack_file.write_text(yaml.safe_dump({"config": stack_keys(None)}))
        ours, floor = cold_instructions(stack_file, Path(tmp) / "bench.json")
    print("## cold, instructions (one run each under callgrind, PYTHONHASHSEED=0)\n")
    print("| stack | `mlops synth` instructions | cold fair floor | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| dev stack | {ours / 1e9:.3f} G | {floor / 1e9:.3f} G | {ours / floor:.3f}x |")


if __name__ == "__main__":
    main()
