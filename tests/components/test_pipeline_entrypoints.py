"""The processing jobs' entry points as the flow defines them, run for real on this machine.

The container's ``/opt/ml/processing`` tree is a temporary directory; the code input is the real
``sourcedir.tar.gz``; ``python`` is this venv's (it has the package's dependencies). Everything else
(unpacking, the module, its arguments, the holdout archive) is exactly what SageMaker would run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from pipeline_fixtures import make_spec

from components.code.package import build_sourcedir
from components.pipeline.spec import EXIT_MESSAGE, PROCESSING
from components.pipeline.definition import build_definition, task_states
from infra.config import PROJECT_ROOT

SAMPLE = PROJECT_ROOT / "training" / "sample"


@pytest.fixture(scope="module")
def sourcedir() -> bytes:
    return build_sourcedir(PROJECT_ROOT / "training")


@pytest.fixture(scope="module")
def flow(sourcedir):
    """The flow of a stack that deployed this very package (its sha256 is what the jobs check)."""
    import hashlib

    spec = make_spec(code_sha256=hashlib.sha256(sourcedir).hexdigest())
    return spec, build_definition(spec)


@pytest.fixture
def container(tmp_path, flow, sourcedir):
    """A fake container filesystem with the code, contract and training data inputs in place."""
    spec, _ = flow
    root = tmp_path / "processing"
    (root / "input" / "code").mkdir(parents=True)
    (root / "input" / "code" / "sourcedir.tar.gz").write_bytes(sourcedir)
    contract = root / "input" / "contract" / spec.contract_key.rsplit("/", 1)[1]
    contract.parent.mkdir(parents=True)
    shutil.copy(SAMPLE / "contract.json", contract)
    (root / "input" / "data").mkdir()
    shutil.copy(SAMPLE / "churn.csv", root / "input" / "data" / "churn.csv")
    (root / "output").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')  # a symlink would lose the venv
    (bin_dir / "python").chmod(0o755)
    return root, tmp_path


def run(flow, container, state: str, arguments: list[str]) -> subprocess.CompletedProcess:
    _, definition = flow
    root, tmp = container
    params = task_states(definition)[state]["Parameters"]
    entry = params["AppSpecification"]["ContainerEntrypoint"]
    local = [part.replace(PROCESSING, str(root)).replace(EXIT_MESSAGE, str(tmp / "message")) for part in entry + arguments]
    job_env = {k: v for k, v in params["Environment"].items() if not k.endswith(".$")}  # as SageMaker sets it
    env = {**os.environ, **job_env, "PATH": f"{tmp / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(local, capture_output=True, text=True, env=env, timeout=180)


def test_validate_runs_from_the_code_package_with_the_flows_arguments(flow, container):
    root, tmp = container
    args = task_states(flow[1])["ValidateData"]["Parameters"]["AppSpecification"]["ContainerArguments"]
    done = run(flow, container, "ValidateData", args)
    assert done.returncode == 0, done.stderr
    assert (root / "input" / "code" / "training" / "validate.py").is_file(), "the package was unpacked where the job runs"
    report = json.loads((root / "output" / "validation_report.json").read_text())
    assert report["valid"] is True


def test_invalid_data_fails_the_job_with_its_reason_in_the_exit_message(flow, container):
    root, tmp = container
    lines = (SAMPLE / "churn.csv").read_text().splitlines()
    lines[1] = "-5" + lines[1][lines[1].index(","):]  # tenure_months below the contract's minimum
    (root / "input" / "data" / "churn.csv").write_text("\n".join(lines) + "\n")
    args = task_states(flow[1])["ValidateData"]["Parameters"]["AppSpecification"]["ContainerArguments"]
    done = run(flow, container, "ValidateData", args)
    assert done.returncode == 1
    assert "tenure_months" in (tmp / "message").read_text()


@pytest.fixture(scope="module")
def trained_model(tmp_path_factory):
    """model.tar.gz as a training job leaves it: the model directory train.py wrote, archived."""
    work = tmp_path_factory.mktemp("train")
    rows = (SAMPLE / "churn.csv").read_text().splitlines()[:301]  # a small model is enough to evaluate
    (work / "train.csv").write_text("\n".join(rows) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "training.train", "--train", str(work / "train.csv"), "--model-dir", str(work / "model"),
         "--output-data-dir", str(work / "out"), "--contract", str(SAMPLE / "contract.json"), "--max_iter", "10"],
        capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr
    archive = work / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for p in sorted((work / "model").iterdir()):
            tar.add(p, arcname=p.name)
    return archive


def holdout_archive(destination: Path) -> None:
    """A holdout that arrives as a .tar.gz (the training job's output): Evaluate's entry point unpacks it."""
    data = (SAMPLE / "churn.csv").read_bytes()
    info = tarfile.TarInfo("validation.csv")
    info.size = len(data)
    with tarfile.open(destination, "w:gz") as tar:
        tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("state", ["NoProductionModel", "CompareWithProduction"])
def test_evaluate_scores_the_holdout_and_judges_against_production(flow, container, trained_model, state):
    root, _ = container
    (root / "input" / "model").mkdir()
    shutil.copy(trained_model, root / "input" / "model" / "model.tar.gz")
    (root / "input" / "holdout").mkdir()
    holdout_archive(root / "input" / "holdout" / "output.tar.gz")
    (root / "input" / "production").mkdir()
    (root / "input" / "production" / "evaluation.json").write_text(json.dumps({"metrics": {"roc_auc": 0.99}}))
    arguments = flow[1]["States"][state]["Parameters"]["arguments"]
    done = run(flow, container, "Evaluate", arguments)
    assert done.returncode == 0, done.stderr
    assert not (root / "input" / "holdout" / "output.tar.gz").exists(), "the archive was unpacked in place"
    report = json.loads((root / "output" / "evaluation.json").read_text())
    assert report["rule"]["minimum"] == 0.7 and report["rule"]["max_regression"] == 0.02
    if state == "CompareWithProduction":
        assert report["production_metrics"] == {"roc_auc": 0.99} and report["verdict"] == "fail"
    else:
        assert report["production_metrics"] is None


def test_a_changed_code_package_never_runs(flow, container):
    """The jobs check the package against the digest the stack deployed before any of it runs."""
    root, tmp = container
    package = root / "input" / "code" / "sourcedir.tar.gz"
    package.write_bytes(package.read_bytes() + b"\0")
    args = task_states(flow[1])["ValidateData"]["Parameters"]["AppSpecification"]["ContainerArguments"]
    done = run(flow, container, "ValidateData", args)
    assert done.returncode == 1
    assert "the code package is not sha256" in (tmp / "message").read_text()
    assert not (root / "input" / "code" / "training").exists(), "nothing was unpacked, nothing ran"
