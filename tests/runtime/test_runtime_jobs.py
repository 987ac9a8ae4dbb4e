"""The CT flow's jobs run as SageMaker runs them in the scikit-learn 1.9-0 image (see image.py and sm_agent.py).

Each job's request is the synthesized state machine's own task parameters; only S3 is a local copy.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest

from image import BUILD, IMAGE_ENV, PYCACHE, bytecode_enabled
from sm_agent import RUN, Container, resolve, run_processing_job, run_training_job

ROOT = Path(__file__).resolve().parents[2]


def _invalid(source: Path, dest: Path) -> Path:
    rows = list(csv.DictReader(source.open()))
    for i in (2, 5, 9):
        rows[i]["plan"] = "gold-jane.doe@example.com"  # customer data must not reach the failure reason
    rows[4]["tenure_months"] = "-3"
    dest.mkdir(parents=True, exist_ok=True)
    with (dest / "part-0.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return dest


def test_validate_data_job_accepts_valid_data(runtime, dev, data, tmp_path):
    params = resolve(dev.parameters("ValidateData"), RUN)
    uri = next(i["S3Input"]["S3Uri"] for i in params["ProcessingInputs"] if i["InputName"] == "data")
    result = run_processing_job(runtime, tmp_path, params, dev.s3(**{uri: data}))
    assert result.returncode == 0, result.logs()
    report = json.loads((result.opt_ml / "processing/output/validation_report.json").read_text())
    assert report["valid"] is True and report["rows"] == 600


def test_validate_data_job_rejects_invalid_data_with_a_reason_free_of_values(runtime, dev, data, tmp_path):
    params = resolve(dev.parameters("ValidateData"), RUN)
    uri = next(i["S3Input"]["S3Uri"] for i in params["ProcessingInputs"] if i["InputName"] == "data")
    bad = _invalid(data / "part-0.csv", tmp_path / "bad")
    result = run_processing_job(runtime, tmp_path / "job", params, dev.s3(**{uri: bad}))
    assert result.returncode == 1, result.logs()
    reason = result.failure_reason
    assert "plan [allowed]" in reason and "tenure_months [range]" in reason, reason
    assert "rows 3, 6, 10" in reason, reason  # where to look: row numbers, not values
    assert "example.com" not in reason and "-3" not in reason, reason
    report = json.loads((result.opt_ml / "processing/output/validation_report.json").read_text())
    values = [e["value"] for p in report["problems"] for e in p["examples"]]
    assert "gold-jane.doe@example.com" in values  # the encrypted report keeps them for whoever may read the data


def test_train_job_writes_the_model_and_the_metric_lines(trained, dev):
    result, archive = trained
    model = result.opt_ml / "model"
    for name in ("model.joblib", "contract.json", "training.json", "baseline.json", "code/inference.py"):
        assert (model / name).is_file(), name
    definitions = dev.parameters("Train")["AlgorithmSpecification"]["MetricDefinitions"]
    for d in definitions:  # what SageMaker would scrape from the job's log
        assert re.search(d["Regex"], result.stdout), (d["Name"], result.logs())
    assert (result.opt_ml / "output/data/validation.csv").is_file()


@pytest.mark.parametrize("bad", [{"max_iter": "lots"}, {"learning_rate": "-1"}])
def test_train_job_usage_error_becomes_the_failure_reason(runtime, dev, data, tmp_path, bad):
    params = resolve(dev.parameters("Train"), RUN)
    params["HyperParameters"].update(bad)
    uri = params["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    result = run_training_job(runtime, tmp_path, params, dev.s3(**{uri: data}))
    assert result.returncode != 0, result.logs()
    (name,) = bad
    assert result.failure_reason.startswith("error: "), result.failure_reason + result.logs()
    assert name in result.failure_reason, result.failure_reason
    assert "Traceback" not in result.failure_reason


@pytest.mark.parametrize("toolkit", ["sagemaker_training", "sagemaker_containers"])
def test_train_job_failure_reason_survives_either_train_script_on_path(runtime, dev, data, tmp_path, toolkit):
    # The image has two `train` scripts and which one is on PATH depends on install order; the job names its toolkit
    # (ContainerEntrypoint), so the image's `train` is never run. Here `train` on PATH is each of them in turn.
    params = resolve(dev.parameters("Train"), RUN)
    params["HyperParameters"]["max_iter"] = "lots"
    uri = params["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    train = BUILD / f"bin-{toolkit}" / "train"  # not under /tmp: the container has a /tmp of its own
    train.parent.mkdir(parents=True, exist_ok=True)
    train.write_text(f"#!/opt/venv/bin/python\nimport sys\nfrom {toolkit}.cli.train import main\nsys.exit(main())\n")
    train.chmod(0o755)
    params["Environment"] = {**params.get("Environment", {}), "PATH": f"{train.parent}:{IMAGE_ENV['PATH']}"}
    result = run_training_job(runtime, tmp_path / "job", params, dev.s3(**{uri: data}))
    assert result.returncode != 0, result.logs()
    assert result.failure_reason.startswith("error: ") and "max_iter" in result.failure_reason, result.failure_reason


def test_train_job_restarted_from_a_checkpoint_resumes(runtime, staging, data, tmp_path):
    params = resolve(staging.parameters("Train"), RUN)
    assert params["EnableManagedSpotTraining"] is True and params["CheckpointConfig"]["LocalPath"] == "/opt/ml/checkpoints"
    params["HyperParameters"]["max_iter"] = "30"
    uri = params["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    s3 = staging.s3(**{uri: data})
    checkpoints = tmp_path / "checkpoints"  # stands for CheckpointConfig.S3Uri
    first = run_training_job(runtime, tmp_path / "first", params, s3, checkpoints=checkpoints)
    assert first.returncode == 0, first.logs()
    saved = sorted(checkpoints.glob("*.joblib"))
    assert len(saved) >= 2, (saved, first.logs())
    # A spot interruption after the first checkpoint: SageMaker restarts the job with what S3 then held.
    for later in saved[1:]:
        later.unlink()
    second = run_training_job(runtime, tmp_path / "second", params, s3, checkpoints=checkpoints)
    assert second.returncode == 0, second.logs()
    assert re.search(r"train: resumed from checkpoint at iteration \d+", second.stdout), second.logs()
    # The resumed model is the one the uninterrupted job trained.
    assert (second.opt_ml / "model/training.json").read_text() == (first.opt_ml / "model/training.json").read_text()


def _evaluate(runtime, dev, trained, tmp_path, production: Path | None):
    result, archive = trained
    state = "CompareWithProduction" if production else "NoProductionModel"
    prepared = dev.parameters(state)
    values = {**RUN, "$.training.model_data": "s3://run/training/model.tar.gz", "$.holdout.s3_uri": "s3://run/holdout/",
              "$.production_package.ModelMetrics.ModelQuality.Statistics.S3Uri": "s3://prod/evaluation.json",
              "$.evaluate.arguments": prepared["arguments"], "$.evaluate.inputs": prepared["inputs"]}
    params = resolve(dev.parameters("Evaluate"), values)
    holdout = tmp_path / "holdout"
    holdout.mkdir()
    shutil.copy(result.opt_ml / "output/data/validation.csv", holdout)
    s3 = dev.s3(**{"s3://run/training/model.tar.gz": archive, "s3://run/holdout/": holdout})
    if production:
        s3["s3://prod/evaluation.json"] = production
    job = run_processing_job(runtime, tmp_path / "job", params, s3)
    assert job.returncode == 0, job.logs()
    return json.loads((job.opt_ml / "processing/output/evaluation.json").read_text())


def test_evaluate_job_without_a_production_model(runtime, dev, trained, tmp_path):
    evaluation = _evaluate(runtime, dev, trained, tmp_path, None)
    assert evaluation["production_metrics"] is None and evaluation["verdict"] in ("pass", "fail")
    assert evaluation["rule"]["minimum"] == 0.7


def test_evaluate_job_against_the_production_model(runtime, dev, trained, tmp_path):
    production = tmp_path / "production" / "evaluation.json"
    production.parent.mkdir()
    production.write_text(json.dumps({"metrics": {"roc_auc": 0.999}}))
    evaluation = _evaluate(runtime, dev, trained, tmp_path, production)
    assert evaluation["production_metrics"]["roc_auc"] == 0.999
    assert evaluation["verdict"] == "fail" and any("production" in r for r in evaluation["reasons"]), evaluation


def test_image_env_lacks_what_the_package_installs_itself(runtime):
    # The tier is only worth something if the image's environment is as bare as the image: pandera and pydantic
    # come from the code package's wheels at run time, never from the cached environment.
    site = runtime / "venv" / "lib" / "python3.12" / "site-packages"
    assert (site / "sklearn").is_dir() and (site / "sagemaker_training").is_dir()
    assert not list(site.glob("pandera*")) and not list(site.glob("pydantic*"))


def test_containers_read_the_bytecode_cache_and_cannot_write_it(runtime, tmp_path):
    """The tier's one addition to the image (image.py): its environment's bytecode, read-only. The image's modules load
    from it; what a container compiles itself (here a module of /opt/ml/code, with writing allowed as the serving
    environment allows it) stays in that container; the rest of the ENV block is the image's."""
    if not bytecode_enabled():
        pytest.skip("MLOPS_RUNTIME_BYTECODE=0: the containers run without the cache")
    cache = runtime / PYCACHE
    before = sorted(p.relative_to(cache) for p in cache.rglob("*"))
    container = Container(runtime, tmp_path)
    (container.opt_ml / "code").mkdir()
    (container.opt_ml / "code" / "own.py").write_text("VALUE = 1\n")
    probe = (
        "import json, os, sys; env = dict(os.environ); sys.path.insert(0, '/opt/ml/code'); import own, sklearn;"
        "print(json.dumps({'prefix': sys.pycache_prefix, 'cached': sklearn.__spec__.cached, 'env': env}))"
    )
    result = container.run(["bash", "-c", "python -c \"$0\" && ! touch /opt/pycache/x 2>/dev/null", probe],
                           {"PYTHONDONTWRITEBYTECODE": ""}, "/opt/ml/output/failure")
    assert result.returncode == 0, result.logs()
    seen = json.loads(result.stdout)
    assert seen["prefix"] == "/opt/pycache" and seen["cached"].startswith("/opt/pycache/opt/venv/"), seen
    assert (cache / seen["cached"].removeprefix("/opt/pycache/")).is_file(), seen
    assert sorted(p.relative_to(cache) for p in cache.rglob("*")) == before  # own.py's bytecode did not land here
    env = {k: v for k, v in seen["env"].items() if k not in ("PYTHONPYCACHEPREFIX", "PWD", "SHLVL", "_")}
    assert env == {**IMAGE_ENV, "PATH": IMAGE_ENV["PATH"] + ":/opt/nginx/usr/sbin", "PYTHONDONTWRITEBYTECODE": ""}, env


def test_tier_catches_a_package_that_imports_a_dependency_before_installing_it(runtime, dev, data, tmp_path):
    """The defect of issue 10 item 1, rebuilt: validate.py importing pandera at the top fails in the image."""
    from components.code.package import build_sourcedir

    package = tmp_path / "pkg" / "training"
    shutil.copytree(ROOT / "training", package, ignore=shutil.ignore_patterns("__pycache__", "sample"))
    source = (package / "validate.py").read_text()
    future = "from __future__ import annotations\n"
    (package / "validate.py").write_text(source.replace(future, future + "import pandera.pandas  # noqa\n", 1))
    archive = tmp_path / "sourcedir.tar.gz"
    archive.write_bytes(build_sourcedir(package))
    params = resolve(dev.parameters("ValidateData"), RUN)
    # A stack that deployed this package: the job's digest is the package's (else the check refuses it first).
    params["Environment"]["MLOPS_CODE_SHA256"] = hashlib.sha256(archive.read_bytes()).hexdigest()
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in params["ProcessingInputs"]}
    result = run_processing_job(runtime, tmp_path / "job", params, dev.s3(**{inputs["data"]: data, inputs["code"]: archive}))
    assert result.returncode != 0, result.logs()
    assert "No module named 'pandera'" in result.stderr, result.logs()


def test_a_job_refuses_a_code_package_other_than_the_deployed_one(runtime, dev, data, tmp_path):
    """In the image: a package swapped in the bucket after deployment is refused before any of it runs."""
    params = resolve(dev.parameters("ValidateData"), RUN)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in params["ProcessingInputs"]}
    swapped = tmp_path / "sourcedir.tar.gz"
    swapped.write_bytes(dev.s3()[inputs["code"]].read_bytes() + b"\0")
    result = run_processing_job(runtime, tmp_path / "job", params, dev.s3(**{inputs["data"]: data, inputs["code"]: swapped}))
    assert result.returncode == 1, result.logs()
    assert "the code package is not sha256" in result.failure_reason, result.logs()
