"""What a cold ``mlops synth`` loads: neither the SageMaker SDK (image URIs come from the cache once resolved)
nor a pulumi-aws service module the stack registers no resource of, nor rich when it prints JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from infra.cli import main
manifest, modules = sys.argv[1:3]
sys.argv = ["mlops", "synth", "--stack", "dev", "--out", manifest, "--format", "json"]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
loaded = [n for n, m in sys.modules.items() if type(m).__name__ != "_LazyModule" and
          (not n.startswith("pulumi_aws.") or hasattr(m, "__path__"))]  # pulumi-aws: its service packages
json.dump(loaded, open(modules, "w"))
"""


def cold_synth(tmp_path: Path, run: int) -> tuple[dict, set[str]]:
    env = {**os.environ, "MLOPS_IMAGE_CACHE": str(tmp_path / "image-uris.json")}
    manifest, modules = tmp_path / f"dev-{run}.json", tmp_path / f"modules-{run}.json"
    proc = subprocess.run([sys.executable, "-c", PROBE, str(manifest), str(modules)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(manifest.read_text()), set(json.loads(modules.read_text()))


def test_second_cold_synth_loads_no_sdk_and_only_the_aws_modules_it_uses(tmp_path):
    first, first_modules = cold_synth(tmp_path, 1)
    assert any(m.startswith("sagemaker.core") for m in first_modules), "the first synth asks the SDK"
    second, modules = cold_synth(tmp_path, 2)
    assert second["resources"] and {r["urn"] for r in second["resources"]} == {r["urn"] for r in first["resources"]}
    assert second["outputs"]["models"] == first["outputs"]["models"]  # the same images, from the cache
    assert not [m for m in modules if m.split(".")[0] == "sagemaker"]
    assert not [m for m in modules if m.split(".")[0] == "rich"], "--format json prints nothing with rich"
    assert [m for m in modules if m.startswith("infra.cli.commands.")] == ["infra.cli.commands.synth"]
    services = {r["type"].split(":")[1].split("/")[0] for r in second["resources"] if r["type"].startswith("aws:")}
    used = {"lambda_" if s == "lambda" else s for s in services}
    loaded = {m.split(".")[1] for m in modules if m.startswith("pulumi_aws.") and not m.split(".")[1].startswith("_")}
    # ``config`` is the provider's own configuration package, loaded by ``import pulumi_aws``.
    assert loaded - used - {"config"} == set(), f"pulumi-aws services loaded without a resource of theirs: {sorted(loaded - used)}"
    assert used <= loaded
