"""Definition-level proofs about the CT flow as the shipped stacks synthesize it.

LocalStack is lenient where AWS is strict (a missing path, States.Runtime, long SNS subjects), so what the
scenarios cannot show is proven here on the real definitions: every JSONPath a state reads is present on
every way into it (``infra.review.pipeline_checks``), asl-validator accepts them, notification subjects fit
SNS, and the registration request fits SageMaker's model even for hostile S3 keys.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
from pathlib import Path

import pytest
from pipeline_fixtures import make_spec, own_code_variants
from botocore_shapes import operation, problems

from infra.review.pipeline_checks import LEAF, path_problems, task_result, uncatchable_problems
from components.pipeline.spec import NOTIFY_FAILURE
from components.pipeline.definition import SUBJECT_MAX, build_definition, subject, task_states

ROOT = Path(__file__).resolve().parents[3]
ASL_VALIDATOR = ROOT / ".ci" / "asl-validator" / "node_modules" / ".bin" / "asl-validator"
SFN = "aws:sfn/stateMachine:StateMachine"
VARIANTS = {
    "auto": {},
    "manual": {"approval": "manual"},
    "pinned": {"deploy_enabled": False},
    "manual-pinned": {"approval": "manual", "deploy_enabled": False},
    **own_code_variants(),
}


def shipped_definitions(manifests) -> dict[str, dict]:
    return {
        f"{stack}:{r['inputs']['name']}": json.loads(r["inputs"]["definition"])
        for stack in ("dev", "staging", "prod", "local")
        for r in manifests[stack].of_type(SFN)
    }


def test_shipped_definitions_read_only_paths_present_on_every_way_in(manifests):
    definitions = shipped_definitions(manifests)
    assert {k.split(":")[0] for k in definitions} == {"dev", "staging", "prod", "local"}
    for name, d in definitions.items():
        assert [str(p) for p in path_problems(d)] == [], name
        assert uncatchable_problems(d) == [], name


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_reads_only_present_paths(variant):
    assert [str(p) for p in path_problems(build_definition(make_spec(**VARIANTS[variant])))] == []


def test_shipped_definitions_pass_asl_validator(manifests, tmp_path):
    assert ASL_VALIDATOR.exists(), "run `make install` (it installs asl-validator from .ci/asl-validator)"
    args = []
    variants = [build_definition(make_spec(**v)) for v in own_code_variants().values()]
    for i, d in enumerate([*shipped_definitions(manifests).values(), *variants]):
        path = tmp_path / f"d{i}.json"
        path.write_text(json.dumps(d))
        args += ["--json-path", str(path)]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}))
    done = subprocess.run([str(ASL_VALIDATOR), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    refused = subprocess.run([str(ASL_VALIDATOR), "--json-path", str(broken)], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0, "the validator refuses a transition to a missing state"


# --- the checker finds the flaws the review reported ------------------------------------------------------------


def _flawed(change) -> list[str]:
    d = copy.deepcopy(build_definition(make_spec(approval="manual")))
    change(d["States"])
    return [str(p) for p in path_problems(d)]


def test_checker_finds_a_selected_optional_member():
    # Item 1: selecting $.ModelMetrics of DescribeModelPackage, optional in the API, fails the run on AWS.
    def select(states):
        states["DescribeProductionModel"]["ResultSelector"] = {"arn.$": "$.ModelPackageArn", "metrics.$": "$.ModelMetrics"}
    found = _flawed(select)
    assert any(p.startswith("DescribeProductionModel: ResultSelector.metrics.$ reads $.ModelMetrics") for p in found), found


def test_checker_finds_report_fields_read_without_presence_checks():
    # Item 2: the quality gate reading verdict, reasons and metrics of evaluation.json unguarded.
    def unguard(states):
        states["GateVerdict"]["Choices"] = [{"Variable": "$.evaluation.report.verdict", "StringEquals": "pass", "Next": "RegisterModel"}]
        states["GateVerdict"]["Default"] = "ModelRejected"
    found = "\n".join(_flawed(unguard))
    assert "GateVerdict: Choices[0] reads $.evaluation.report.verdict" in found
    assert "ModelRejected: Parameters.Cause.$ reads $.evaluation.report.reasons" in found
    assert "RegisterModel: Parameters.CustomerMetadataProperties.metric:test:roc_auc.$ reads $.evaluation.report.metrics.roc_auc" in found


def test_checker_finds_a_catch_output_read_beyond_error():
    # A Catch guarantees only "Error": a notice that quotes $.failure.Cause can fail on AWS (and leaks data).
    def quote_cause(states):
        states[NOTIFY_FAILURE]["Parameters"]["Message.$"] = "States.Format('{}', $.failure.caught.Cause)"
    found = _flawed(quote_cause)
    assert any("NotifyFailure: Parameters.Message.$ reads $.failure.caught.Cause" in p for p in found), found


def test_checker_sees_through_choice_guards_only_on_their_own_branch():
    def read_on_default(states):
        states["NoProductionModel"]["Parameters"]["inputs"][0]["S3Input"]["S3Uri.$"] = (
            "$.production_package.ModelMetrics.ModelQuality.Statistics.S3Uri"
        )
    found = _flawed(read_on_default)
    assert any(p.startswith("NoProductionModel:") and "from HasProductionMetrics" in p for p in found), found
    assert not any(p.startswith("CompareWithProduction:") for p in found), "guarded by IsPresent on its branch"


def test_rejects_catchers_that_name_states_runtime():
    d = build_definition(make_spec())
    d["States"]["Train"]["Catch"][0]["ErrorEquals"] = ["States.Runtime", "States.ALL"]
    assert uncatchable_problems(d) == ["Train.Catch[0] names States.Runtime, which Step Functions never retries or catches"]


def test_task_results_are_what_the_api_model_requires():
    assert task_result("arn:aws:states:::aws-sdk:sagemaker:describeModelPackage").keys() >= {"ModelPackageArn"}
    assert "ModelMetrics" not in task_result("arn:aws:states:::aws-sdk:sagemaker:describeModelPackage")
    train = task_result("arn:aws:states:::sagemaker:createTrainingJob.sync")  # .sync returns DescribeTrainingJob
    assert train["ModelArtifacts"] == {"S3ModelArtifacts": LEAF}
    assert "KeyCount" not in task_result("arn:aws:states:::aws-sdk:s3:listObjectsV2")
    assert "Body" in task_result("arn:aws:states:::aws-sdk:s3:getObject")


# --- notifications ----------------------------------------------------------------------------------------------


def _subjects(d: dict) -> list[str]:
    return [s["Parameters"]["subject"] for s in d["States"].values() if s["Type"] == "Pass" and "subject" in s.get("Parameters", {})]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_longest_possible_subject_fits_sns(variant):
    # The longest model name the config takes (24) and a long stack name: every subject is static and short.
    spec = make_spec(model="m" * 24, stack="s" * 40, **VARIANTS[variant])
    d = build_definition(spec)
    subjects = _subjects(d)
    assert len(subjects) >= 15
    assert max(len(s) for s in subjects) <= SUBJECT_MAX
    assert d["States"][NOTIFY_FAILURE]["Parameters"]["Subject.$"] == "$.failure.subject"
    assert d["States"]["NotifySuccess"]["Parameters"]["Subject.$"] == "$.notice.subject"
    # ...and each is set on every way into the publish (the path check proves $.failure.subject is there).
    assert path_problems(d) == []
    assert subject(spec, "new model deployed") == f"[{'s' * 40}] {'m' * 24}: new model deployed"
    assert subject(make_spec(stack="s" * 90), "new model deployed").endswith("...: new model deployed")


def test_rejects_a_subject_with_no_room_for_the_model():
    with pytest.raises(ValueError, match="no room for the stack and model"):
        subject(make_spec(), "x" * 90)


def test_failure_notices_name_error_state_run_and_console_never_the_cause():
    d = build_definition(make_spec())
    message = d["States"][NOTIFY_FAILURE]["Parameters"]["Message.$"]
    assert "Cause" not in message and "caught" not in message
    for field in ("$.failure.Error", "$.failure.State", "$.run.id", "$.run.execution_arn"):
        assert field in message
    assert "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/" in message
    # No notice anywhere quotes a failure's cause (a job's exit message can carry customer values).
    for name, state in d["States"].items():
        if "Parameters" in state:
            assert "$.failure.caught" not in json.dumps(state["Parameters"]).replace('"caught.$": "$.failure"', ""), name


# --- the registration request at run time, with hostile keys ----------------------------------------------------


def resolve(value, data: dict):
    """What Step Functions sends for a Parameters template (the intrinsics this flow uses)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k.endswith(".$"):
                out[k[:-2]] = _expr(v, data)
            else:
                out[k] = resolve(v, data)
        return out
    if isinstance(value, list):
        return [resolve(v, data) for v in value]
    return value


def _path(path: str, data: dict):
    node = data
    for step in re.findall(r"\.([\w:-]+)|\[(\d+)\]", path[1:]):
        node = node[step[0]] if step[0] else node[int(step[1])]
    return node


def _args(text: str) -> list[str]:
    args, depth, quoted, cur = [], 0, False, ""
    for c in text:
        if c == "'" and not cur.endswith("\\"):
            quoted = not quoted
        if c == "," and depth == 0 and not quoted:
            args.append(cur.strip())
            cur = ""
            continue
        depth += (c == "(") - (c == ")") if not quoted else 0
        cur += c
    return [*args, cur.strip()] if cur.strip() else args


def _expr(expr: str, data: dict):
    if expr.startswith("$$"):
        return {"$$.State.RetryCount": 0}.get(expr, "ctx")
    if expr.startswith("$"):
        return _path(expr, data)
    if expr.startswith("'"):
        return expr[1:-1].replace("\\{", "{").replace("\\}", "}")
    name, inner = expr.split("(", 1)
    args = [_expr(a, data) for a in _args(inner[:-1])]
    if name == "States.Format":
        parts = args[0].split("{}")
        return "".join(p + (str(a) if i < len(args) - 1 else "") for i, (p, a) in enumerate(zip(parts, [*args[1:], ""])))
    if name == "States.Hash":
        return hashlib.new(args[1].replace("-", "").lower(), args[0].encode()).hexdigest()
    if name == "States.JsonToString":
        return json.dumps(args[0], separators=(",", ":"))
    raise AssertionError(f"unhandled intrinsic {name}")


@pytest.mark.parametrize("key", ["churn/train/churn (v2),final.csv", "churn/train/" + "ü" * 300 + ".csv", "churn/train/a;b|c$d*e?.csv"])
def test_register_request_fits_sagemakers_model_for_hostile_keys(key):
    spec = make_spec()
    d = build_definition(spec)
    version = "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"
    data = {"snapshot": [{"key": key, "version_id": version, "size": 10, "etag": '"5d41402abc4b2a76b9719d911017c592"'}],
            "manifest_hash": {"sha256": "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="},
            "run": {"id": "20260101-000000-abcd", "execution_arn": spec.state_machine_arn.replace("stateMachine", "execution") + ":x",
                    "started": "2026-01-01T00:00:00.000Z"},
            "input": {"trigger": "new_data"}}
    data["snapshot"] = resolve(d["States"]["ManifestBody"]["Parameters"], data)
    data["data"] = resolve(d["States"]["OneDataObject"]["Parameters"], data)
    data["training"] = {"job_name": "mlops-itest-churn-train-20260101-000000-abcd-0", "model_data": "s3://models-b/churn/runs/x/model.tar.gz"}
    data["evaluation"] = {"report": {"metrics": {m: 0.87 for m in ("roc_auc", "accuracy", "f1", "log_loss", "precision", "recall")}}}
    register = task_states(d)["RegisterModel"]
    request = resolve(register["Parameters"], data)
    assert problems(operation(register["Resource"]).input_shape, request, "RegisterModel") == []
    lineage = request["CustomerMetadataProperties"]
    assert lineage["data:train:version_id"] == version and lineage["data:train:manifest_sha256"] == data["manifest_hash"]["sha256"]
    assert lineage["data:train:manifest"] == "s3://models-b/churn/snapshots/20260101-000000-abcd/manifest.json"
    assert lineage["data:train:s3_uri"] == "s3://models-b/churn/snapshots/20260101-000000-abcd/data/churn/train/", "what the jobs read"


def test_each_copy_lands_under_the_prefix_the_jobs_read_and_the_manifest_lists_it():
    spec = make_spec()
    d = build_definition(spec)
    key = "churn/train/sub dir/churn (v2),final.csv"
    run = {"id": "20260101-000000-abcd", "execution_arn": "arn:x"}
    item = d["States"]["SnapshotTrainingData"]["ItemProcessor"]["States"]
    listed = {"Key": key, "ETag": '"e"', "Size": 10}
    iteration = resolve(d["States"]["SnapshotTrainingData"]["ItemSelector"], {"run": run}) | {"object": listed}
    copy = resolve(item["CopyTrainingObject"]["Parameters"], iteration)
    assert copy["CopySource"] == f"data-b/{key}" and copy["CopySourceIfMatch"] == '"e"'
    iteration["copy"] = {"CopySourceVersionId": "v1"}
    entry = resolve(item["VersionedEntry"]["Parameters"], iteration)
    assert entry == {"key": key, "version_id": "v1", "size": 10, "etag": '"e"'}
    state = {"run": run, "snapshot": [entry], "manifest_hash": {"sha256": "abc="}}
    state["snapshot"] = resolve(d["States"]["ManifestBody"]["Parameters"], state)  # the manifest replaces the entries
    assert state["snapshot"]["objects"] == [entry] and state["snapshot"]["source"] == "s3://data-b/churn/train/"
    data = resolve(d["States"]["OneDataObject"]["Parameters"], state)
    assert copy["Bucket"] == "models-b" and f"s3://models-b/{copy['Key']}".startswith(data["s3_uri"]), "the jobs read the copies"
    assert data["s3_uri"].endswith("/data/churn/train/") and "snapshots/20260101-000000-abcd/" in data["s3_uri"]
    put = resolve(d["States"]["WriteDataManifest"]["Parameters"], state)
    assert f"s3://models-b/{put['Key']}" == data["manifest"] and put["Body"] == state["snapshot"]


def test_the_shape_check_refuses_a_lineage_value_sagemaker_would_refuse():
    shape = operation("arn:aws:states:::aws-sdk:sagemaker:createModelPackage").input_shape
    found = problems(shape.members["CustomerMetadataProperties"], {"data:train:s3_uri": "s3://data-b/churn (v2),final.csv"}, "Props")
    assert found and "does not match" in found[0]
