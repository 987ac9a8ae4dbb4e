"""The demand example model (examples/models/demand) in the SageMaker XGBoost 3.2-0 image's runtime.

Its own entry points, run the way SageMaker runs them in that image: ``preprocess.py`` as a processing job
(``python3`` of the image), ``train.py`` as a script-mode training job through the image's ``train`` (sagemaker-
containers' CLI -> SAGEMAKER_TRAINING_MODULE -> the user module, pip-installing the code directory first), and the
model archive behind ``serve`` (nginx + gunicorn + sagemaker-containers' Transformer over inference.py). Every job
and the endpoint run network-isolated.
"""

from __future__ import annotations

import json
import os
import re

import image
import pytest
from conftest import pack_model
from sm_agent import Endpoint, run_processing_job, run_training_job

DEMAND = image.ROOT / "examples" / "models" / "demand"
CODE_FILES = ("train.py", "preprocess.py", "inference.py", "features.py", "contract.json", "requirements.txt")
# sagemaker-containers pip-installs the code directory (`pip install . -r requirements.txt`); with build isolation
# pip would fetch setuptools from the index, which a network-isolated job cannot reach (see training._deps).
OFFLINE_PIP = {"PIP_NO_BUILD_ISOLATION": "false"}


@pytest.fixture(scope="module")
def xgboost_runtime():
    reason = image.unavailable_reason()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"container-faithful tier: {reason} (CI must run this tier)", pytrace=False)
        pytest.skip(f"container-faithful tier: {reason}")
    return image.build(image.XGBOOST)


@pytest.fixture(scope="module")
def code(tmp_path_factory):
    """The model's code directory as its package holds it (no tests, no sample data)."""
    out = tmp_path_factory.mktemp("code")
    for name in CODE_FILES:
        (out / name).write_bytes((DEMAND / name).read_bytes())
    return out


@pytest.fixture(scope="module")
def demand_channels(xgboost_runtime, code, tmp_path_factory):
    work = tmp_path_factory.mktemp("preprocess-job")
    params = {
        "ProcessingInputs": [
            {"InputName": "code", "S3Input": {"S3Uri": "s3://models/demand/code/", "LocalPath": "/opt/ml/processing/input/code"}},
            {"InputName": "data", "S3Input": {"S3Uri": "s3://models/demand/raw/", "LocalPath": "/opt/ml/processing/input/data"}},
        ],
        "ProcessingOutputConfig": {"Outputs": [
            {"OutputName": name, "S3Output": {"S3Uri": f"s3://run/{name}/", "LocalPath": f"/opt/ml/processing/output/{name}"}}
            for name in ("train", "validation")
        ]},
        "AppSpecification": {"ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/preprocess.py"],
                             "ContainerArguments": ["--seed", "0"]},
    }
    result = run_processing_job(xgboost_runtime, work, params, {"s3://models/demand/code/": code, "s3://models/demand/raw/": DEMAND / "sample"})
    assert result.returncode == 0, result.logs()
    return result


def test_preprocess_job_writes_the_train_and_validation_channels(demand_channels):
    out = demand_channels.opt_ml / "processing" / "output"
    train, validation = (out / "train" / "part-0.csv").read_text(), (out / "validation" / "part-0.csv").read_text()
    header = "store_type,day_of_week,temperature_c,price,promo,holiday,units_sold"
    assert train.splitlines()[0] == header and validation.splitlines()[0] == header
    assert (len(train.splitlines()) - 1, len(validation.splitlines()) - 1) == (640, 160)
    assert "train 640, validation 160" in demand_channels.stdout


@pytest.fixture(scope="module")
def demand_trained(xgboost_runtime, code, demand_channels, tmp_path_factory):
    work = tmp_path_factory.mktemp("train-job")
    out = demand_channels.opt_ml / "processing" / "output"
    params = {
        "AlgorithmSpecification": {"TrainingImage": "sagemaker-xgboost:3.2-0", "TrainingInputMode": "File"},
        "HyperParameters": {"num_round": "60", "max_depth": "4", "sagemaker_program": "train.py",
                            "sagemaker_submit_directory": "/opt/ml/input/data/code/"},
        "InputDataConfig": [
            {"ChannelName": name, "DataSource": {"S3DataSource": {"S3Uri": f"s3://run/{name}/"}}} for name in ("train", "validation", "code")
        ],
        "ResourceConfig": {"InstanceType": "ml.m5.large"},
        "Environment": OFFLINE_PIP,
    }
    s3 = {"s3://run/train/": out / "train", "s3://run/validation/": out / "validation", "s3://run/code/": code}
    result = run_training_job(xgboost_runtime, work, params, s3)
    assert result.returncode == 0, result.logs()
    return result, pack_model(result.opt_ml / "model", work / "s3" / "model.tar.gz")


def test_train_job_runs_through_the_image_toolkit_and_writes_the_model(demand_trained):
    result, _ = demand_trained
    # The image's toolkit ran it: sagemaker-containers loaded the image's framework module, pip-installed the code
    # directory offline (every requirement already in the image), then invoked the user script.
    assert "Imported framework sagemaker_xgboost_container.training" in result.stderr, result.logs()
    assert "Requirement already satisfied: xgboost==3.2.0" in result.stdout and "Invoking user script" in result.stderr
    model = result.opt_ml / "model"
    for name in ("xgboost-model.json", "contract.json", "training.json", "code/inference.py", "code/features.py"):
        assert (model / name).is_file(), (name, result.logs())
    training = json.loads((model / "training.json").read_text())
    assert training["versions"]["xgboost"] == "3.2.0" and training["versions"]["python"].startswith("3.12."), training
    assert training["hyperparameters"]["num_round"] == 60 and training["hyperparameters"]["max_depth"] == 4
    # The metric lines SageMaker scrapes, and the evaluation.json contract in the output data.
    for name in ("rmse", "mae", "r2"):
        assert re.search(rf"^validation:{name}=[-0-9.]+$", result.stdout, re.M), result.logs()
    evaluation = json.loads((result.opt_ml / "output" / "data" / "evaluation.json").read_text())
    assert evaluation["task"] == "regression" and evaluation["directions"]["rmse"] == "lower"
    assert evaluation["metrics"]["r2"] > 0.5, evaluation


@pytest.fixture(scope="module")
def demand_served(xgboost_runtime, demand_trained, tmp_path_factory):
    _, archive = demand_trained
    environment = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code", **OFFLINE_PIP}
    endpoint = Endpoint(xgboost_runtime, tmp_path_factory.mktemp("demand_served"), archive.read_bytes(), environment)
    endpoint.wait_until_healthy()
    yield endpoint
    endpoint.stop()


def test_endpoint_answers_csv_and_json_with_a_value_per_row(demand_served):
    status, body, content_type = demand_served.request("POST", "/invocations", b"mall,5,20.0,3.5,true,false\ncity,1,,9.0,false,false\n",
                                                {"Content-Type": "text/csv"})
    assert status == 200 and content_type.startswith("application/json"), (status, body, demand_served.logs())
    busy, quiet = (p["value"] for p in json.loads(body)["predictions"])
    assert busy > quiet > 0  # a mall on a promoted, cheap weekend day sells more than a city store on a dear weekday
    record = {"store_type": "suburb", "day_of_week": 2, "temperature_c": 12.5, "price": 4.0, "promo": False, "holiday": False}
    status, body, _ = demand_served.request("POST", "/invocations", json.dumps({"instances": [record]}).encode(), {"Content-Type": "application/json"})
    assert status == 200 and len(json.loads(body)["predictions"]) == 1, (status, body)


def test_endpoint_rejects_a_bad_request_with_400_naming_the_value(demand_served):
    status, body, _ = demand_served.request("POST", "/invocations", b"kiosk,5,20.0,3.5,true,false\n", {"Content-Type": "text/csv"})
    assert status == 400, (status, body, demand_served.logs())
    assert "store_type 'kiosk' is not one of city, mall, suburb" in json.loads(body)["error"]
