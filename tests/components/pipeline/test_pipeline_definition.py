"""The CT flow's pure builders: the ASL definition, the role's policy and the trigger rules (no mocks)."""

from __future__ import annotations

import json
import re

import pytest
from pipeline_fixtures import KEY, make_spec

from components.pipeline.config import PipelineConfig, TriggersConfig, VpcConfig, check_schedule
from components.pipeline.spec import DEPLOY, NOTIFY_FAILURE, PUBLIC_STATES
from components.pipeline.definition import build_definition, lineage_properties, task_states
from components.pipeline.permissions import state_machine_statements
from components.pipeline.triggers import (
    approval_rule,
    drift_rule,
    new_data_rule,
    schedule_target_input,
    start_execution_statement,
)
from training.contract import METRICS, DataVersion, Hyperparameters, LineageMetadata

VPC = {"subnet_ids": ("subnet-0123456789abcdef0", "subnet-0fedcba9876543210"), "security_group_ids": ("sg-0123456789abcdef0",)}


def all_states(definition):
    """(name, state, scope) for every state, with the Parallel it sits in (None at the top level)."""
    for name, state in definition["States"].items():
        yield name, state, None
        for branch in state.get("Branches", []):
            for inner, inner_state, _ in all_states(branch):
                yield inner, inner_state, name


def targets(state):
    out = [state.get("Next"), state.get("Default")]
    out += [c["Next"] for c in state.get("Choices", [])]
    out += [c["Next"] for c in state.get("Catch", [])]
    return [t for t in out if t]


def reachable(definition):
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += targets(definition["States"][name])
    return seen


@pytest.mark.parametrize("variant", [{}, {"approval": "manual"}, {"deploy_enabled": False}, {"approval": "manual", "deploy_enabled": False}])
def test_every_transition_lands_on_a_state_and_every_state_is_reachable(variant):
    d = build_definition(make_spec(**variant))
    scopes = [d] + [b for s in d["States"].values() for b in s.get("Branches", [])]
    for scope in scopes:
        for name, state in scope["States"].items():
            for t in targets(state):
                assert t in scope["States"], f"{name} → {t} leaves its scope"
        assert reachable(scope) == set(scope["States"]), set(scope["States"]) - reachable(scope)
    names = [n for n, _, _ in all_states(d)]
    assert len(names) == len(set(names)), "state names are unique across branches (mock configs address them by name)"
    assert len(json.dumps(d)) < 1_000_000


def test_public_state_names_exist():
    names = {n for n, _, _ in all_states(build_definition(make_spec()))}
    assert set(PUBLIC_STATES) <= names
    assert {"ValidateData", "Train", "Evaluate", "QualityGate", "RegisterModel", "Deploy", "NotifySuccess", "NotifyFailure"} == set(PUBLIC_STATES)


@pytest.mark.parametrize("variant", [{}, {"approval": "manual"}])
def test_every_task_catches_to_notify_failure(variant):
    d = build_definition(make_spec(**variant))
    for name, state, parallel in all_states(d):
        if state["Type"] != "Task":
            continue
        if name in ("NotifySuccess", "NotifyFailure"):
            # A failed notification still ends the run failed; it cannot notify about itself.
            assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"] and state["Catch"][0]["Next"] != NOTIFY_FAILURE
            continue
        catcher_name = name if parallel is None else parallel
        catcher = state if parallel is None else d["States"][parallel]
        if name == "RecordTrained":
            # The staleness heartbeat: a failure to publish it must not fail a run that trained a model.
            assert catcher["Catch"][0]["ErrorEquals"] == ["States.ALL"] and catcher["Catch"][0]["ResultPath"] == "$.metric_error"
            continue
        if name.startswith(("CheckPending", "ClearPending", "StartPending")):
            # Starting the queued run happens after the run's outcome is known: it must not change it.
            assert catcher["Catch"][0]["ErrorEquals"] == ["States.ALL"] and catcher["Catch"][0]["ResultPath"] == "$.pending_error"
            continue
        assert catcher["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": f"Failed{catcher_name}"}], name
        # The step a Catch leads to names the failing state, then notifies.
        recorded = d["States"][f"Failed{catcher_name}"]
        assert recorded["Parameters"]["State"] == catcher_name and recorded["Next"] == NOTIFY_FAILURE


def test_sagemaker_tasks_retry_per_aws_guidance_and_stay_within_single_digit_attempts():
    d = build_definition(make_spec())
    sagemaker = {n: s for n, s in task_states(d).items() if ":sagemaker:" in s["Resource"]}
    assert set(sagemaker) >= {"ValidateData", "Train", "Evaluate", "RegisterModel", "CreateModel", "UpdateEndpoint", "DescribeEndpoint"}
    for name, state in sagemaker.items():
        by_error = {e: r for r in state["Retry"] for e in r["ErrorEquals"]}
        service = by_error["SageMaker.AmazonSageMakerException"]
        assert service["MaxAttempts"] <= 5 and service["MaxDelaySeconds"] <= 60 and service["BackoffRate"] > 1, name
        assert "ThrottlingException" in service["ErrorEquals"]
        capacity = by_error["SageMaker.ResourceLimitExceededException"]
        assert capacity["IntervalSeconds"] >= 60 and capacity["IntervalSeconds"] > service["IntervalSeconds"]
        # The retry count is one digit of every job name: all retriers together stay below 10 attempts.
        assert sum(r["MaxAttempts"] for r in state["Retry"]) <= 9, name
        assert "States.ALL" not in by_error, "a failed job is not retried blindly"


def test_job_names_are_unique_per_run_and_per_attempt_and_fit_63_characters():
    spec = make_spec(job_prefix="x" * 32)
    d = build_definition(spec)
    params = {n: s["Parameters"] for n, s in task_states(d).items()}
    names = {
        "ValidateData": params["ValidateData"]["ProcessingJobName.$"],
        "Train": params["Train"]["TrainingJobName.$"],
        "Evaluate": params["Evaluate"]["ProcessingJobName.$"],
        "CreateModel": params["CreateModel"]["ModelName.$"],
        "CreateEndpointConfig": params["CreateEndpointConfig"]["EndpointConfigName.$"],
    }
    templates = set()
    for state, expr in names.items():
        assert expr.endswith("', $.run.id, $$.State.RetryCount)"), state
        template = re.match(r"States\.Format\('(.*)',", expr)[1]
        templates.add(template)
        longest = template.replace("{}", "20261128-120000-abcd", 1).replace("{}", "9", 1)
        assert len(longest) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", longest), longest
    assert len(templates) == len(names), "each step names its jobs differently"
    run_id = d["States"]["RunContext"]["Parameters"]["run"]["id.$"]
    assert "$.random[1]" in run_id and "$.time[5]" in run_id
    assert d["States"]["Init"]["Parameters"]["random.$"] == "States.StringSplit(States.UUID(), '-')"
    assert d["States"]["RegisterModel"]["Parameters"]["ClientToken.$"] == "$.run.id", "registration is idempotent under retries"


def test_rejects_a_job_prefix_that_would_overflow_job_names():
    with pytest.raises(ValueError, match="longer than 32"):
        make_spec(job_prefix="x" * 33)


def test_rejects_subnets_without_security_groups():
    with pytest.raises(ValueError, match="go together"):
        make_spec(subnet_ids=("subnet-0123456789abcdef0",))


def test_jobs_and_endpoint_configs_are_encrypted_with_the_stack_key():
    d = build_definition(make_spec())
    p = {n: s["Parameters"] for n, s in task_states(d).items()}
    train = p["Train"]
    assert train["OutputDataConfig"]["KmsKeyId"] == KEY and train["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    for job in ("ValidateData", "Evaluate"):
        assert p[job]["ProcessingOutputConfig"]["KmsKeyId"] == KEY
        assert p[job]["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KEY
    assert p["CreateEndpointConfig"]["KmsKeyId"] == KEY
    assert p["CreateEndpointConfig"]["DataCaptureConfig"]["KmsKeyId"] == KEY
    assert p["CreateModel"]["EnableNetworkIsolation"] is True


def test_spot_training_waits_and_checkpoints_only_when_configured():
    on = task_states(build_definition(make_spec(spot=True, max_wait_seconds=7200)))["Train"]["Parameters"]
    assert on["EnableManagedSpotTraining"] is True
    assert on["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert on["CheckpointConfig"]["S3Uri.$"] == "States.Format('s3://models-b/churn/runs/{}/checkpoints', $.run.id)"
    off = task_states(build_definition(make_spec()))["Train"]["Parameters"]
    assert "EnableManagedSpotTraining" not in off and "CheckpointConfig" not in off
    assert off["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}


def test_vpc_puts_every_job_and_model_in_the_subnets_isolated_and_encrypted():
    p = {n: s["Parameters"] for n, s in task_states(build_definition(make_spec(**VPC))).items()}
    vpc = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": list(VPC["subnet_ids"])}
    assert p["Train"]["VpcConfig"] == vpc
    assert p["Train"]["EnableNetworkIsolation"] is True and p["Train"]["EnableInterContainerTrafficEncryption"] is True
    for job in ("ValidateData", "Evaluate"):
        assert p[job]["NetworkConfig"] == {"EnableInterContainerTrafficEncryption": True, "EnableNetworkIsolation": True, "VpcConfig": vpc}
    assert p["CreateModel"]["VpcConfig"] == vpc
    plain = {n: s["Parameters"] for n, s in task_states(build_definition(make_spec())).items()}
    assert "VpcConfig" not in plain["Train"] and "VpcConfig" not in plain["ValidateData"]["NetworkConfig"] and "VpcConfig" not in plain["CreateModel"]


@pytest.mark.parametrize("variant", [{}, VPC, {"spot": True, "max_wait_seconds": 7200}])
def test_every_training_and_processing_job_is_network_isolated_with_or_without_a_vpc(variant):
    tasks = task_states(build_definition(make_spec(**variant)))
    jobs = {n: s["Parameters"] for n, s in tasks.items() if s["Resource"].split(":")[-1].startswith(("createTrainingJob", "createProcessingJob"))}
    assert set(jobs) == {"ValidateData", "Train", "Evaluate"}
    for name, params in jobs.items():
        isolated = params["EnableNetworkIsolation"] if "TrainingJobName.$" in params else params["NetworkConfig"]["EnableNetworkIsolation"]
        assert isolated is True, name


def test_training_runs_the_code_package_in_script_mode_with_the_contract_and_metrics():
    spec = make_spec()
    train = task_states(build_definition(spec))["Train"]["Parameters"]
    hp = train["HyperParameters"]
    assert hp["sagemaker_program"] == "training/train.py"
    assert hp["sagemaker_submit_directory"] == "/opt/ml/input/data/code/sourcedir.tar.gz"
    assert hp["max_iter"] == "300" and hp["learning_rate"] == "0.1"
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"].get("S3Uri") or c["DataSource"]["S3DataSource"]["S3Uri.$"] for c in train["InputDataConfig"]}
    assert channels == {"train": "$.data.s3_uri", "contract": f"s3://models-b/{spec.contract_key}", "code": spec.code_uri}
    assert train["Environment"]["MLOPS_CONTRACT"] == f"/opt/ml/input/data/contract/{spec.contract_key.rsplit('/', 1)[1]}"
    names = {m["Name"] for m in train["AlgorithmSpecification"]["MetricDefinitions"]}
    assert "validation:roc_auc" in names and "train:log_loss" in names


def test_processing_jobs_unpack_the_code_and_run_the_entry_points_with_their_real_arguments():
    spec = make_spec()
    d = build_definition(spec)
    validate = task_states(d)["ValidateData"]["Parameters"]
    entry = validate["AppSpecification"]["ContainerEntrypoint"]
    # First the package's digest is checked, then the run script unpacks it and runs the module.
    assert entry[:2] == ["/bin/bash", "-c"] and "sha256sum -c" in entry[2] and entry[3:5] == ["/bin/bash", "-c"]
    assert validate["Environment"]["MLOPS_CODE_SHA256"] == spec.code_sha256
    assert "tar xzf sourcedir.tar.gz" in entry[5] and "pip" not in entry[5] and 'python -m training.validate "$@"' in entry[5]
    args = validate["AppSpecification"]["ContainerArguments"]
    assert args[args.index("--data") + 1] == "/opt/ml/processing/input/data"
    assert args[args.index("--failure-file") + 1] == "/opt/ml/output/message", "the refusal reaches the job's ExitMessage"
    inputs = {i["InputName"]: i["S3Input"].get("S3Uri") or i["S3Input"]["S3Uri.$"] for i in validate["ProcessingInputs"]}
    assert inputs["code"] == spec.code_uri and inputs["data"] == "$.data.s3_uri"
    compare = d["States"]["CompareWithProduction"]["Parameters"]
    assert compare["arguments"][-2:] == ["--baseline-metrics", "/opt/ml/processing/input/production/evaluation.json"]
    assert "--baseline-metrics" not in d["States"]["NoProductionModel"]["Parameters"]["arguments"]
    for state in ("CompareWithProduction", "NoProductionModel"):
        a = d["States"][state]["Parameters"]["arguments"]
        assert a[a.index("--minimum") + 1] == "0.7" and a[a.index("--test") + 1] == "/opt/ml/processing/input/holdout"
    evaluate = task_states(d)["Evaluate"]["Parameters"]
    assert evaluate["ProcessingInputs.$"] == "$.evaluate.inputs" and evaluate["AppSpecification"]["ContainerArguments.$"] == "$.evaluate.arguments"


def test_quality_gate_reads_evaluation_json_and_only_a_pass_registers():
    d = build_definition(make_spec())
    gate = d["States"]["QualityGate"]
    assert gate["Resource"] == "arn:aws:states:::aws-sdk:s3:getObject"
    assert gate["Parameters"]["Key.$"] == "States.Format('churn/runs/{}/evaluation/evaluation.json', $.run.id)"
    assert gate["ResultSelector"] == {"report.$": "States.StringToJson($.Body)"}
    verdict = d["States"]["GateVerdict"]
    passing = verdict["Choices"][0]
    assert passing["Next"] == "RegisterModel" and {"Variable": "$.evaluation.report.verdict", "StringEquals": "pass"} in passing["And"]
    # Every metric RegisterModel records is tested for before it is read; an incomplete report fails notified.
    assert {c["Variable"] for c in passing["And"] if c.get("IsPresent")} >= {f"$.evaluation.report.metrics.{m}" for m in METRICS}
    assert verdict["Choices"][1]["Next"] == "ModelRejected" and verdict["Default"] == "ReportIncomplete"
    assert d["States"]["ReportIncomplete"]["Parameters"]["Error"] == "EvaluationReportIncomplete"
    assert d["States"]["ModelRejected"]["Next"] == NOTIFY_FAILURE == d["States"]["ReportIncomplete"]["Next"]


def test_lineage_keys_are_exactly_lineage_metadata_keys():
    spec = make_spec()
    props = lineage_properties(spec)
    expected = LineageMetadata(
        stack="itest", model_name="churn", training_job_name="j", code_sha256=spec.code_sha256,
        data={"train": DataVersion(s3_uri="s3://data-b/churn/train/x.csv", version_id="v")},
        hyperparameters=Hyperparameters(max_iter=300), metrics={f"test:{m}": 0.5 for m in METRICS},
    ).to_customer_metadata()
    assert {k.removesuffix(".$") for k in props} == set(expected) | {"data:train:manifest", "data:train:manifest_sha256"}
    assert props["hyperparameter:max_iter"] == "300" and props["code_sha256"] == spec.code_sha256
    assert props["data:train:version_id.$"] == "$.data.version_id" and props["training_job.$"] == "$.training.job_name"
    register = task_states(build_definition(spec))["RegisterModel"]["Parameters"]
    assert register["CustomerMetadataProperties"] == props
    assert register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri.$"].endswith("/evaluation/evaluation.json', $.run.id)")
    assert register["MetadataProperties"] == {"GeneratedBy.$": "$.run.execution_arn", "CommitId": spec.code_sha256, "Repository": spec.code_uri}


def test_the_jobs_read_a_snapshot_of_the_listed_objects_not_the_live_prefix():
    d = build_definition(make_spec())
    states = d["States"]
    assert states["ListTrainingData"]["Next"] == "CountTrainingData"
    assert states["ListTrainingData"]["Parameters"] == {"Bucket": "data-b", "Prefix": "churn/train/", "MaxKeys": 100}
    count = states["CountTrainingData"]
    assert [c["Next"] for c in count["Choices"]] == ["TooManyDataObjects", "SnapshotTrainingData"] and count["Default"] == "NoTrainingData"
    assert states["TooManyDataObjects"]["Parameters"]["Error"] == "TooManyDataObjects", "a second page is refused, not dropped"
    snap = states["SnapshotTrainingData"]
    assert snap["Type"] == "Map" and snap["ItemsPath"] == "$.snapshot.Contents" and 1 <= snap["MaxConcurrency"] <= 40
    assert snap["Next"] == "ManifestBody" and states["ManifestBody"]["Next"] == "WriteDataManifest"
    item = snap["ItemProcessor"]["States"]
    copy = item["CopyTrainingObject"]["Parameters"]
    assert item["CopyTrainingObject"]["Resource"] == "arn:aws:states:::aws-sdk:s3:copyObject"
    assert copy["CopySourceIfMatch.$"] == "$.object.ETag", "the copy is the listed object or none"
    assert (copy["ServerSideEncryption"], copy["SSEKMSKeyId"]) == ("aws:kms", KEY)
    manifest = states["WriteDataManifest"]["Parameters"]
    assert manifest["ChecksumAlgorithm"] == "SHA256" and manifest["SSEKMSKeyId"] == KEY
    # Objects over CopyObject's 5 GB are refused by name, before any copy.
    too_large = next(c for c in item["CanCopyObject"]["Choices"] if c["Next"] == "DataObjectTooLarge")
    assert {"Variable": "$.object.Size", "NumericGreaterThan": 5 * 1024**3} in too_large["And"]
    assert item["DataObjectTooLarge"]["Type"] == "Fail" and snap["Catch"][0]["Next"] == "FailedSnapshotTrainingData"
    # Both jobs read what the snapshot wrote; nothing reads the live training prefix any more.
    tasks = task_states(d)
    assert {"InputName": "data", "S3Input": {"LocalPath": "/opt/ml/processing/input/data", "S3DataType": "S3Prefix", "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated", "S3Uri.$": "$.data.s3_uri"}} in tasks["ValidateData"]["Parameters"]["ProcessingInputs"]
    train = {c["ChannelName"]: c for c in tasks["Train"]["Parameters"]["InputDataConfig"]}["train"]
    assert train["DataSource"]["S3DataSource"]["S3Uri.$"] == "$.data.s3_uri"
    readers = [n for n, t in tasks.items() if "s3://data-b/churn/train/" in json.dumps(t["Parameters"])]
    assert readers == [], readers
    for name in ("OneDataObject", "ManyDataObjects"):
        assert states[name]["Parameters"]["s3_uri.$"] == "$.snapshot.copy" and states[name]["Next"] == "ValidateData"


@pytest.mark.parametrize(
    "approval, status, after",
    [("auto", "Approved", "VerifyPackage"), ("manual", "PendingManualApproval", "AwaitApproval")],
)
def test_approval_decides_whether_the_run_deploys_or_waits(approval, status, after):
    d = build_definition(make_spec(approval=approval))
    assert d["States"]["RegisterModel"]["Parameters"]["ModelApprovalStatus"] == status
    assert d["States"]["RegisterModel"]["Next"] == "RecordTrained" and d["States"]["RecordTrained"]["Next"] == after
    assert ("RouteMode" in d["States"]) is (approval == "manual"), "deploy-only runs exist with manual approval"
    if approval == "manual":
        assert d["States"]["AwaitApproval"]["Parameters"]["subject"] == "[itest] churn: new model awaiting approval"
        route = d["States"]["RouteMode"]["Choices"][0]
        assert (route["Variable"], route["StringEquals"], route["Next"]) == ("$.input.mode", "deploy", "CheckDeploying")
        assert d["States"]["PackageFromApproval"]["Next"] == "VerifyPackage"
        assert d["States"]["IsNewestApproved"]["Choices"][0]["Next"] == DEPLOY


def test_a_pinned_serving_config_ends_the_run_after_registration():
    d = build_definition(make_spec(deploy_enabled=False))
    assert DEPLOY not in d["States"] and d["States"]["RecordTrained"]["Next"] == "Registered"
    assert d["States"]["Registered"]["Next"] == "NotifySuccess"
    actions = {a for s in state_machine_statements(make_spec(deploy_enabled=False)) for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not actions & {"sagemaker:UpdateEndpoint", "sagemaker:CreateModel", "kms:CreateGrant"}


def test_guards_list_every_page_and_keep_training_and_deploy_runs_apart():
    spec = make_spec(approval="manual")
    states = build_definition(spec)["States"]
    for kind, alias in (("Running", spec.alias_arn), ("Deploying", spec.deploy_alias_arn)):
        assert states[f"List{kind}"]["Parameters"]["StateMachineArn"] == spec.state_machine_arn
        assert states[f"List{kind}More"]["Parameters"]["NextToken.$"] == "$.guard_page.NextToken"
        of_kind = states[f"Scan{kind}"]["ItemProcessor"]["States"][f"OfKind{kind}"]["Choices"][0]["And"]
        assert {"Variable": "$.item.StateMachineAliasArn", "StringEquals": alias} in of_kind
    assert states["AnotherRunning"]["Choices"][-1]["Next"] == "IsQueuedRun" and states["AnotherRunning"]["Default"] == "IsNewData"
    assert states["AlreadyRunning"]["Type"] == "Succeed"


def test_deployment_waits_for_the_endpoint_and_detects_a_rollback():
    spec = make_spec(deploy_poll_seconds=30, deploy_timeout_seconds=3600)
    deploy = build_definition(spec)["States"][DEPLOY]
    branch = deploy["Branches"][0]["States"]
    update = branch["UpdateEndpoint"]["Parameters"]
    assert update == {"EndpointName": "mlops-itest-churn", "EndpointConfigName.$": "$.endpoint_config.name", "RetainDeploymentConfig": True}
    assert branch["WaitForEndpoint"]["Seconds"] == 30
    status = branch["EndpointStatus"]["Choices"]
    # The status decides first; the timeout only applies to an endpoint that is still moving.
    assert status[0] == {"Variable": "$.endpoint.EndpointStatus", "StringEquals": "InService", "Next": "CheckLiveConfig"}
    assert status[-1]["Next"] == "DeploymentTimedOut" and status[-2]["And"][1] == {"Variable": "$.wait.polls", "NumericLessThan": 120}
    live = branch["CheckLiveConfig"]["Choices"][0]["And"][1]
    assert (live["Variable"], live["StringEqualsPath"]) == ("$.endpoint.EndpointConfigName", "$.endpoint_config.name")
    assert branch["CheckLiveConfig"]["Choices"][1]["Next"] == "DeploymentRolledBack"
    assert branch["CreateEndpointConfig"]["Next"] == "StartEndpointWait"
    assert branch["EndpointReady"]["Choices"][0] == {"Variable": "$.endpoint.EndpointStatus", "StringEquals": "InService", "Next": "UpdateEndpoint"}
    assert "previous model is still live" in branch["DeploymentRolledBack"]["CausePath"]
    variant = branch["CreateEndpointConfig"]["Parameters"]["ProductionVariants"][0]
    assert variant["ModelName.$"] == "$.model.name" and "ModelName" not in variant and variant["VariantName"] == "primary"
    assert branch["CreateModel"]["Parameters"]["PrimaryContainer"] == {"ModelPackageName.$": "$.package.arn"}


def test_serverless_endpoint_configs_carry_no_volume_key():
    variant = {"VariantName": "primary", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
    params = task_states(build_definition(make_spec(endpoint_variant=variant)))["CreateEndpointConfig"]["Parameters"]
    assert "KmsKeyId" not in params and params["ProductionVariants"][0]["ServerlessConfig"]["MaxConcurrency"] == 5


@pytest.mark.parametrize("variant", [{}, {"approval": "manual"}])
def test_a_redrive_of_a_notified_failure_restarts_at_a_fail_state_and_reruns_no_work(variant):
    """README "Redrive": RedriveExecution continues from the state that failed. After NotifyFailure every way
    ends in a Fail state (the execution's failing state, so the redrive point) and passes no job, registry,
    deploy or notify call on the way: a redrive of a notified failure fails again at once, nothing reruns."""
    d = build_definition(make_spec(**variant))
    states = d["States"]
    seen, todo, ends = set(), [NOTIFY_FAILURE], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        nexts = [s[k] for s in [state, *state.get("Choices", []), *state.get("Catch", [])] for k in ("Next", "Default") if k in s]
        if not nexts:
            ends.add(name)
        todo += nexts
    assert ends and all(states[e]["Type"] == "Fail" for e in ends), {e: states[e]["Type"] for e in ends}
    assert ends == {"RunFailed", "StepFailed"}
    after = {n: states[n]["Resource"].split(":::")[1] for n in seen - {NOTIFY_FAILURE} if states[n]["Type"] == "Task"}
    # Only the queued-run check (its errors caught, never the outcome) runs between the notice and the Fail state.
    assert set(after.values()) <= {"aws-sdk:s3:listObjectsV2", "aws-sdk:s3:deleteObject", "aws-sdk:sfn:startExecution"}, after
    assert all(n.startswith(("CheckPending", "ClearPending", "StartPending")) for n in after), after


def test_fail_states_never_use_reserved_error_names():
    for name, state, _ in all_states(build_definition(make_spec(approval="manual"))):
        if state["Type"] == "Fail" and "Error" in state:
            assert not state["Error"].startswith("States."), name
    kind = build_definition(make_spec())["States"]["FailureKind"]
    assert kind["Choices"][0] == {"Variable": "$.failure.Error", "StringMatches": "States.*", "Next": "StepFailed"}


def test_execution_logs_and_alias_starts_are_the_only_unscoped_or_qualified_grants():
    spec = make_spec()
    statements = {s["Sid"]: s for s in state_machine_statements(spec)}
    assert {sid for sid, s in statements.items() if s["Resource"] == "*"} == {"ExecutionLogsAndTraces", "PublishTrainedHeartbeat"}
    heartbeat = statements["PublishTrainedHeartbeat"]
    assert heartbeat["Action"] == "cloudwatch:PutMetricData"
    assert heartbeat["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MLOps/ContinuousTraining"}}
    assert set(statements["ExecutionLogsAndTraces"]["Action"]) <= {
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery", "logs:ListLogDeliveries",
        "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
        "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    }


def test_role_runs_only_this_models_jobs_and_passes_only_its_role_to_sagemaker():
    spec = make_spec()
    s = {x["Sid"]: x for x in state_machine_statements(spec)}
    assert s["RunOwnJobs"]["Resource"] == [
        "arn:aws:sagemaker:us-east-1:000000000000:processing-job/mlops-itest-churn-*",
        "arn:aws:sagemaker:us-east-1:000000000000:training-job/mlops-itest-churn-*",
    ]
    assert s["PassOnlyTheModelRoleToSageMaker"] == {
        "Sid": "PassOnlyTheModelRoleToSageMaker", "Effect": "Allow", "Action": "iam:PassRole", "Resource": spec.role_arn,
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    assert s["SyncJobEventRules"]["Resource"] == [
        "arn:aws:events:us-east-1:000000000000:rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule",
        "arn:aws:events:us-east-1:000000000000:rule/StepFunctionsGetEventsForSageMakerTrainingJobsRule",
    ]
    assert s["NotifyStackTopic"]["Resource"] == spec.topic_arn and s["NotifyStackTopic"]["Action"] == "sns:Publish"
    assert s["UpdateOwnEndpoint"]["Resource"] == [
        "arn:aws:sagemaker:us-east-1:000000000000:endpoint/mlops-itest-churn",
        "arn:aws:sagemaker:us-east-1:000000000000:endpoint-config/mlops-itest-churn-*",
    ]
    assert s["RegisterInOwnGroup"]["Resource"][1] == "arn:aws:sagemaker:us-east-1:000000000000:model-package/mlops-itest-churn/*"
    assert s["SeeOwnRuns"]["Resource"] == spec.state_machine_arn
    assert s["GrantStackKeyToEndpointVolumes"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}
    assert s["GrantStackKeyToEndpointVolumes"]["Action"] == "kms:CreateGrant", "DescribeKey cannot carry that condition"


def test_every_called_integration_is_granted():
    """Each Task's API has an IAM action in the policy (the definition and the policy cannot drift apart)."""
    spec = make_spec(approval="manual")
    granted = {a for s in state_machine_statements(spec) for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    granted |= {"s3:ListBucket", "s3:GetObject"}  # from the buckets' grant_read (tests/components/pipeline/test_pipeline.py)
    needed = {
        "createProcessingJob": "sagemaker:CreateProcessingJob", "createTrainingJob": "sagemaker:CreateTrainingJob",
        "createModelPackage": "sagemaker:CreateModelPackage", "listModelPackages": "sagemaker:ListModelPackages",
        "describeModelPackage": "sagemaker:DescribeModelPackage", "createModel": "sagemaker:CreateModel",
        "createEndpointConfig": "sagemaker:CreateEndpointConfig", "updateEndpoint": "sagemaker:UpdateEndpoint",
        "describeEndpoint": "sagemaker:DescribeEndpoint", "listExecutions": "states:ListExecutions", "publish": "sns:Publish",
        "listObjectsV2": "s3:ListBucket", "copyObject": "s3:PutObject", "getObject": "s3:GetObject",
        "putMetricData": "cloudwatch:PutMetricData", "putObject": "s3:PutObject", "deleteObject": "s3:DeleteObject", "startExecution": "states:StartExecution",
    }
    for name, state in task_states(build_definition(spec)).items():
        api = state["Resource"].rsplit(":", 1)[1].removesuffix(".sync")
        assert needed[api] in granted, (name, api)


def fill(template: str, values: dict[str, str]) -> dict:
    """What EventBridge does with an input template: each <name> becomes the JSON of its value."""
    return json.loads(re.sub(r"<(\w+)>", lambda m: json.dumps(values[m[1]]), template))


def test_new_data_rule_passes_the_object_version_to_the_run():
    rule = new_data_rule(make_spec())
    assert rule.pattern == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["data-b"]}, "object": {"key": [{"prefix": "churn/train/"}]}},
    }
    assert rule.input_paths["version"] == "$.detail.object.version-id"
    run_input = fill(rule.input_template, {"id": "e1", "bucket": "data-b", "key": "churn/train/a.csv", "version": "v1"})
    assert run_input == {"id": "e1", "trigger": "new_data", "data": {"bucket": "data-b", "key": "churn/train/a.csv", "version_id": "v1"}}


def test_drift_and_approval_rules_match_their_events():
    spec = make_spec(approval="manual")
    drift = drift_rule(spec, "mlops-itest-churn-drift")
    assert drift.pattern["detail"] == {"alarmName": ["mlops-itest-churn-drift"], "state": {"value": ["ALARM"]}}
    assert fill(drift.input_template, {"id": "e", "alarm": "a", "reason": "r"})["trigger"] == "drift"
    approval = approval_rule(spec)
    assert approval.pattern["detail"] == {"ModelPackageGroupName": ["mlops-itest-churn"], "ModelApprovalStatus": ["Approved"]}
    arn = "arn:aws:sagemaker:us-east-1:000000000000:model-package/mlops-itest-churn/7"
    assert fill(approval.input_template, {"id": "e", "arn": arn}) == {"id": "e", "trigger": "approval", "mode": "deploy", "model_package_arn": arn}


def test_schedule_and_rules_start_runs_only_through_the_aliases():
    spec = make_spec()
    target = json.loads(schedule_target_input(spec))
    assert target["StateMachineArn"] == spec.alias_arn == f"{spec.state_machine_arn}:current"
    assert json.loads(target["Input"]) == {"trigger": "schedule", "scheduled_time": "<aws.scheduler.scheduled-time>"}
    stmt = start_execution_statement(spec, ("current",))
    assert stmt["Resource"] == spec.state_machine_arn
    assert stmt["Condition"] == {"StringEquals": {"states:StateMachineQualifier": ["current"]}}


@pytest.mark.parametrize("expression", ["rate(1 day)", "rate(7 days)", "cron(0 3 ? * SUN *)", "cron(15 2 1 * ? *)"])
def test_accepts_scheduler_expressions(expression):
    assert TriggersConfig(schedule=expression).schedule == expression


@pytest.mark.parametrize(
    "expression, message",
    [
        ("rate(1 days)", "singular unit for 1"),
        ("rate(2 day)", "singular unit for 1"),
        ("cron(0 3 * * SUN)", "6 fields"),
        ("cron(0 3 * * SUN *)", "exactly one of day-of-month and day-of-week"),
        ("at(2026-01-01T00:00:00)", "one-time at() schedules are not a cadence"),
        ("weekly", "expected rate"),
    ],
)
def test_rejects_bad_schedules(expression, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        check_schedule(expression)


def test_rejects_malformed_vpc_ids():
    with pytest.raises(ValueError, match="not subnet ids"):
        VpcConfig(subnet_ids=["subnet-xyz"], security_group_ids=["sg-0123456789abcdef0"])
    with pytest.raises(ValueError, match="not sg ids"):
        VpcConfig(subnet_ids=["subnet-0123456789abcdef0"], security_group_ids=["sg-1"])
    with pytest.raises(ValueError, match="at least 1 item"):
        VpcConfig(subnet_ids=[], security_group_ids=["sg-0123456789abcdef0"])


def test_approval_defaults_to_auto_in_dev_and_manual_elsewhere():
    assert [PipelineConfig().approval_for(e) for e in ("dev", "staging", "prod")] == ["auto", "manual", "manual"]
    assert PipelineConfig(approval="auto").approval_for("prod") == "auto"


@pytest.mark.parametrize("expression", ["cron(0 3 * * SUN *)", "cron(0 3 ? * ? *)", "rate(1 hours)", "cron(0 3 * *)", "at(2026-01-01T00:00:00)"])
def test_rejects_the_same_bad_schedules_for_drift_and_retraining(expression):
    from pydantic import ValidationError

    from components.monitoring.drift_config import DriftConfig

    errors = []
    for build in (lambda: TriggersConfig(schedule=expression), lambda: DriftConfig(schedule=expression, alarm_period_seconds=3600)):
        with pytest.raises(ValidationError) as exc:
            build()
        errors.append(exc.value.errors()[0]["msg"])
    assert errors[0] == errors[1], "one validator for every Scheduler expression"
