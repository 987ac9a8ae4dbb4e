"""`mlops data push/list/pull` through the real console script against LocalStack's versioned S3."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from components.naming import bucket_name
from infra.config import STACKS_DIR

pytestmark = pytest.mark.integration
MLOPS = str(Path(sys.executable).with_name("mlops"))


@pytest.fixture
def stack_file(tmp_path, localstack):
    """The shipped local stack, pointed at the test session's LocalStack, under a stack name of its own."""
    body = (STACKS_DIR / "Pulumi.local.yaml").read_text().replace("http://127.0.0.1:4566", localstack)
    path = tmp_path / "Pulumi.itest.yaml"
    path.write_text(body)
    return path


@pytest.fixture
def data_bucket(aws_client):
    """The data bucket as the platform component creates it: versioned, SSE-KMS with a stack key."""
    name = bucket_name("mlops", "itest", "data", "000000000000", "us-east-1")
    s3 = aws_client("s3")
    key = aws_client("kms").create_key(Description="itest")["KeyMetadata"]["Arn"]
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]},
    )
    yield name
    for v in s3.list_object_versions(Bucket=name).get("Versions", []):
        s3.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])
    s3.delete_bucket(Bucket=name)


def mlops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS, *args], capture_output=True, text=True, timeout=120)


def test_push_list_pull_round_trip(stack_file, data_bucket, tmp_path, aws_client):
    dataset = tmp_path / "churn.csv"
    dataset.write_text("a,b\n1,2\n")
    first = mlops("data", "push", str(dataset), "--file", str(stack_file), "--model", "churn")
    assert first.returncode == 0, first.stderr
    dataset.write_text("a,b\n1,2\n3,4\n")
    second = mlops("data", "push", str(dataset), "--file", str(stack_file), "--model", "churn")
    assert second.returncode == 0, second.stderr

    listed = mlops("data", "list", "--file", str(stack_file), "--model", "churn", "--json")
    assert listed.returncode == 0, listed.stderr
    versions = json.loads(listed.stdout)
    assert [v["key"] for v in versions] == ["churn/train/churn.csv"] * 2
    assert sum(v["latest"] for v in versions) == 1
    old = min(versions, key=lambda v: v["last_modified"] + ("1" if v["latest"] else "0"))
    assert old["version_id"] in first.stdout, "push prints the version id S3 assigned"

    out = tmp_path / "restored.csv"
    pulled = mlops("data", "pull", "--file", str(stack_file), "--model", "churn", "--version", old["version_id"], "--out", str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert out.read_text() == "a,b\n1,2\n", "the old version is restored, not the latest"
    head = aws_client("s3").head_object(Bucket=data_bucket, Key="churn/train/churn.csv")
    assert head["ServerSideEncryption"] == "aws:kms", "uploads take the bucket's default SSE-KMS"


def test_push_directory_keeps_relative_paths(stack_file, data_bucket, tmp_path):
    d = tmp_path / "ds"
    (d / "part").mkdir(parents=True)
    (d / "a.csv").write_text("x\n1\n")
    (d / "part" / "b.csv").write_text("x\n2\n")
    run = mlops("data", "push", str(d), "--file", str(stack_file), "--model", "churn", "--channel", "test")
    assert run.returncode == 0, run.stderr
    listed = json.loads(mlops("data", "list", "--file", str(stack_file), "--model", "churn", "--channel", "test", "--json").stdout)
    assert sorted(v["key"] for v in listed) == ["churn/test/a.csv", "churn/test/part/b.csv"]


def test_pull_unknown_version_is_a_clear_error(stack_file, data_bucket):
    run = mlops("data", "pull", "--file", str(stack_file), "--model", "churn", "--version", "nope")
    assert run.returncode == 2
    assert "version 'nope' not found" in run.stderr and "mlops data list" in run.stderr
    assert "Traceback" not in run.stderr


def test_missing_bucket_and_unknown_model_are_clear_errors(stack_file, tmp_path, localstack):
    f = tmp_path / "x.csv"
    f.write_text("x\n")
    run = mlops("data", "push", str(f), "--file", str(stack_file), "--model", "churn")
    assert run.returncode == 2 and "does not exist; deploy the stack first" in run.stderr, run.stderr
    run = mlops("data", "push", str(f), "--file", str(stack_file), "--model", "fraud")
    assert run.returncode == 2 and "has no model 'fraud'; its models: churn" in run.stderr
    run = mlops("data", "push", str(tmp_path / "missing.csv"), "--file", str(stack_file), "--model", "churn")
    assert run.returncode == 2 and "does not exist; give a dataset file" in run.stderr


def test_labels_push_writes_ground_truth_that_the_quality_join_reads(stack_file, data_bucket, tmp_path, aws_client):
    from training.quality import Labels

    labels = tmp_path / "labels.csv"
    labels.write_text("inference_id,label\nreq-1,1\nreq-2,0\n")
    run = mlops("labels", "push", str(labels), "--file", str(stack_file), "--model", "churn")
    assert run.returncode == 0, run.stderr
    s3 = aws_client("s3")
    [obj] = s3.list_objects_v2(Bucket=data_bucket, Prefix="churn/ground-truth/")["Contents"]
    assert obj["Key"] in run.stdout and obj["Key"].endswith(".jsonl")
    body = s3.get_object(Bucket=data_bucket, Key=obj["Key"])["Body"].read().decode()
    [first, second] = [json.loads(line) for line in body.splitlines()]
    assert first == {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "req-1"}, "eventVersion": "0"}
    got = Labels()
    got.feed(body.splitlines())
    assert got.by_id == {"req-1": [1.0], "req-2": [0.0]}


def test_a_bad_label_file_is_refused_and_nothing_is_written(stack_file, data_bucket, tmp_path, aws_client):
    labels = tmp_path / "labels.csv"
    labels.write_text("inference_id,label\nreq-1,1\nreq-2\n")
    run = mlops("labels", "push", str(labels), "--file", str(stack_file), "--model", "churn")
    assert run.returncode == 2 and "labels.csv:3: 1 columns; each row is inference_id,label" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert aws_client("s3").list_objects_v2(Bucket=data_bucket, Prefix="churn/ground-truth/").get("KeyCount") == 0
