"""Components never import the container runtime: they read what they share with the jobs and containers from
training's stdlib-only contract modules, and the serving environment is one definition for every model."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import components
import training.drift
import training.quality
from training import container_contract, monitoring_contract

RUNTIME = ("numpy", "pandas", "scipy", "sklearn", "training.drift", "training.quality", "training.inference")


def loaded_after(imports: str) -> list[str]:
    code = f"import sys\nbefore = set(sys.modules)\n{imports}\nprint(sorted(set(sys.modules) - before))\n"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.replace("'", '"'))


def test_the_dashboard_loads_no_numpy():
    loaded = loaded_after("import components.monitoring.dashboard")
    assert not [m for m in loaded if m.split(".")[0] in RUNTIME or m in RUNTIME], loaded


def test_no_component_module_loads_the_container_runtime():
    names = [m.name for m in pkgutil.walk_packages(components.__path__, "components.")]
    loaded = loaded_after("\n".join(f"import {n}" for n in names))
    assert len(names) > 20
    assert not [m for m in loaded if m.split(".")[0] in RUNTIME or m in RUNTIME], loaded


def test_the_contract_modules_import_only_the_standard_library():
    loaded = loaded_after("import training.monitoring_contract, training.container_contract")
    assert {m.split(".")[0] for m in loaded} - set(sys.stdlib_module_names) == {"training"}, loaded
    assert {m for m in loaded if m.startswith("training.")} == {"training.monitoring_contract", "training.container_contract"}


def test_the_jobs_use_the_contracts_names():
    """The Lambdas publish and read exactly what the components alarm on and grant (one definition, not a copy)."""
    for name in ("METRIC_MAX", "METRIC_RECORDS", "METRIC_PREDICTION", "METRIC_PSI", "METRIC_JS", "METRIC_MALFORMED", "JobSettings", "DriftError"):
        assert getattr(training.drift, name) is getattr(monitoring_contract, name), name
    assert training.drift.REPORTS_PREFIX is monitoring_contract.DRIFT_REPORTS_PREFIX
    for name in ("METRIC_JOINED", "METRIC_LABELS", "METRIC_UNMATCHED", "QUALITY_METRIC_PREFIX", "GROUND_TRUTH_PREFIX", "QualityJob"):
        assert getattr(training.quality, name) is getattr(monitoring_contract, name), name
    assert training.quality.REPORTS_PREFIX is monitoring_contract.QUALITY_REPORTS_PREFIX


def test_the_drift_lambda_package_carries_the_contract():
    from components.monitoring.drift import LAMBDA_MODULES

    assert "monitoring_contract.py" in LAMBDA_MODULES


def _container_environments(value):
    if isinstance(value, dict):
        if "Image" in value and "Environment" in value:
            yield value["Environment"]
        for v in value.values():
            yield from _container_environments(v)
    elif isinstance(value, list):
        for v in value:
            yield from _container_environments(v)


def test_every_model_of_the_stack_gets_the_one_serving_environment(manifests):
    m = manifests["dev"]
    bootstrap = [r["inputs"]["primaryContainer"]["environment"] for r in m.of_type("aws:sagemaker/model:Model")]
    registered = [e for r in m.of_type("aws:sfn/stateMachine:StateMachine") for e in _container_environments(json.loads(r["inputs"]["definition"]))]
    assert bootstrap and registered
    assert all(e == container_contract.SERVING_ENVIRONMENT for e in bootstrap + registered), bootstrap + registered
