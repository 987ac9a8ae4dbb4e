"""Synth benchmark: our program's cost against the bare cost of registering the same resources.

For the dev stack and stacks of 1, 10 and 50 models it times ``synth_keys`` (config validation, the
components, policy builders, the recording monitor) and a floor that registers the very same
resources (types, names, parents, inputs copied from the manifest) straight to the same mock
engine with no program logic. Prints a markdown table; run with ``make bench``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import pulumi
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.config import STACKS_DIR  # noqa: E402
from infra.review.synth import Manifest, run_program, synth_keys  # noqa: E402


def stack_keys(models: int | None) -> dict:
    keys = yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())["config"]
    if models is not None:
        template = keys["mlops:models"]["churn"]
        keys["mlops:models"] = {f"model{i:02d}": copy.deepcopy(template) for i in range(models)}
    return keys


def floor(manifest: Manifest) -> None:
    """Register the manifest's resources as they are: the engine's cost, none of ours."""
    made: dict[str, pulumi.Resource] = {}
    for r in manifest.resources:
        parent = made.get(r["parent"]) if r["parent"] else None
        opts = pulumi.ResourceOptions(parent=parent)
        if r["custom"]:
            made[r["urn"]] = pulumi.CustomResource(r["type"], r["name"], dict(r["inputs"]), opts)
        else:
            made[r["urn"]] = pulumi.ComponentResource(r["type"], r["name"], None, opts)


def timed(fn, repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cases = [("dev stack", None), ("1 model", 1), ("10 models", 10), ("50 models", 50)]
    print("| stack | resources | program (s) | floor (s) | overhead | per model (ms) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, models in cases:
        keys = stack_keys(models)
        manifest = synth_keys("bench", keys, "us-east-1")  # warm-up, and the resources to replay
        ours = timed(lambda: synth_keys("bench", keys, "us-east-1"), args.repeats)
        bare = timed(lambda: run_program(lambda: floor(manifest), stack="bench", region="us-east-1"), args.repeats)
        per_model = f"{ours / models * 1000:.1f}" if models else "-"
        print(f"| {label} | {len(manifest.resources)} | {ours:.3f} | {bare:.3f} | {(ours / bare - 1) * 100:+.0f}% | {per_model} |")


if __name__ == "__main__":
    main()
