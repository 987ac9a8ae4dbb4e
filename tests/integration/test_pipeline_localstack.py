"""The CT flow's real definition running in LocalStack: scenarios end where they must, by the exact path.

LocalStack runs with ``SFN_MOCK_CONFIG=tests/integration/sfn_mock_config.json`` (the integration conftest
sets it); an execution started on ``<alias ARN>#<TestCase>`` gets the mocked responses of that test case,
shaped like the real APIs' (DescribeTrainingJob, DescribeProcessingJob, ...). Two LocalStack limits, and
what the tests do about them (see ../shared/ENVIRONMENT.md):

- ``.sync`` integrations fail in LocalStack even when mocked, so the definition is deployed with ``.sync``
  stripped from its three job states and nothing else changed; the mocked responses are what the
  ``.sync`` task returns on AWS (the job's Describe output).
- A mocked state cannot throw an error named ``States.*``, so a failed job is mocked as
  ``SageMaker.TrainingJobFailed``/``SageMaker.ProcessingJobFailed`` with the Describe output as the
  cause, where AWS raises ``States.TaskFailed`` with the same cause (both take the same Catch).

Throttling is mocked as the optimized SageMaker integration reports it: ``SageMaker.AmazonSageMakerException``
with ``Error Code: ThrottlingException`` in the cause (the service's unmodeled errors share that name).

Unmocked states run for real against LocalStack: the concurrency guard's ListExecutions in particular,
so the "already running" scenario starts two real executions. Trigger rules are created from the same
builders the component uses and fed with PutEvents (LocalStack emits no S3/CloudWatch/SageMaker events).
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from pipeline_fixtures import fast_spec

from components.security import iam
from components.pipeline.spec import DEPLOY_ALIAS, TRAINING_ALIAS
from components.pipeline.definition import build_definition
from components.pipeline.permissions import state_machine_statements
from components.pipeline.triggers import (
    approval_rule,
    drift_rule,
    quality_rule,
    new_data_rule,
    schedule_target_input,
    start_execution_statement,
)
from infra.config import STACKS_DIR

pytestmark = pytest.mark.integration
MLOPS = str(Path(sys.executable).with_name("mlops"))

# --- expected paths ---------------------------------------------------------------------------------------------
def guard(kind: str) -> list[str]:
    """The concurrency guard when the run sees only itself (one page; the Map's per-item states are not listed)."""
    return [f"Check{kind}", f"List{kind}", f"Scan{kind}", f"Place{kind}", f"HasSelf{kind}", f"Seen{kind}", f"HasNewer{kind}", f"HasOlder{kind}",
            f"MorePages{kind}", f"Another{kind}"]


def map_item_states(definition: dict) -> set[str]:
    return {n for s in definition["States"].values() if "ItemProcessor" in s for n in s["ItemProcessor"]["States"]}


START = ["Init", "RunContext", *guard("Running"), "IsNewData"]
# LocalStack hands aws-sdk results over in the Java SDK's spelling (ChecksumSha256), mocked ones too.
SNAPSHOT = ["ListTrainingData", "CountTrainingData", "SnapshotTrainingData", "ManifestBody", "WriteDataManifest", "HasManifestChecksum",
            "ManifestChecksumJavaCase", "HowManyDataObjects"]
DATA = [*SNAPSHOT, "OneDataObject", "ValidateData"]
TO_GATE_WITH_TEST_DATA = ["Train", "ListTestData", "HasTestData", "HoldoutFromTestData", "FindProductionModel", "HasProductionModel",
                          "DescribeProductionModel", "HasProductionMetrics", "CompareWithProduction", "Evaluate", "QualityGate", "GateVerdict"]
REGISTER = ["RegisterModel", "RecordTrained"]
WAIT = ["WaitForEndpoint", "DescribeEndpoint", "EndpointStatus"]
READY = ["StartEndpointWait", "CheckEndpointReady", "EndpointReady"]
ROLL_OUT = ["Deploy", "CreateModel", "CreateEndpointConfig", *READY, "UpdateEndpoint", *WAIT, "CountPoll", *WAIT, "CheckLiveConfig",
            "DeploymentComplete", "Deployed"]
SUCCEEDED = ["NotifySuccess", "CheckPendingAfterSuccess", "HasPendingAfterSuccess", "RunSucceeded"]
DEPLOYED = ["VerifyPackage", "IsPackageDeployable", *ROLL_OUT, *SUCCEEDED]
FAILED = ["NotifyFailure", "CheckPendingAfterFailure", "HasPendingAfterFailure", "FailureKind", "RunFailed"]

# A page with an older training run but not this one, then an empty page: this run cannot place itself.
UNPLACED = ["CheckRunning", "ListRunning", "ScanRunning", "PlaceRunning", "HasSelfRunning", "HasNewerRunning", "NewerRunning",
            "HasOlderRunning", "MorePagesRunning", "ListRunningMore", "ScanRunning", "PlaceRunning", "HasSelfRunning", "HasNewerRunning",
            "HasOlderRunning", "MorePagesRunning", "AnotherRunning", "NotListedYetRunning"]

SCENARIOS = {
    "HappyPath": ("SUCCEEDED", None, [*START, *DATA, *TO_GATE_WITH_TEST_DATA, *REGISTER, *DEPLOYED]),
    "GateRejects": ("FAILED", "ModelRejected", [*START, *DATA, *TO_GATE_WITH_TEST_DATA, "ModelRejected", *FAILED]),
    "InvalidData": ("FAILED", "SageMaker.ProcessingJobFailed", [*START, *DATA, "FailedValidateData", *FAILED]),
    "NoTrainingData": ("FAILED", "NoTrainingData", [*START, "ListTrainingData", "CountTrainingData", "NoTrainingData", *FAILED]),
    "TrainingThrottled": (
        "SUCCEEDED",
        None,
        [*START, *DATA, "Train", "ListTestData", "HasTestData", "HoldoutFromTraining", "FindProductionModel", "HasProductionModel",
         "NoProductionModel", "Evaluate", "QualityGate", "GateVerdict", *REGISTER, *DEPLOYED],
    ),
    "TrainingFails": ("FAILED", "SageMaker.TrainingJobFailed", [*START, *DATA, "Train", "FailedTrain", *FAILED]),
    "DeploymentRollsBack": (
        "FAILED",
        "DeploymentRolledBack",
        [*START, *DATA, *TO_GATE_WITH_TEST_DATA, *REGISTER, "VerifyPackage", "IsPackageDeployable", "Deploy", "CreateModel",
         "CreateEndpointConfig", *READY, "UpdateEndpoint", *WAIT, "CountPoll", *WAIT, "CountPoll", *WAIT, "CheckLiveConfig",
         "DeploymentRolledBack", "FailedDeploy", *FAILED],
    ),
    # Item 1: the newest approved version has no ModelMetrics (registered by hand): judged on the minimum alone.
    "ProductionWithoutMetrics": (
        "SUCCEEDED",
        None,
        [*START, *DATA, *TO_GATE_WITH_TEST_DATA[:8], "NoProductionModel", "Evaluate", "QualityGate", "GateVerdict", *REGISTER, *DEPLOYED],
    ),
    # Item 2: evaluation.json without a metric RegisterModel records: the run fails, notified, nothing registered.
    "ReportIncomplete": ("FAILED", "EvaluationReportIncomplete", [*START, *DATA, *TO_GATE_WITH_TEST_DATA, "ReportIncomplete", *FAILED]),
    # Item 9: the endpoint is Updating (autoscaling, an earlier deployment): wait for InService, then update.
    "EndpointBusy": (
        "SUCCEEDED",
        None,
        [*START, *DATA, *TO_GATE_WITH_TEST_DATA, *REGISTER, "VerifyPackage", "IsPackageDeployable", "Deploy", "CreateModel",
         "CreateEndpointConfig", *READY, "WaitForEndpointReady", "CountReadyPoll", "CheckEndpointReady", "EndpointReady",
         "WaitForEndpointReady", "CountReadyPoll", "CheckEndpointReady", "EndpointReady", "UpdateEndpoint", *WAIT, "CountPoll", *WAIT,
         "CheckLiveConfig", "DeploymentComplete", "Deployed", *SUCCEEDED],
    ),
    # Item 7: a run that cannot find itself in the listing (eventual consistency) never goes ahead beside an
    # older run: it follows every page, waits and looks again, then fails notified.
    "GuardCannotPlaceItself": (
        "FAILED",
        "RunNotListed",
        ["Init", "RunContext"]
        + [*UNPLACED, "WaitRunning", "CountPollRunning"] * 3
        + [*UNPLACED, "RunNotListed", *FAILED],
    ),
}


def runtime_errors(events: list[dict]) -> list[dict]:
    """Events that carry States.Runtime: AWS cannot catch it, LocalStack may have (so a scenario must fail on it)."""
    return [e for e in events if "States.Runtime" in json.dumps({k: v for k, v in e.items() if k.endswith("EventDetails")})]


def strip_sync(definition: dict) -> dict:
    """The definition as LocalStack can run it: ``.sync`` removed from the job states' resources only."""
    text = json.dumps(definition)
    assert text.count('.sync"') == 3, "ValidateData, Train and Evaluate are the .sync states"
    return json.loads(text.replace('.sync"', '"'))


class Flow:
    """A spec deployed to LocalStack: role (with the generated policy), state machine, aliases."""

    def __init__(self, aws_client, spec):
        self.spec = spec
        self.inner = map_item_states(build_definition(spec))
        self.sfn = aws_client("stepfunctions")
        self.iam = aws_client("iam")
        role_name = self.role_name = f"{spec.state_machine_name}-states"
        self.delete()  # what an interrupted earlier session may have left in a reused LocalStack
        self.iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(iam.assume_role_policy("states.amazonaws.com", spec.account_id)))
        self.iam.put_role_policy(RoleName=role_name, PolicyName="flow", PolicyDocument=json.dumps(iam.document(*state_machine_statements(spec))))
        created = self.sfn.create_state_machine(
            name=spec.state_machine_name,
            definition=json.dumps(strip_sync(build_definition(spec))),
            roleArn=f"arn:aws:iam::{spec.account_id}:role/{role_name}",
            publish=True,
        )
        assert created["stateMachineArn"] == spec.state_machine_arn, "the computed ARN is the real one"
        for alias in (TRAINING_ALIAS, DEPLOY_ALIAS):
            self.sfn.create_state_machine_alias(
                name=alias, routingConfiguration=[{"stateMachineVersionArn": created["stateMachineVersionArn"], "weight": 100}]
            )
        # The models bucket exists for real: the queued-trigger marker is written and read there.
        s3 = aws_client("s3")
        try:
            s3.create_bucket(Bucket=spec.models_bucket)
        except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
            pass

    def start(self, target_arn: str, test_case: str, run_input: dict | None = None) -> str:
        return self.sfn.start_execution(stateMachineArn=f"{target_arn}#{test_case}", input=json.dumps(run_input or {"trigger": "manual"}))["executionArn"]

    def wait(self, arn: str, timeout: float = 600) -> tuple[dict, list[str], list[dict]]:
        """The ended execution, its path and its history; fails if any state raised States.Runtime.

        The timeout is a hang guard, not a timing assumption (a loaded machine only makes runs slower).
        """
        deadline = time.monotonic() + timeout
        while (described := self.sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"{arn} still running after {timeout} s"
            time.sleep(0.3)
        events = self.history(arn)
        raised = runtime_errors(events)
        assert raised == [], f"States.Runtime (AWS would end this run unnotified): {[{k: v for k, v in e.items() if k.endswith('Details')} for e in raised]}"
        return described, self.path(events), events

    def path(self, events: list[dict]) -> list[str]:
        inner = self.inner
        return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e
                and e["stateEnteredEventDetails"]["name"] not in inner]

    def history(self, arn: str) -> list[dict]:
        return self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]

    def entered(self, arn: str, state: str, timeout: float = 600) -> list[str]:
        """Wait until the execution has entered ``state`` (observable progress, no sleeps as synchronisation)."""
        deadline = time.monotonic() + timeout
        while True:
            path = self.path(self.history(arn))
            if state in path:
                return path
            assert time.monotonic() < deadline, f"{arn} did not reach {state}: {path}"
            assert self.sfn.describe_execution(executionArn=arn)["status"] == "RUNNING", f"{arn} ended before {state}: {path}"
            time.sleep(0.3)

    def run(self, test_case: str, run_input: dict | None = None, target_arn: str | None = None):
        return self.wait(self.start(target_arn or self.spec.alias_arn, test_case, run_input))

    def stop_running(self, timeout: float = 600) -> None:
        """Stop every run of the flow, then wait until ListExecutions shows none running: a stopped run can stay
        listed as RUNNING for a moment, and the next run's concurrency guard (the same listing) would see it."""
        deadline = time.monotonic() + timeout
        stopped: set[str] = set()
        while running := self.sfn.list_executions(stateMachineArn=self.spec.state_machine_arn, statusFilter="RUNNING")["executions"]:
            for e in running:
                if e["executionArn"] not in stopped:
                    stop(self.sfn, e["executionArn"])
                    stopped.add(e["executionArn"])
            assert time.monotonic() < deadline, f"runs still listed as running: {[e['executionArn'] for e in running]}"
            time.sleep(0.3)

    def delete(self) -> None:
        try:
            self.stop_running()
            for a in self.sfn.list_state_machine_aliases(stateMachineArn=self.spec.state_machine_arn)["stateMachineAliases"]:
                self.sfn.delete_state_machine_alias(stateMachineAliasArn=a["stateMachineAliasArn"])
            self.sfn.delete_state_machine(stateMachineArn=self.spec.state_machine_arn)
        except self.sfn.exceptions.StateMachineDoesNotExist:
            pass
        try:
            self.iam.delete_role_policy(RoleName=self.role_name, PolicyName="flow")
            self.iam.delete_role(RoleName=self.role_name)
        except self.iam.exceptions.NoSuchEntityException:
            pass


def stop(sfn, arn: str, timeout: float = 600) -> None:
    """Stop a run if it is still going, once its worker has observably started.

    LocalStack answers ``InternalError ... 'NoneType' object has no attribute 'set_stop'`` when an execution is
    stopped before its worker runs (a loaded machine makes that window wide), and refuses to stop one that is just
    finishing. So: wait until the history shows a state entered, stop, and on either answer look again.
    """
    deadline = time.monotonic() + timeout
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        events = sfn.get_execution_history(executionArn=arn, maxResults=5)["events"]
        if any("stateEnteredEventDetails" in e for e in events):
            try:
                sfn.stop_execution(executionArn=arn, error="TestCleanup")
                return
            except sfn.exceptions.ClientError as e:
                if "set_stop" not in str(e) and sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
                    raise
        assert time.monotonic() < deadline, f"could not stop {arn}"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def flow(aws_client):
    f = Flow(aws_client, fast_spec())
    yield f
    f.delete()


@pytest.fixture(scope="module")
def manual_flow(aws_client):
    f = Flow(aws_client, fast_spec(approval="manual", state_machine_name="mlops-itest-churn-manual"))
    yield f
    f.delete()


@pytest.fixture(scope="module")
def short_flow(aws_client):
    """Two endpoint polls allowed: the scenario that goes live on the last one."""
    f = Flow(aws_client, fast_spec(deploy_timeout_seconds=2, state_machine_name="mlops-itest-churn-short"))
    yield f
    f.delete()


@pytest.fixture(scope="module")
def scenario(flow):
    """Each mock-config scenario run once per session; the tests below read the same execution."""
    done: dict[str, tuple] = {}

    def get(test_case: str):
        if test_case not in done:
            flow.stop_running()
            done[test_case] = flow.run(test_case)
        return done[test_case]

    return get


@pytest.fixture
def idle(flow):
    """No other run of the flow in progress (the concurrency guard would see it)."""
    flow.stop_running()
    yield flow
    flow.stop_running()


def task_parameters(events: list[dict], state: str) -> list[dict]:
    """The parameters each attempt of ``state`` was called with (TaskScheduled follows TaskStateEntered)."""
    out, current = [], None
    for e in events:
        if "stateEnteredEventDetails" in e:
            current = e["stateEnteredEventDetails"]["name"]
        elif e["type"] == "TaskScheduled" and current == state:
            out.append(json.loads(e["taskScheduledEventDetails"]["parameters"]))
    return out


def test_the_shipped_mock_config_covers_the_deployed_state_names(flow, manual_flow, short_flow):
    config = json.loads((Path(__file__).with_name("sfn_mock_config.json")).read_text())
    for f in (flow, manual_flow, short_flow):
        names = {n for n in json.dumps(build_definition(f.spec)).split('"') if n}
        for case in config["StateMachines"][f.spec.state_machine_name]["TestCases"].values():
            assert set(case) <= names, set(case) - names


@pytest.mark.parametrize("test_case", list(SCENARIOS))
def test_scenario_ends_as_expected_by_the_exact_path(flow, scenario, test_case):
    status, error, path = SCENARIOS[test_case]
    described, actual, events = scenario(test_case)  # also fails on any States.Runtime in the history
    assert actual == path
    assert described["status"] == status, described.get("cause")
    assert described.get("error") == error
    notices = task_parameters(events, "NotifySuccess" if status == "SUCCEEDED" else "NotifyFailure")
    assert len(notices) == 1 and notices[0]["TopicArn"] == flow.spec.topic_arn
    assert len(notices[0]["Subject"]) < 100


def test_happy_path_registers_lineage_and_deploys_the_package(scenario):
    _, _, events = scenario("HappyPath")
    register = only_call(events, "RegisterModel")
    assert register["ModelApprovalStatus"] == "Approved"
    lineage = register["CustomerMetadataProperties"]
    run_id = register["ClientToken"]
    snapshot = f"s3://models-b/churn/snapshots/{run_id}/data/churn/train/"
    assert lineage["data:train:s3_uri"] == snapshot, "the snapshot the jobs read"
    assert lineage["data:train:manifest"] == f"s3://models-b/churn/snapshots/{run_id}/manifest.json"
    assert lineage["data:train:manifest_sha256"] == "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=", "S3's SHA-256 of the manifest"
    assert lineage["data:train:version_id"] == "Fj3nWBmeWkCpGqHbvGHA0ofBfXDmx6ew", "the version the copy read"
    copy = only_call(events, "CopyTrainingObject")
    assert copy["CopySource"] == "data-b/churn/train/churn.csv" and copy["CopySourceIfMatch"] == '"5d41402abc4b2a76b9719d911017c592"'
    assert f"s3://models-b/{copy['Key']}".startswith(snapshot)
    validate = only_call(events, "ValidateData")
    assert {i["InputName"]: i["S3Input"]["S3Uri"] for i in validate["ProcessingInputs"]}["data"] == snapshot
    train = only_call(events, "Train")
    assert {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in train["InputDataConfig"]}["train"] == snapshot
    assert lineage["metric:test:roc_auc"] == "0.87" and lineage["hyperparameter:max_iter"] == "300"
    assert lineage["training_job"] == "mlops-itest-churn-train-20260101-000000-abcd-0"
    assert register["ClientToken"] == register["ModelPackageDescription"].split()[1]
    evaluate = only_call(events, "Evaluate")
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in evaluate["ProcessingInputs"]}
    assert inputs["holdout"] == "s3://data-b/churn/test/"
    assert inputs["production"] == "s3://models-b/churn/runs/20251201-000000-0f0f/evaluation/evaluation.json"
    assert evaluate["AppSpecification"]["ContainerArguments"][-2:] == ["--baseline-metrics", "/opt/ml/processing/input/production/evaluation.json"]
    assert only_call(events, "VerifyPackage") == {"ModelPackageName": "arn:aws:sagemaker:us-east-1:000000000000:model-package/mlops-itest-churn/7"}
    model = only_call(events, "CreateModel")
    assert model["PrimaryContainer"]["ModelPackageName"] == "arn:aws:sagemaker:us-east-1:000000000000:model-package/mlops-itest-churn/7"
    message = only_call(events, "NotifySuccess")["Message"]
    assert "model-package/mlops-itest-churn/7 is live on mlops-itest-churn" in message


def test_throttled_training_retries_under_new_job_names_until_it_succeeds(scenario):
    _, _, events = scenario("TrainingThrottled")
    names = [p["TrainingJobName"] for p in task_parameters(events, "Train")]
    assert len(names) == 3 and len(set(names)) == 3
    assert [n.rsplit("-", 1)[1] for n in names] == ["0", "1", "2"]
    assert len({n.rsplit("-", 1)[0] for n in names}) == 1, "one run id across the attempts"
    holdout = {i["InputName"]: i["S3Input"]["S3Uri"] for i in only_call(events, "Evaluate")["ProcessingInputs"]}["holdout"]
    assert holdout == "s3://models-b/churn/runs/{}/training/mlops-itest-churn-train-20260101-000000-abcd-2/output/output.tar.gz".format(
        names[0].split("-train-")[1].rsplit("-", 1)[0]
    )


def test_failures_notify_error_state_run_and_link_never_the_cause(scenario):
    described, _, events = scenario("TrainingFails")
    notice = only_call(events, "NotifyFailure")
    assert notice["Subject"] == "[itest] churn: Train failed"
    assert notice["Message"].startswith("SageMaker.TrainingJobFailed in state Train - run ")
    assert "#/v2/executions/details/arn:aws:states:us-east-1:000000000000:execution:" in notice["Message"]
    # The job's exit message (which may quote customer values) stays in the execution, never in the e-mail.
    assert "MemoryError" not in notice["Message"] and "MemoryError" in described["cause"]
    assert not task_parameters(events, "RegisterModel")
    _, _, events = scenario("GateRejects")
    assert only_call(events, "NotifyFailure")["Subject"] == "[itest] churn: QualityGate failed (ModelRejected)"
    assert not task_parameters(events, "RegisterModel"), "a rejected model is not registered"
    _, _, events = scenario("DeploymentRollsBack")
    assert only_call(events, "NotifyFailure")["Message"].startswith("DeploymentRolledBack in state Deploy")
    _, _, events = scenario("ReportIncomplete")
    assert only_call(events, "NotifyFailure")["Subject"] == "[itest] churn: QualityGate failed (EvaluationReportIncomplete)"
    assert not task_parameters(events, "RegisterModel")


def test_live_on_the_last_poll_is_live_not_timed_out(short_flow):
    # Item 10: two polls allowed; the endpoint is InService on the last one.
    described, path, _ = short_flow.run("LiveOnLastPoll")
    assert described["status"] == "SUCCEEDED", described.get("cause")
    assert path.count("DescribeEndpoint") == 3 and "DeploymentTimedOut" not in path and "DeploymentComplete" in path


NEW_DATA = {"trigger": "new_data", "data": {"bucket": "data-b", "key": "churn/train/a.csv", "version_id": "v1"}}


def test_new_data_arriving_during_a_run_is_queued_once_and_trained_after_it(idle):
    # The first run waits in SettleNewData while two more uploads arrive: both are dropped, one marker queues a run.
    first = idle.start(idle.spec.alias_arn, "HappyPath", NEW_DATA)
    idle.entered(first, "SettleNewData")
    dropped = [idle.run("HappyPath", NEW_DATA) for _ in range(2)]
    for described, path, events in dropped:
        assert described["status"] == "SUCCEEDED"
        assert path[-4:] == ["IsQueuedRun", "RecordDroppedTrigger", "QueueNewData", "AlreadyRunning"], " ".join(path)
        assert "OlderRunning" in path
        assert not task_parameters(events, "Train") and not task_parameters(events, "NotifySuccess")
    described, path, events = idle.wait(first)
    assert described["status"] == "SUCCEEDED" and path[-5:] == ["HasPendingAfterSuccess", "ClearPendingAfterSuccess",
                                                                "QueuePendingAfterSuccess", "StartPendingAfterSuccess", "RunSucceeded"]
    queued = [e for e in idle.sfn.list_executions(stateMachineArn=idle.spec.state_machine_arn)["executions"]
              if json.loads(idle.sfn.describe_execution(executionArn=e["executionArn"])["input"]).get("queued_by") == first]
    assert len(queued) == 1, "one run for any number of dropped uploads"
    run = queued[0]["executionArn"]
    assert idle.sfn.describe_execution(executionArn=run)["stateMachineAliasArn"] == idle.spec.alias_arn
    # It waited for the run that queued it, then went ahead (no test case: its SageMaker calls fail; that is fine).
    path = idle.entered(run, "IsNewData")
    assert "ListRunning" in path
    stop(idle.sfn, run)


def test_manual_approval_registers_pending_and_waits(manual_flow):
    manual_flow.stop_running()
    described, path, events = manual_flow.run("AwaitsApproval")
    assert described["status"] == "SUCCEEDED"
    assert path == ["Init", "RunContext", "RouteMode", *guard("Running"), "IsNewData", *DATA, *TO_GATE_WITH_TEST_DATA, *REGISTER,
                    "AwaitApproval", *SUCCEEDED]
    assert only_call(events, "RegisterModel")["ModelApprovalStatus"] == "PendingManualApproval"
    assert "awaits approval" in only_call(events, "NotifySuccess")["Message"]


PACKAGE = "arn:aws:sagemaker:us-east-1:000000000000:model-package/mlops-itest-churn/{}"
DEPLOY_START = ["Init", "RunContext", "RouteMode", *guard("Deploying"), "PackageFromApproval", "VerifyPackage", "IsPackageDeployable"]


def approval(version: int) -> dict:
    return {"id": f"e{version}", "trigger": "approval", "mode": "deploy", "model_package_arn": PACKAGE.format(version)}


def test_an_approval_deploys_the_approved_package(manual_flow):
    manual_flow.stop_running()
    described, path, events = manual_flow.run("DeployApproved", approval(7), manual_flow.spec.deploy_alias_arn)
    assert described["status"] == "SUCCEEDED"
    assert path == [*DEPLOY_START, "FindNewestApproved", "IsNewestApproved", *ROLL_OUT, *SUCCEEDED]
    assert only_call(events, "CreateModel")["PrimaryContainer"]["ModelPackageName"] == PACKAGE.format(7)


def test_a_deploy_run_refuses_a_package_that_is_not_approved(manual_flow):
    # Security item 8: a deploy-mode execution started by hand with any package ARN does not bypass approval.
    described, path, events = manual_flow.run("DeployNotApproved", approval(7), manual_flow.spec.deploy_alias_arn)
    assert described["status"] == "FAILED" and described["error"] == "PackageNotDeployable"
    assert path[-6:-5] == ["PackageNotDeployable"] and not task_parameters(events, "CreateModel")
    assert only_call(events, "NotifyFailure")["Subject"] == "[itest] churn: VerifyPackage failed (PackageNotDeployable)"


def test_an_update_event_of_an_older_approved_version_does_not_redeploy_it(manual_flow):
    # Item 12: v5 (approved long ago) changes; v7 is the newest approved version: nothing is deployed.
    described, path, events = manual_flow.run("DeployOldVersion", approval(5), manual_flow.spec.deploy_alias_arn)
    assert described["status"] == "SUCCEEDED"
    assert path == [*DEPLOY_START, "FindNewestApproved", "IsNewestApproved", "NotNewestApproved", *SUCCEEDED]
    assert not task_parameters(events, "CreateModel")
    assert "not the newest approved version" in only_call(events, "NotifySuccess")["Message"]


def test_the_newest_approval_wins_and_dropped_deploys_notify(manual_flow):
    # Item 6: a deployment is in progress (held in its endpoint wait) while v7, v8 and v9 are approved.
    manual_flow.stop_running()
    alias = manual_flow.spec.deploy_alias_arn
    blocker = manual_flow.start(alias, "DeployBlocker", approval(6))
    manual_flow.entered(blocker, "WaitForEndpointReady")
    runs = {}
    for v in (7, 8, 9):
        runs[v] = manual_flow.start(alias, f"DeployV{v}", approval(v))
        manual_flow.entered(runs[v], "WaitForOlderDeployWait")  # it waits for the older deployments (then sees newer ones)
    stop(manual_flow.sfn, blocker)
    results = {v: manual_flow.wait(arn) for v, arn in runs.items()}
    for v in (7, 8):
        described, path, events = results[v]
        assert described["status"] == "SUCCEEDED" and "DeploySuperseded" in path and "Deploy" not in path, v
        assert "a newer approval is deploying" in only_call(events, "NotifySuccess")["Message"]
    described, path, events = results[9]
    assert described["status"] == "SUCCEEDED" and path[-len(ROLL_OUT) - len(SUCCEEDED):] == [*ROLL_OUT, *SUCCEEDED]


def test_a_training_run_is_not_held_back_by_a_deploy_only_run(manual_flow):
    # Item 5: deploy-only runs (deploy alias) can poll for an hour; a retrain must not end at AlreadyRunning.
    manual_flow.stop_running()
    blocker = manual_flow.start(manual_flow.spec.deploy_alias_arn, "DeployBlocker", approval(6))
    manual_flow.entered(blocker, "WaitForEndpointReady")
    described, path, _ = manual_flow.run("AwaitsApproval")
    assert described["status"] == "SUCCEEDED" and "AlreadyRunning" not in path and "Train" in path
    stop(manual_flow.sfn, blocker)


def only_call(events: list[dict], state: str) -> dict:
    calls = task_parameters(events, state)
    assert len(calls) == 1, (state, len(calls))
    return calls[0]


# --- triggers -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def events_role(aws_client, flow):
    client = aws_client("iam")
    name = "mlops-itest-churn-events-start"
    client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(iam.assume_role_policy("events.amazonaws.com", "000000000000")))
    statement = start_execution_statement(flow.spec, (TRAINING_ALIAS, DEPLOY_ALIAS))
    client.put_role_policy(RoleName=name, PolicyName="start", PolicyDocument=json.dumps(iam.document(statement)))
    yield f"arn:aws:iam::000000000000:role/{name}"
    client.delete_role_policy(RoleName=name, PolicyName="start")
    client.delete_role(RoleName=name)


def started_by(flow, event_id: str, timeout: float = 300) -> dict:
    """The execution an event started (LocalStack names it after the event id, which the input carries too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in flow.sfn.list_executions(stateMachineArn=flow.spec.state_machine_arn)["executions"]:
            if e["name"] == event_id:
                described = flow.sfn.describe_execution(executionArn=e["executionArn"])
                stop(flow.sfn, e["executionArn"])  # only its input matters here
                return described
        time.sleep(0.3)
    raise AssertionError(f"no execution was started by event {event_id}")


TRIGGERS = {
    "new-data": (
        new_data_rule,
        TRAINING_ALIAS,
        ("aws.s3", "Object Created", {"version": "0", "bucket": {"name": "data-b"}, "object": {"key": "churn/train/churn.csv", "size": 62227, "etag": "5d41", "version-id": "Fj3nWBme"}, "reason": "PutObject"}),
        {"trigger": "new_data", "data": {"bucket": "data-b", "key": "churn/train/churn.csv", "version_id": "Fj3nWBme"}},
    ),
    "drift": (
        lambda s: drift_rule(s, "mlops-itest-churn-drift"),
        TRAINING_ALIAS,
        ("aws.cloudwatch", "CloudWatch Alarm State Change", {"alarmName": "mlops-itest-churn-drift", "state": {"value": "ALARM", "reason": "Threshold Crossed: 3 datapoints > 0.2"}, "previousState": {"value": "OK"}}),
        {"trigger": "drift", "alarm": {"name": "mlops-itest-churn-drift", "reason": "Threshold Crossed: 3 datapoints > 0.2"}},
    ),
    "quality": (
        lambda s: quality_rule(s, "mlops-itest-churn-quality"),
        TRAINING_ALIAS,
        ("aws.cloudwatch", "CloudWatch Alarm State Change", {"alarmName": "mlops-itest-churn-quality", "state": {"value": "ALARM", "reason": "Threshold Crossed: 1 datapoint (0.41) < 0.7"}, "previousState": {"value": "OK"}}),
        {"trigger": "quality", "alarm": {"name": "mlops-itest-churn-quality", "reason": "Threshold Crossed: 1 datapoint (0.41) < 0.7"}},
    ),
    "approved": (
        approval_rule,
        DEPLOY_ALIAS,
        ("aws.sagemaker", "SageMaker Model Package State Change", {"ModelPackageGroupName": "mlops-itest-churn", "ModelPackageVersion": 7, "ModelPackageArn": "arn:aws:sagemaker:us-east-1:000000000000:model-package/mlops-itest-churn/7", "ModelApprovalStatus": "Approved"}),
        {"trigger": "approval", "mode": "deploy", "model_package_arn": "arn:aws:sagemaker:us-east-1:000000000000:model-package/mlops-itest-churn/7"},
    ),
}


@pytest.mark.parametrize("trigger", list(TRIGGERS))
def test_trigger_rule_starts_a_run_with_the_right_input(aws_client, idle, events_role, trigger):
    build, alias, (source, detail_type, detail), expected = TRIGGERS[trigger]
    rule = build(idle.spec)
    events = aws_client("events")
    name = f"mlops-itest-churn-{trigger}"
    events.put_rule(Name=name, EventPattern=rule.pattern_json, Description=rule.description)
    events.put_targets(
        Rule=name,
        Targets=[{"Id": "start-run", "Arn": f"{idle.spec.state_machine_arn}:{alias}", "RoleArn": events_role,
                  "InputTransformer": {"InputPathsMap": rule.input_paths, "InputTemplate": rule.input_template}}],
    )
    try:
        # An event the rule must ignore (another prefix, another alarm, another group) starts nothing.
        ignored = json.loads(json.dumps(detail).replace("churn/train/", "churn/test/").replace("churn-drift", "fraud-drift").replace("churn-quality", "fraud-quality").replace('"mlops-itest-churn"', '"other"'))
        sent = events.put_events(Entries=[
            {"Source": source, "DetailType": detail_type, "Detail": json.dumps(ignored)},
            {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail)},
        ])
        ignored_id, event_id = (e["EventId"] for e in sent["Entries"])
        described = started_by(idle, event_id)
        assert json.loads(described["input"]) == {"id": event_id, **expected}
        assert described["stateMachineAliasArn"] == f"{idle.spec.state_machine_arn}:{alias}"
        names = {e["name"] for e in idle.sfn.list_executions(stateMachineArn=idle.spec.state_machine_arn)["executions"]}
        assert ignored_id not in names
    finally:
        events.remove_targets(Rule=name, Ids=["start-run"])
        events.delete_rule(Name=name)


def test_schedule_is_accepted_and_its_target_starts_a_run_on_the_alias(aws_client, idle):
    scheduler = aws_client("scheduler")
    target_input = schedule_target_input(idle.spec)
    scheduler.create_schedule(
        Name="mlops-itest-churn-retrain",
        ScheduleExpression="cron(0 3 ? * SUN *)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": "arn:aws:scheduler:::aws-sdk:sfn:startExecution", "RoleArn": "arn:aws:iam::000000000000:role/scheduler", "Input": target_input},
    )
    try:
        assert scheduler.get_schedule(Name="mlops-itest-churn-retrain")["Target"]["Input"] == target_input
        # LocalStack does not fire schedules: make the universal target's StartExecution call by hand.
        request = json.loads(target_input)
        arn = idle.sfn.start_execution(stateMachineArn=request["StateMachineArn"], input=request["Input"])["executionArn"]
        described = idle.sfn.describe_execution(executionArn=arn)
        stop(idle.sfn, arn)
        assert described["stateMachineAliasArn"] == idle.spec.alias_arn
        assert json.loads(described["input"])["trigger"] == "schedule"
    finally:
        scheduler.delete_schedule(Name="mlops-itest-churn-retrain")


# --- mlops retrain ----------------------------------------------------------------------------------------------


@pytest.fixture
def stack_file(tmp_path, localstack):
    """The shipped local stack pointed at this LocalStack, as stack "itest" (whose flow the module deployed)."""
    body = (STACKS_DIR / "Pulumi.local.yaml").read_text().replace("http://127.0.0.1:4566", localstack)
    path = tmp_path / "Pulumi.itest.yaml"
    path.write_text(body)
    return path


def mlops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS, *args], capture_output=True, text=True, timeout=120)


def test_retrain_follows_a_run_to_success(idle, stack_file):
    done = mlops("retrain", "--file", str(stack_file), "--model", "churn", "--test-case", "HappyPath", "--poll-seconds", "0.3")
    assert done.returncode == 0, done.stderr
    for state in ("ValidateData", "Train", "Evaluate", "QualityGate", "RegisterModel", "Deploy"):
        assert f"✓ {state}" in done.stdout, state
    assert "run succeeded" in done.stdout and "is live on mlops-itest-churn" in done.stdout, done.stdout


def test_retrain_exits_1_with_the_cause_of_a_failed_run(idle, stack_file):
    done = mlops("retrain", "--file", str(stack_file), "--model", "churn", "--test-case", "TrainingFails", "--poll-seconds", "0.3")
    assert done.returncode == 1
    assert "run failed" in done.stderr and "SageMaker.TrainingJobFailed" in done.stderr and "MemoryError" in done.stderr
    assert "Traceback" not in done.stderr


def test_retrain_no_follow_only_starts_the_run(idle, stack_file):
    done = mlops("retrain", "--file", str(stack_file), "--model", "churn", "--test-case", "HappyPath", "--no-follow")
    assert done.returncode == 0, done.stderr
    arn = done.stdout.split()[-1]
    assert arn.startswith(f"arn:aws:states:us-east-1:000000000000:execution:{idle.spec.state_machine_name}:manual-")
    described, _, _ = idle.wait(arn)
    assert json.loads(described["input"])["trigger"] == "manual" and described["stateMachineAliasArn"] == idle.spec.alias_arn


def test_retrain_refuses_a_flow_that_is_not_deployed(tmp_path, localstack):
    body = (STACKS_DIR / "Pulumi.local.yaml").read_text().replace("http://127.0.0.1:4566", localstack)
    path = tmp_path / f"Pulumi.nope{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(body)
    done = mlops("retrain", "--file", str(path), "--model", "churn")
    assert done.returncode == 2
    assert "is not deployed" in done.stderr and "pulumi up --stack nope" in done.stderr


# --- item 11: the data snapshot against LocalStack's real S3 ------------------------------------------------------


def snapshot_states(definition: dict) -> dict:
    """The deployed definition's states from ListTrainingData up to ValidateData, unchanged, as a flow of its own:
    ValidateData becomes a Succeed and the failure notice a Fail (what they do is tested above)."""
    states, todo = {}, ["ListTrainingData"]
    while todo:
        name = todo.pop()
        if name in states or name in ("ValidateData", "NotifyFailure"):
            continue
        states[name] = definition["States"][name]
        todo += [s[k] for s in [states[name], *states[name].get("Choices", []), *states[name].get("Catch", [])]
                 for k in ("Next", "Default") if k in s]
    states |= {"ValidateData": {"Type": "Succeed"}, "NotifyFailure": {"Type": "Fail", "Error": "SnapshotFailed"}}
    return {"StartAt": "ListTrainingData", "States": states}


class SnapshotFlow:
    """The snapshot states of the deployed definition as a state machine of their own, on real LocalStack S3."""

    def __init__(self, aws_client):
        self.spec = spec = fast_spec(data_bucket="snap-data-b", models_bucket="snap-models-b", state_machine_name="mlops-itest-churn-snapshot")
        self.s3, self.sfn = aws_client("s3"), aws_client("stepfunctions")
        for bucket in (spec.data_bucket, spec.models_bucket):
            try:
                self.s3.create_bucket(Bucket=bucket)
            except (self.s3.exceptions.BucketAlreadyOwnedByYou, self.s3.exceptions.BucketAlreadyExists):
                pass
        self.s3.put_bucket_versioning(Bucket=spec.data_bucket, VersioningConfiguration={"Status": "Enabled"})
        self.arn = spec.state_machine_arn
        self.delete()
        self.sfn.create_state_machine(name=spec.state_machine_name, definition=json.dumps(snapshot_states(build_definition(spec))),
                                      roleArn=f"arn:aws:iam::{spec.account_id}:role/snapshot")

    def delete(self) -> None:
        try:
            self.sfn.delete_state_machine(stateMachineArn=self.arn)
        except self.sfn.exceptions.ClientError:
            pass

    def run(self, run_id: str, test_case: str | None = None) -> tuple[dict, list[dict]]:
        target = f"{self.arn}#{test_case}" if test_case else self.arn
        execution = self.sfn.start_execution(stateMachineArn=target, input=json.dumps({"run": {"id": run_id, "execution_arn": "arn:run"}}))["executionArn"]
        deadline = time.monotonic() + 600  # a hang guard, not a timing assumption
        while (described := self.sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.3)
        events = self.sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        assert runtime_errors(events) == []
        return described, events


@pytest.fixture(scope="module")
def snapshot_flow(aws_client):
    f = SnapshotFlow(aws_client)
    yield f
    f.delete()


def test_an_object_uploaded_after_the_snapshot_is_neither_in_the_manifest_nor_in_what_the_jobs_read(snapshot_flow):
    spec, s3 = snapshot_flow.spec, snapshot_flow.s3
    prefix_key = f"churn/train/{uuid.uuid4().hex[:6]}/"
    for o in s3.list_objects_v2(Bucket=spec.data_bucket, Prefix="churn/train/").get("Contents", []):
        s3.delete_object(Bucket=spec.data_bucket, Key=o["Key"])  # what an earlier session left
    key = f"{prefix_key}churn (v2),final.csv"
    first = s3.put_object(Bucket=spec.data_bucket, Key=key, Body=b"a,b\n1,2\n")
    run_id = f"20260101-000000-{uuid.uuid4().hex[:4]}"
    described, events = snapshot_flow.run(run_id)
    failures = [{k: v for k, v in e.items() if k.endswith("Details")} for e in events if "Fail" in e["type"] or "TaskSucceeded" in e["type"]]
    assert described["status"] == "SUCCEEDED", failures
    # After the snapshot: a new object arrives and the snapshotted one is overwritten.
    s3.put_object(Bucket=spec.data_bucket, Key=f"{prefix_key}late.csv", Body=b"a,b\n3,4\n")
    s3.put_object(Bucket=spec.data_bucket, Key=key, Body=b"a,b\n9,9\n")
    data = json.loads(described["output"])["data"]
    prefix = data["s3_uri"].removeprefix(f"s3://{spec.models_bucket}/")
    assert prefix == f"churn/snapshots/{run_id}/data/churn/train/"
    read = s3.list_objects_v2(Bucket=spec.models_bucket, Prefix=prefix)["Contents"]
    assert [o["Key"] for o in read] == [prefix + key.removeprefix("churn/train/")], "what the jobs read: the listed object only"
    assert s3.get_object(Bucket=spec.models_bucket, Key=read[0]["Key"])["Body"].read() == b"a,b\n1,2\n", "as it was when listed"
    body = s3.get_object(Bucket=spec.models_bucket, Key=f"churn/snapshots/{run_id}/manifest.json")["Body"].read()
    manifest = json.loads(body)
    assert [(o["key"], o["version_id"], o["size"], o["etag"]) for o in manifest["objects"]] == [(key, first["VersionId"], 8, first["ETag"])]
    assert data["version_id"] == first["VersionId"] and data["manifest"] == f"s3://{spec.models_bucket}/churn/snapshots/{run_id}/manifest.json"
    assert data["manifest_sha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    live = {o["Key"] for o in s3.list_objects_v2(Bucket=spec.data_bucket, Prefix="churn/train/")["Contents"]}
    assert {key, f"{prefix_key}late.csv"} <= live


def test_an_object_replaced_between_the_listing_and_its_copy_fails_the_run_and_copies_nothing(snapshot_flow):
    # The mocked listing saw churn/train/replaced.csv with the ETag of b"a"; S3 holds other bytes by the copy.
    spec, s3 = snapshot_flow.spec, snapshot_flow.s3
    s3.put_object(Bucket=spec.data_bucket, Key="churn/train/replaced.csv", Body=b"replaced")
    run_id = f"20260101-000000-{uuid.uuid4().hex[:4]}"
    described, events = snapshot_flow.run(run_id, "ReplacedAfterListing")
    assert described["status"] == "FAILED"
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    assert entered[-2:] == ["FailedSnapshotTrainingData", "NotifyFailure"] and "WriteDataManifest" not in entered
    assert s3.list_objects_v2(Bucket=spec.models_bucket, Prefix=f"churn/snapshots/{run_id}/").get("KeyCount", 0) == 0
    refused = [e["taskFailedEventDetails"] for e in events if e["type"] == "TaskFailed"]
    assert refused and all("pre-conditions you specified did not hold" in d.get("cause", "") for d in refused), refused  # S3: 412


# --- item 13: what a redrive does -----------------------------------------------------------------------------------
# LocalStack (2026.3.0, pinned) has no RedriveExecution: what a redrive does is proven on the definition
# (tests/components/pipeline/test_pipeline_definition.py) and documented in the README's Redrive section.
