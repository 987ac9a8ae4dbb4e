"""The scheduled drift job against moto's S3, SageMaker and CloudWatch: the live model's baseline, the
capture window, the report next to the capture, the metrics, the bootstrap case, the processing engine."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import numpy as np
import pytest
from botocore.model import ServiceModel
from botocore.validate import ParamValidator
from moto import mock_aws

from components.serving.endpoint import bootstrap_model_archive
from infra.config import PROJECT_ROOT
from training.baseline import compute_baseline
from training.capture import capture_line
from training.drift import (
    Clients,
    DriftError,
    JobSettings,
    baseline_fingerprint,
    handler,
    load_baseline,
    live_model_data,
    main,
    processing_job_request,
    run_job,
)
from training.sample_data import generate
from training.validate import validate_frame

REGION = "us-east-1"
CAPTURE, MODELS = "capture-b", "models-b"
ENDPOINT = "mlops-test-churn"
ROLE = "arn:aws:iam::123456789012:role/r"
WHEN = datetime(2026, 11, 28, 12, 0, 7, tzinfo=timezone.utc)
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "plan", "region", "autopay"]


def capture_file(frame) -> bytes:
    rows = [",".join("" if isinstance(v, float) and np.isnan(v) else str(v) for v in r) for r in frame[FEATURES].itertuples(index=False)]
    return ("\n".join(capture_line(r) for r in rows) + "\n").encode()


def model_archive(baseline: dict | None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in [("model.joblib", b"x"), *([("baseline.json", json.dumps(baseline).encode())] if baseline else [])]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


@pytest.fixture(scope="module")
def baseline(contract) -> dict:
    return compute_baseline(validate_frame(generate(5000, seed=1), contract).frame, contract, np.linspace(0, 1, 20))


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (CAPTURE, MODELS):
            s3.create_bucket(Bucket=bucket)
        yield Clients(s3, boto3.client("sagemaker", region_name=REGION), boto3.client("cloudwatch", region_name=REGION))


def settings(**overrides) -> JobSettings:
    return JobSettings(
        **{
            "model": "churn",
            "endpoint_name": ENDPOINT,
            "capture_bucket": CAPTURE,
            "metric_namespace": "mlops/test/churn",
            "report_prefix": "churn/drift-reports/",
            "window_hours": 3,
            "min_records": 100,
            **overrides,
        }
    )


def deploy(clients: Clients, archive: bytes, package: bool = False, registered: str | None = None) -> str:
    """An endpoint serving ``archive``: through a model's ModelDataUrl, or a registered model package (as the CT
    flow's CreateModel does), that package registering ``registered`` as its DriftCheckBaselines statistics."""
    key = "churn/training/run-1/model.tar.gz"
    clients.s3.put_object(Bucket=MODELS, Key=key, Body=archive)
    uri = f"s3://{MODELS}/{key}"
    sm = clients.sagemaker
    if package:
        sm.create_model_package_group(ModelPackageGroupName="mlops-test-churn")
        arn = sm.create_model_package(
            ModelPackageGroupName="mlops-test-churn",
            InferenceSpecification={"Containers": [{"Image": "img", "ModelDataUrl": uri}], "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]},
            # The client validates this against botocore's model: the members the CT flow's RegisterModel sends.
            **({"DriftCheckBaselines": {"ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": registered}}}} if registered else {}),
        )["ModelPackageArn"]
        container = {"ModelPackageName": arn}
    else:
        container = {"Image": "img", "ModelDataUrl": uri}
    sm.create_model(ModelName=f"{ENDPOINT}-m1", ExecutionRoleArn=ROLE, PrimaryContainer=container)
    sm.create_endpoint_config(
        EndpointConfigName=f"{ENDPOINT}-c1",
        ProductionVariants=[{"VariantName": "primary", "ModelName": f"{ENDPOINT}-m1", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
    )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=f"{ENDPOINT}-c1")
    return uri


def put_capture(clients: Clients, hour: datetime, data: bytes, variant: str = "primary", name: str = "a.jsonl") -> None:
    clients.s3.put_object(Bucket=CAPTURE, Key=f"churn/{ENDPOINT}/{variant}/{hour:%Y/%m/%d/%H}/{name}", Body=data)


def metrics(clients: Clients) -> dict[tuple[str, str | None], float]:
    out = {}
    for metric in clients.cloudwatch.list_metrics(Namespace="mlops/test/churn")["Metrics"]:
        dims = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        stats = clients.cloudwatch.get_metric_statistics(
            Namespace="mlops/test/churn", MetricName=metric["MetricName"], Dimensions=metric["Dimensions"],
            StartTime=WHEN - timedelta(hours=1), EndTime=WHEN + timedelta(hours=1), Period=3600, Statistics=["Maximum"],
        )["Datapoints"]
        assert dims["Model"] == "churn"
        out[(metric["MetricName"], dims.get("Feature"))] = stats[0]["Maximum"]
    return out


@pytest.mark.parametrize("package", [False, True], ids=["model data", "model package"])
def test_live_model_artifact_is_found_from_the_endpoint(aws, package):
    uri = deploy(aws, model_archive({"format": "x"}), package=package)
    assert live_model_data(aws.sagemaker, ENDPOINT) == uri


def test_a_run_scores_its_window_writes_the_report_next_to_the_capture_and_publishes(aws, baseline):
    deploy(aws, model_archive(baseline))
    drifted = generate(400, seed=5, drift={"shift": {"tenure_months": 1.0}})
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(drifted.iloc[:200]))
    put_capture(aws, WHEN - timedelta(hours=3), capture_file(drifted.iloc[200:]), variant="canary")
    put_capture(aws, WHEN - timedelta(hours=3), b"{broken\n", name="b.jsonl")
    put_capture(aws, WHEN, capture_file(generate(50, seed=6)))  # the open hour: next run's
    put_capture(aws, WHEN - timedelta(hours=4), capture_file(generate(50, seed=7)))  # before the window

    report = run_job(settings(), WHEN, aws)

    assert report["window"] == {"start": "2026-11-28T09:00:00+00:00", "end": "2026-11-28T12:00:00+00:00"}
    assert report["files"] == 3 and report["records"]["scored"] == 400 and report["records"]["malformed"] == 1
    assert report["drifted_features"] == ["tenure_months"]
    stored = json.loads(aws.s3.get_object(Bucket=CAPTURE, Key="churn/drift-reports/2026/11/28/12.json")["Body"].read())
    assert stored == json.loads(json.dumps(report))
    published = metrics(aws)
    assert published[("RecordsScored", None)] == 400 and published[("MalformedRecords", None)] == 1
    assert published[("MaxDriftScore", None)] == pytest.approx(report["max_psi"])
    for feature in FEATURES:
        assert published[("PSI", feature)] == pytest.approx(report["features"][feature]["psi"])
        assert published[("JensenShannon", feature)] == pytest.approx(report["features"][feature]["js_distance"])


def test_too_few_records_publish_the_counts_only(aws, baseline):
    deploy(aws, model_archive(baseline))
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(20, seed=5)))
    report = run_job(settings(), WHEN, aws)
    assert report["status"] == "insufficient_data"
    assert set(metrics(aws)) == {("RecordsScored", None), ("MalformedRecords", None)}


def test_no_capture_publishes_zero_records(aws, baseline):
    deploy(aws, model_archive(baseline))
    assert run_job(settings(), WHEN, aws)["records"]["scored"] == 0
    assert metrics(aws)[("RecordsScored", None)] == 0.0  # what the capture-stopped alarm sees


def test_the_bootstrap_placeholder_is_logged_and_nothing_published(aws, caplog):
    deploy(aws, bootstrap_model_archive(PROJECT_ROOT / "training"))
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(300, seed=5)))
    with caplog.at_level("INFO", logger="mlops.drift"):
        assert run_job(settings(), WHEN, aws)["status"] == "no_baseline"
    assert "has no baseline.json" in caplog.text
    assert aws.cloudwatch.list_metrics(Namespace="mlops/test/churn")["Metrics"] == []
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=CAPTURE, Prefix="churn/drift-reports/")


REGISTERED_KEY = "churn/runs/run-1/baseline/baseline.json"
REGISTERED = f"s3://{MODELS}/{REGISTERED_KEY}"


def test_a_model_without_a_baseline_in_its_archive_is_scored_against_its_registered_baseline(aws, baseline, caplog):
    """A model whose own code writes no baseline.json: the live version's package registers the platform's
    baseline (DriftCheckBaselines); the run scores the capture against it and says where it read it."""
    deploy(aws, model_archive(None), package=True, registered=REGISTERED)
    aws.s3.put_object(Bucket=MODELS, Key=REGISTERED_KEY, Body=json.dumps(baseline).encode())
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(300, seed=5)))
    result = run_job(settings(), WHEN, aws)
    assert result["status"] == "no_drift" and result["records"]["scored"] == 300
    assert metrics(aws)[("RecordsScored", None)] == 300
    partial = json.loads(aws.s3.get_object(Bucket=CAPTURE, Key=f"churn/drift-reports/partials/{WHEN - timedelta(hours=1):%Y/%m/%d/%H}.json")["Body"].read())
    assert result["baseline"] == REGISTERED, "the report names where its baseline came from"
    assert partial["baseline"] == baseline_fingerprint(load_baseline(baseline, REGISTERED)), "the hour's counts are keyed to the registered baseline's bins"


def test_the_processing_engine_is_handed_the_registered_baseline(aws, baseline, monkeypatch):
    deploy(aws, model_archive(None), package=True, registered=REGISTERED)
    aws.s3.put_object(Bucket=MODELS, Key=REGISTERED_KEY, Body=json.dumps(baseline).encode())
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(300, seed=5)))
    sent = []
    aws.sagemaker.meta.events.register("provide-client-params.sagemaker.CreateProcessingJob", lambda params, **_: sent.append(params))
    assert run_job(processing_settings(), WHEN, aws, score_here=False)["status"] == "started"
    assert sent[0]["Environment"]["MLOPS_DRIFT_BASELINE_URI"] == REGISTERED


@pytest.mark.parametrize(
    "body, reason",
    [
        (None, f"the registered baseline {REGISTERED} of arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-test-churn/1 cannot be read (NoSuchKey)"),
        (b"{not json", f"{REGISTERED} is not valid JSON"),
        (json.dumps({"format": "something-else"}).encode(), REGISTERED),
    ],
    ids=["missing", "corrupt", "not a baseline"],
)
def test_rejects_a_registered_baseline_that_is_missing_or_corrupt(aws, caplog, body, reason):
    deploy(aws, model_archive(None), package=True, registered=REGISTERED)
    if body is not None:
        aws.s3.put_object(Bucket=MODELS, Key=REGISTERED_KEY, Body=body)
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(300, seed=5)))
    with caplog.at_level("INFO", logger="mlops.drift"):
        result = run_job(settings(), WHEN, aws)
    assert result["status"] == "no_baseline" and result["baseline"] == REGISTERED
    assert reason in result["reason"] and REGISTERED in result["reason"]
    assert [r.levelname for r in caplog.records if result["reason"] in r.getMessage()] == ["WARNING"]
    assert "Traceback" not in caplog.text
    assert aws.cloudwatch.list_metrics(Namespace="mlops/test/churn")["Metrics"] == []


def test_rejects_a_package_without_drift_check_baselines_naming_both(aws, caplog):
    uri = deploy(aws, model_archive(None), package=True)
    with caplog.at_level("INFO", logger="mlops.drift"):
        result = run_job(settings(), WHEN, aws)
    assert result["status"] == "no_baseline"
    assert f"{uri} has no baseline.json and its model package" in result["reason"] and "registers no DriftCheckBaselines" in result["reason"]


def test_a_baseline_in_the_archive_wins_over_the_registered_one(aws, baseline):
    deploy(aws, model_archive(baseline), package=True, registered=REGISTERED)  # the registered object does not exist
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(300, seed=5)))
    assert run_job(settings(), WHEN, aws)["records"]["scored"] == 300


def test_handler_reads_its_settings_from_the_environment_and_the_schedule_time(aws, baseline, monkeypatch):
    aws.s3.put_object(Bucket=MODELS, Key="fixtures/baseline.json", Body=json.dumps(baseline).encode())
    put_capture(aws, WHEN - timedelta(hours=2), capture_file(generate(300, seed=8)))
    for key, value in settings().to_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLOPS_DRIFT_EVENT_BASELINE", "1")  # local use: the event may name the baseline
    result = handler({"scheduled_time": "2026-11-28T12:00:07Z", "baseline_uri": f"s3://{MODELS}/fixtures/baseline.json"})
    assert result["status"] == "no_drift" and result["records"]["scored"] == 300
    assert aws.s3.head_object(Bucket=CAPTURE, Key="churn/drift-reports/2026/11/28/12.json")


def test_the_deployed_handler_ignores_a_caller_supplied_baseline(aws, baseline, monkeypatch, caplog):
    """Without the local flag an invoker cannot make the job read an archive of their choosing: it resolves the
    live model (none here, so nothing is scored) and says why."""
    aws.s3.put_object(Bucket=MODELS, Key="fixtures/baseline.json", Body=json.dumps(baseline).encode())
    for key, value in settings().to_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLOPS_DRIFT_EVENT_BASELINE", raising=False)
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="DescribeEndpoint"):  # it went for the live model (none here), not the event's file
        handler({"scheduled_time": "2026-11-28T12:00:07Z", "baseline_uri": f"s3://{MODELS}/fixtures/baseline.json"})
    assert "ignoring the event's baseline_uri" in caplog.text


def processing_settings(**overrides) -> JobSettings:
    return settings(
        engine="processing", job_prefix="mlops-test-churn", processing_image="img:1", processing_role_arn=ROLE,
        processing_instance_type="ml.m5.xlarge", processing_max_runtime_seconds=1800,
        code_uri=f"s3://{MODELS}/code/abababababababababababababababababababababababababababababababab/sourcedir.tar.gz", kms_key_arn="arn:aws:kms:us-east-1:123456789012:key/k",
        **overrides,
    )


def download_manifest(aws, request, hosts: list[Path]) -> None:
    """What SageMaker does with a ManifestFile input sharded by key: each object to one host, under its relative key."""
    bucket, key = request["S3Uri"][5:].split("/", 1)
    manifest = json.loads(aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    prefix = manifest[0]["prefix"][5:].split("/", 1)[1]
    for i, relative in enumerate(manifest[1:]):
        target = hosts[i % len(hosts)] / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(aws.s3.get_object(Bucket=bucket, Key=prefix + relative)["Body"].read())


def test_processing_engine_starts_the_same_job_in_sagemaker(aws, baseline, monkeypatch, tmp_path):
    uri = deploy(aws, model_archive(baseline))
    put_capture(aws, WHEN - timedelta(hours=1), capture_file(generate(300, seed=5)))
    proc = processing_settings()
    sent = []  # moto keeps only part of the request; record what the client sent
    aws.sagemaker.meta.events.register("provide-client-params.sagemaker.CreateProcessingJob", lambda params, **_: sent.append(params))
    result = run_job(proc, WHEN, aws, score_here=False)
    job = aws.sagemaker.describe_processing_job(ProcessingJobName="mlops-test-churn-drift-20261128120007")
    assert result == {"status": "started", "processing_job": job["ProcessingJobName"]}
    assert job["RoleArn"] == ROLE and job["AppSpecification"]["ImageUri"] == "img:1"
    request = sent[0]
    assert request["ProcessingResources"]["ClusterConfig"] == {
        "InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 30, "VolumeKmsKeyId": proc.kms_key_arn,
    }
    assert request["ProcessingInputs"][0]["S3Input"]["S3Uri"] == proc.code_uri
    env = request["Environment"]
    assert env["MLOPS_DRIFT_BASELINE_URI"] == uri and env["MLOPS_DRIFT_ENGINE"] == "processing"
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=CAPTURE, Prefix="churn/drift-reports/2026/"), "the job writes the report"

    # The container runs `python -m training.drift` with that environment on its share of the manifest.
    download_manifest(aws, request["ProcessingInputs"][1]["S3Input"], [tmp_path])
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(input_dir=tmp_path, config=tmp_path / "no-resourceconfig.json") == 0
    stored = json.loads(aws.s3.get_object(Bucket=CAPTURE, Key="churn/drift-reports/2026/11/28/12.json")["Body"].read())
    assert stored["records"]["scored"] == 300 and stored["files"] == 1


def test_processing_job_request_is_a_valid_create_processing_job_call():
    import botocore.session

    model = ServiceModel(botocore.session.get_session().get_service_data("sagemaker"))
    request = processing_job_request(
        settings(engine="processing", job_prefix="mlops-test-churn", processing_image="img:1", processing_role_arn=ROLE,
                 processing_instance_type="ml.m5.large", processing_max_runtime_seconds=3600, code_uri="s3://b/code/abababababababababababababababababababababababababababababababab/sourcedir.tar.gz",
                 processing_instance_count=5),
        WHEN, "s3://b/churn/model.tar.gz",
    )
    report = ParamValidator().validate(request, model.operation_model("CreateProcessingJob").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert len(request["ProcessingJobName"]) <= 63
    assert request["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 5
    code, capture = (i["S3Input"] for i in request["ProcessingInputs"])
    assert code["S3DataDistributionType"] == "FullyReplicated", "every instance runs the package"
    assert capture == {
        "S3Uri": f"s3://{CAPTURE}/churn/drift-reports/partials/jobs/mlops-test-churn-drift-20261128120007/manifest.json",
        "LocalPath": "/opt/ml/processing/input/capture", "S3DataType": "ManifestFile", "S3InputMode": "File",
        "S3DataDistributionType": "ShardedByS3Key",
    }
    entry = request["AppSpecification"]["ContainerEntrypoint"]
    assert "python3 -m training.drift" in entry[-1]
    assert "sha256sum -c" in entry[2] and request["Environment"]["MLOPS_CODE_SHA256"] == "ab" * 32, "the package is checked first"
    assert all(len(item) <= 256 for item in entry), "CreateProcessingJob's limit per entry point item"
    assert "NetworkConfig" not in request


def test_a_processing_job_in_the_stack_vpc_is_a_valid_request_in_its_subnets():
    import botocore.session

    model = ServiceModel(botocore.session.get_session().get_service_data("sagemaker"))
    request = processing_job_request(
        settings(engine="processing", job_prefix="mlops-test-churn", processing_image="img:1", processing_role_arn=ROLE,
                 processing_instance_type="ml.m5.large", processing_max_runtime_seconds=3600, code_uri="s3://b/code/abababababababababababababababababababababababababababababababab/sourcedir.tar.gz",
                 subnet_ids="subnet-0123456789abcdef0,subnet-0123456789abcdef1", security_group_ids="sg-0123456789abcdef0"),
        WHEN, "s3://b/churn/model.tar.gz",
    )
    report = ParamValidator().validate(request, model.operation_model("CreateProcessingJob").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert request["NetworkConfig"] == {
        "EnableNetworkIsolation": False,
        "VpcConfig": {"Subnets": ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"], "SecurityGroupIds": ["sg-0123456789abcdef0"]},
    }


def test_rejects_an_incomplete_environment():
    with pytest.raises(DriftError, match="MLOPS_DRIFT_CAPTURE_BUCKET"):
        JobSettings.from_env({"MLOPS_DRIFT_MODEL": "churn", "MLOPS_DRIFT_ENDPOINT_NAME": "e", "MLOPS_DRIFT_METRIC_NAMESPACE": "n", "MLOPS_DRIFT_REPORT_PREFIX": "p/"})
    with pytest.raises(DriftError, match="MLOPS_DRIFT_WINDOW_HOURS='a day' is not a int"):
        JobSettings.from_env({**settings().to_env(), "MLOPS_DRIFT_WINDOW_HOURS": "a day"})


def test_a_model_describing_both_its_artifact_and_its_package_falls_back_to_the_package(aws, baseline):
    """DescribeModel may return the artifact (ModelDataUrl) beside ModelPackageName: the archive is read first and,
    without baseline.json, the package's registered baseline (responses checked against botocore's model)."""
    from botocore.stub import Stubber

    from training.drift import live_baseline

    archive = f"s3://{MODELS}/demand/runs/r1/training/model.tar.gz"
    aws.s3.put_object(Bucket=MODELS, Key="demand/runs/r1/training/model.tar.gz", Body=model_archive(None))
    aws.s3.put_object(Bucket=MODELS, Key=REGISTERED_KEY, Body=json.dumps(baseline).encode())
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-test-demand/4"
    created = datetime(2026, 11, 28, tzinfo=timezone.utc)
    sm = boto3.client("sagemaker", region_name=REGION)
    with Stubber(sm) as stub:
        stub.add_response("describe_endpoint", {
            "EndpointName": ENDPOINT, "EndpointArn": f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{ENDPOINT}",
            "EndpointConfigName": "cfg-1", "EndpointStatus": "InService", "CreationTime": created, "LastModifiedTime": created,
        }, {"EndpointName": ENDPOINT})
        stub.add_response("describe_endpoint_config", {
            "EndpointConfigName": "cfg-1", "EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/cfg-1",
            "ProductionVariants": [{"VariantName": "primary", "ModelName": "mdl-1"}], "CreationTime": created,
        }, {"EndpointConfigName": "cfg-1"})
        stub.add_response("describe_model", {
            "ModelName": "mdl-1", "ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/mdl-1", "CreationTime": created,
            "PrimaryContainer": {"Image": "img", "ModelDataUrl": archive, "ModelPackageName": package},
        }, {"ModelName": "mdl-1"})
        stub.add_response("describe_model_package", {
            "ModelPackageName": "mlops-test-demand", "ModelPackageArn": package, "CreationTime": created, "ModelPackageStatus": "Completed",
            "ModelPackageStatusDetails": {"ValidationStatuses": []},
            "DriftCheckBaselines": {"ModelDataQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": REGISTERED}}},
        }, {"ModelPackageName": package})
        found = live_baseline(Clients(aws.s3, sm, aws.cloudwatch), ENDPOINT)
        stub.assert_no_pending_responses()
    assert found.uri == REGISTERED and found.baseline is not None and found.reason == ""
