"""The demand model's CT flow as synthesized (issue 14): each job's request is the dev stack's own task parameters.

Preprocess and Train run the model's own package in the XGBoost 3.2-0 image's runtime; ComputeBaseline and the
platform's judge (Evaluate without an own evaluate) run the platform's package in the scikit-learn 1.9-0 image's.
Only S3 is a local copy.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile

import image
import pytest
from conftest import Stack
from sm_agent import resolve, run_processing_job, run_training_job

DEMAND = image.ROOT / "examples" / "models" / "demand"
RUN = {"$.run.id": "run-1", "$.data.s3_uri": "s3://models/demand/snapshots/run-1/data/demand/train/",
       "$.channels.train": "s3://run/preprocess/train/", "$.channels.validation": "s3://run/preprocess/validation/"}


@pytest.fixture(scope="module")
def xgboost_runtime():
    reason = image.unavailable_reason()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"container-faithful tier: {reason} (CI must run this tier)", pytrace=False)
        pytest.skip(f"container-faithful tier: {reason}")
    return image.build(image.XGBOOST)


@pytest.fixture(scope="module")
def demand(manifests, tmp_path_factory) -> Stack:
    return Stack(manifests["dev"], tmp_path_factory.mktemp("demand-objects"), model="demand")


@pytest.fixture(scope="module")
def channels(xgboost_runtime, demand, tmp_path_factory):
    params = resolve(demand.parameters("Preprocess"), RUN)
    job = run_processing_job(xgboost_runtime, tmp_path_factory.mktemp("preprocess"), params,
                             demand.s3(**{RUN["$.data.s3_uri"]: DEMAND / "sample"}))
    assert job.returncode == 0, job.logs()
    out = job.opt_ml / "processing" / "output"
    return {"s3://run/preprocess/train/": out / "train", "s3://run/preprocess/validation/": out / "validation"}


def test_preprocess_writes_the_train_and_validation_channels(channels):
    train, validation = (list(channels.values())[i] for i in (0, 1))
    assert list(train.glob("*.csv")) and list(validation.glob("*.csv"))


def test_the_platform_computes_the_baseline_from_the_training_channel(runtime, demand, channels, tmp_path):
    from training.drift import load_baseline

    params = resolve(demand.parameters("ComputeBaseline"), RUN)
    assert params["AppSpecification"]["ImageUri"].endswith("sagemaker-scikit-learn:1.9-0-cpu-py3")
    job = run_processing_job(runtime, tmp_path, params, demand.s3(**channels))
    assert job.returncode == 0, job.logs()
    doc = json.loads((job.opt_ml / "processing/output/baseline.json").read_text())
    assert "price" in load_baseline(doc, "baseline.json").names


@pytest.fixture(scope="module")
def trained(xgboost_runtime, demand, channels, tmp_path_factory):
    params = resolve(demand.parameters("Train"), RUN)
    job = run_training_job(xgboost_runtime, tmp_path_factory.mktemp("train"), params, demand.s3(**channels))
    assert job.returncode == 0, job.logs()
    return job


def test_train_runs_the_models_entry_point_with_its_hyperparameters(trained):
    assert (trained.opt_ml / "model" / "xgboost-model.json").is_file()
    assert "validation:rmse=" in trained.stdout + trained.stderr
    report = json.loads((trained.opt_ml / "output/data/evaluation.json").read_text())
    assert {"rmse", "mae", "r2"} <= set(report["metrics"])


def test_the_platform_judges_the_metrics_train_reported(runtime, demand, trained, tmp_path):
    output = tmp_path / "output.tar.gz"
    with tarfile.open(output, "w:gz") as tar:  # SageMaker packs the output data directory as output.tar.gz
        tar.add(trained.opt_ml / "output/data", arcname=".")
    prepared = demand.parameters("NoProductionModel")
    values = {**RUN, "$.holdout.report_uri": "s3://run/training/output.tar.gz",
              "$.evaluate.arguments": prepared["arguments"], "$.evaluate.inputs": prepared["inputs"]}
    params = resolve(demand.parameters("Evaluate"), values)
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    shutil.copy(output, report_dir)
    job = run_processing_job(runtime, tmp_path / "job", params, demand.s3(**{"s3://run/training/output.tar.gz": report_dir}))
    assert job.returncode == 0, job.logs()
    doc = json.loads((job.opt_ml / "processing/output/evaluation.json").read_text())
    expected = "pass" if doc["metrics"]["rmse"] <= 20.0 else "fail"
    assert doc["verdict"] == expected and doc["rule"]["primary_metric"] == "rmse" and doc["reasons"]
