"""The CT flow as the real program declares it (synth manifests): state machine, log group, role, triggers."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import only, policy

from components.pipeline.definition import task_states
from infra.config import STACKS_DIR
from infra.review.synth import synth_keys

SFN = "aws:sfn/stateMachine:StateMachine"
ALIAS = "aws:sfn/alias:Alias"
RULE = "aws:cloudwatch/eventRule:EventRule"
TARGET = "aws:cloudwatch/eventTarget:EventTarget"
SCHEDULE = "aws:scheduler/schedule:Schedule"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-prodx-churn/3"  # the group of stack "prodx"


def mine(m, token: str, model: str = "churn") -> list[dict]:
    """Resources of the model's flow component (other components declare log groups, rules and schedules too)."""
    return [r for r in m.of_type(token) if "mlops:pipeline:TrainingPipeline$" in r["urn"] and f"::pipeline-{model}" in r["urn"]]


def synth_variant(stack: str, change) -> object:
    """A shipped stack with one change to its config keys, synthesized under a name of its own."""
    keys = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
    change(keys)
    return synth_keys(f"{stack}x", keys, "us-east-1")


def definition(m):
    return json.loads(only(mine(m, SFN))["inputs"]["definition"])


def flow_policies(m):
    """Every policy attached to the flow's role (its own and the bucket grants), statements flattened."""
    return [s for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"].endswith("-churn-states") for s in policy(p)["Statement"]]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_state_machine_is_logged_traced_and_published(manifests, stack):
    m = manifests[stack]
    sm = only(mine(m, SFN))
    assert sm["inputs"]["publish"] is True and sm["inputs"]["type"] == "STANDARD"
    assert sm["inputs"]["tracingConfiguration"] == {"enabled": True}
    log_group = only(mine(m, "aws:cloudwatch/logGroup:LogGroup"))
    assert sm["inputs"]["loggingConfiguration"] == {
        "level": "ALL",
        "includeExecutionData": True,
        "logDestination": f"arn:aws:logs:us-east-1:123456789012:log-group:{log_group['inputs']['name']}:*",
    }
    assert "mlops:pipeline:TrainingPipeline$" in sm["urn"]
    assert sm["inputs"]["name"] == f"mlops-{stack}-churn-training"


@pytest.mark.parametrize("stack, protected", [("dev", False), ("prod", True)])
def test_log_group_uses_the_stack_key_under_the_stack_prefix_with_retention(manifests, stack, protected):
    m = manifests[stack]
    group = only(mine(m, "aws:cloudwatch/logGroup:LogGroup"))
    assert group["inputs"]["name"].startswith(f"/mlops/mlops-{stack}/"), "the key policy lets CloudWatch Logs use the key only there"
    assert group["inputs"]["kmsKeyId"] == m.outputs["kms_key_arn"]
    assert group["inputs"]["retentionInDays"] == (365 if stack == "prod" else 90)  # prod keeps logs a year
    assert group["protect"] is protected


def test_aliases_route_to_the_published_version(manifests):
    m = manifests["prod"]
    sm_arn = m.outputs["models"]["churn"]["state_machine_arn"]
    aliases = {a["inputs"]["name"]: a["inputs"]["routingConfigurations"] for a in mine(m, ALIAS)}
    assert aliases == {name: [{"stateMachineVersionArn": f"{sm_arn}:1", "weight": 100}] for name in ("current", "deploy")}
    assert m.outputs["models"]["churn"]["pipeline_alias_arn"] == f"{sm_arn}:current"
    assert set(a["inputs"]["name"] for a in mine(manifests["dev"], ALIAS)) == {"current"}, "auto approval: no deploy-only runs"


def test_pin_version_points_the_aliases_back_to_an_earlier_version():
    def pin(keys):
        keys["mlops:models"]["churn"]["pipeline"]["pin_version"] = 3

    m = synth_variant("prod", pin)
    for alias in mine(m, ALIAS):
        assert alias["inputs"]["routingConfigurations"] == [
            {"stateMachineVersionArn": "arn:aws:states:us-east-1:123456789012:stateMachine:mlops-prodx-churn-training:3", "weight": 100}
        ]


def test_role_is_trusted_by_step_functions_of_this_account_and_created_before_the_state_machine(manifests):
    m = manifests["prod"]
    role = only([r for r in m.of_type("aws:iam/role:Role") if r["inputs"]["name"] == "mlops-prod-churn-states"])
    stmt = only(policy(role, "assumeRolePolicy")["Statement"])
    assert stmt["Principal"] == {"Service": "states.amazonaws.com"}
    assert stmt["Condition"] == {"StringEquals": {"aws:SourceAccount": "123456789012"}}
    sm = only(mine(m, SFN))
    assert sm["inputs"]["roleArn"] == "arn:aws:iam::123456789012:role/mlops-prod-churn-states"
    own = [p["urn"] for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == "mlops-prod-churn-states"]
    assert len(own) == 4 and set(own) <= set(sm["depends_on"]), "Step Functions checks log delivery rights at creation"


def test_role_reads_only_its_data_listing_and_run_reports(manifests):
    m = manifests["prod"]
    statements = flow_policies(m)
    reads = sorted(s["Resource"] for s in statements if "s3:GetObject" in s["Action"])
    data, models = m.outputs["data_bucket_name"], m.outputs["models_bucket_name"]
    assert reads == sorted([f"arn:aws:s3:::{data}/churn/test/*", f"arn:aws:s3:::{data}/churn/train/*", f"arn:aws:s3:::{models}/churn/runs/*"])
    writes = [s for s in statements if any(a.startswith("s3:Put") or a.startswith("s3:Delete") for a in s["Action"])]
    # Its only writes: the training-data snapshots (copies and manifest) and the marker of a dropped new-data trigger.
    assert sorted(w["Resource"] for w in writes) == [f"arn:aws:s3:::{models}/churn/runs/pending/new_data.json",
                                                     f"arn:aws:s3:::{models}/churn/snapshots/*"]
    listing = [s["Condition"]["StringLike"]["s3:prefix"] for s in statements if "s3:ListBucket" in s["Action"]]
    assert sorted(listing) == [["churn/runs/*"], ["churn/test/*"], ["churn/train/*"]]


def test_role_policy_matches_the_stack(manifests):
    m = manifests["prod"]
    by_sid = {s["Sid"]: s for s in flow_policies(m) if "Sid" in s}
    assert by_sid["PassOnlyTheModelRoleToSageMaker"]["Resource"] == m.outputs["models"]["churn"]["role_arn"]
    assert by_sid["NotifyStackTopic"]["Resource"] == m.outputs["topic_arn"]
    assert by_sid["UpdateOwnEndpoint"]["Resource"] == [
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/mlops-prod-churn",
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/mlops-prod-churn-*",
    ]
    assert by_sid["SeeOwnRuns"]["Resource"] == m.outputs["models"]["churn"]["state_machine_arn"]


def test_definition_uses_the_stacks_buckets_images_key_and_contract(manifests):
    m = manifests["prod"]
    d = definition(m)
    tasks = task_states(d)
    train = tasks["Train"]["Parameters"]
    churn = m.outputs["models"]["churn"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == churn["training_image"]
    assert train["RoleArn"] == churn["role_arn"]
    assert train["OutputDataConfig"]["KmsKeyId"] == m.outputs["kms_key_arn"]
    assert train["EnableManagedSpotTraining"] is True and train["StoppingCondition"]["MaxWaitTimeInSeconds"] == 7200
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"].get("S3Uri") or c["DataSource"]["S3DataSource"]["S3Uri.$"] for c in train["InputDataConfig"]}
    assert channels["train"] == "$.data.s3_uri", "the run's snapshot, not the live prefix"
    assert channels["code"] == m.outputs["code_package_uri"]
    contract = only([o for o in m.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if o["name"] == "pipeline-churn-contract"])
    assert channels["contract"] == f"s3://{contract['inputs']['bucket']}/{contract['inputs']['key']}"
    assert json.loads(contract["inputs"]["content"])["target"] == "churned"
    assert contract["inputs"]["kmsKeyId"] == m.outputs["kms_key_arn"] and contract["retain_on_delete"]
    register = tasks["RegisterModel"]["Parameters"]
    assert register["ModelPackageGroupName"] == churn["model_package_group_name"]
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    assert register["InferenceSpecification"]["Containers"][0]["Image"] == churn["inference_image"]
    args = d["States"]["NoProductionModel"]["Parameters"]["arguments"]
    assert args[args.index("--minimum") + 1] == "0.75" and args[args.index("--max_regression") + 1] == "0.0"
    capture = tasks["CreateEndpointConfig"]["Parameters"]["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == f"s3://{m.outputs['capture_bucket_name']}/churn/"
    variant = tasks["CreateEndpointConfig"]["Parameters"]["ProductionVariants"][0]
    assert variant["InitialInstanceCount"] == 2 and variant["VariantName"] == "primary", "the serving config's variant"
    polls = d["States"]["Deploy"]["Branches"][0]["States"]["EndpointStatus"]["Choices"][2]["And"][1]["NumericLessThan"]
    assert polls * 60 == 3600 + 600 + 900, "waits out the guardrails' max execution and bake time"


def test_dev_retrains_on_new_data_and_on_its_quality_alarm_only(manifests):
    m = manifests["dev"]
    rules = {r["inputs"]["name"]: r for r in mine(m, RULE)}
    assert set(rules) == {"mlops-dev-churn-new-data", "mlops-dev-churn-quality"}
    rule = rules["mlops-dev-churn-new-data"]
    pattern = json.loads(rule["inputs"]["eventPattern"])
    assert pattern["detail"]["bucket"]["name"] == [m.outputs["data_bucket_name"]]
    target = only([t for t in mine(m, TARGET) if t["inputs"]["rule"] == rule["inputs"]["name"]])
    assert target["inputs"]["rule"] == rule["inputs"]["name"]
    assert target["inputs"]["arn"] == m.outputs["models"]["churn"]["pipeline_alias_arn"]
    assert target["inputs"]["inputTransformer"]["inputPaths"]["version"] == "$.detail.object.version-id"
    assert not mine(m, SCHEDULE)
    assert definition(m)["States"]["RecordTrained"]["Next"] == "VerifyPackage"
    assert definition(m)["States"]["IsPackageDeployable"]["Choices"][0]["Next"] == "Deploy"


def test_prod_retrains_weekly_and_on_drift_and_deploys_on_approval(manifests):
    m = manifests["prod"]
    rules = {r["inputs"]["name"]: r for r in mine(m, RULE)}
    assert set(rules) == {"mlops-prod-churn-drift", "mlops-prod-churn-approved"}
    assert json.loads(rules["mlops-prod-churn-drift"]["inputs"]["eventPattern"])["detail"]["alarmName"] == ["mlops-prod-churn-drift"]
    targets = {t["inputs"]["rule"]: t["inputs"]["arn"] for t in mine(m, TARGET)}
    alias = m.outputs["models"]["churn"]["pipeline_alias_arn"]
    assert targets == {"mlops-prod-churn-drift": alias, "mlops-prod-churn-approved": alias.removesuffix("current") + "deploy"}
    schedule = only(mine(m, SCHEDULE))
    assert schedule["inputs"]["scheduleExpression"] == "cron(0 3 ? * SUN *)"
    assert schedule["inputs"]["flexibleTimeWindow"] == {"mode": "OFF"}
    assert schedule["inputs"]["target"]["arn"] == "arn:aws:scheduler:::aws-sdk:sfn:startExecution"
    assert json.loads(schedule["inputs"]["target"]["input"])["StateMachineArn"] == alias


def test_starter_roles_start_runs_only_through_their_aliases(manifests):
    m = manifests["prod"]
    sm = m.outputs["models"]["churn"]["state_machine_arn"]
    roles = {r["inputs"]["name"]: r for r in m.of_type("aws:iam/role:Role")}
    for name, service, aliases in (("mlops-prod-churn-events-start", "events", ["current", "deploy"]), ("mlops-prod-churn-scheduler-start", "scheduler", ["current"])):
        trust = only(policy(roles[name], "assumeRolePolicy")["Statement"])
        assert trust["Principal"] == {"Service": f"{service}.amazonaws.com"}
        grant, *rest = policy(only([p for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == name]))["Statement"]
        assert grant["Action"] == "states:StartExecution" and grant["Resource"] == sm
        # Scheduler parks undeliverable invocations in the flow's DLQ as this role; EventBridge uses the queue policy.
        assert [(r["Action"], r["Resource"].rsplit(":", 1)[-1].rsplit("/", 1)[-1]) for r in rest] == ([("sqs:SendMessage", "mlops-prod-churn-trigger-dlq")] if service == "scheduler" else [])
        assert grant["Condition"] == {"StringEquals": {"states:StateMachineQualifier": aliases}}
    events_role = roles["mlops-prod-churn-events-start"]["inputs"]["name"]
    assert all(t["inputs"]["roleArn"].endswith(f"role/{events_role}") for t in mine(m, TARGET))


def test_a_pinned_serving_config_registers_without_deploying():
    def pin(keys):
        keys["mlops:models"]["churn"]["endpoint"] = {"model_package": PACKAGE}

    m = synth_variant("prod", pin)
    d = definition(m)
    assert "Deploy" not in d["States"] and d["States"]["RecordTrained"]["Next"] == "AwaitApproval"
    assert {a["inputs"]["name"] for a in mine(m, ALIAS)} == {"current"}
    assert "mlops-prodx-churn-approved" not in {r["inputs"]["name"] for r in mine(m, RULE)}


def test_stack_vpc_reaches_jobs_and_models():
    vpc = {"subnet_ids": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"], "security_group_ids": ["sg-0123456789abcdef0"]}
    m = synth_variant("prod", lambda keys: keys.update({"mlops:vpc": vpc}))
    tasks = task_states(definition(m))
    expected = {"SecurityGroupIds": vpc["security_group_ids"], "Subnets": vpc["subnet_ids"]}
    assert tasks["Train"]["Parameters"]["VpcConfig"] == expected
    assert tasks["ValidateData"]["Parameters"]["NetworkConfig"]["VpcConfig"] == expected
    assert tasks["CreateModel"]["Parameters"]["VpcConfig"] == expected


def test_rejects_a_bad_schedule_with_its_yaml_path():
    from infra.config import ConfigError, config_from_keys

    keys = yaml.safe_load((STACKS_DIR / "Pulumi.prod.yaml").read_text())["config"]
    keys["mlops:models"]["churn"]["pipeline"]["triggers"]["schedule"] = "cron(0 3 * * SUN)"
    with pytest.raises(ConfigError) as exc:
        config_from_keys(keys, "stacks/Pulumi.prod.yaml")
    assert "config.mlops:models.churn.pipeline.triggers.schedule: 'cron(0 3 * * SUN)' is not accepted: cron() takes 6 fields" in str(exc.value)


ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
QUEUE = "aws:sqs/queue:Queue"


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_failed_timed_out_and_aborted_runs_alarm_to_the_stack_topic(manifests, stack):
    m = manifests[stack]
    sm = only(mine(m, SFN))
    alarms = {a["inputs"]["metricName"]: a["inputs"] for a in mine(m, ALARM) if a["inputs"].get("namespace") == "AWS/States"}
    assert set(alarms) == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    arn = m.outputs["models"]["churn"]["state_machine_arn"]
    for metric, alarm in alarms.items():
        assert alarm["dimensions"] == {"StateMachineArn": arn}, metric
        assert (alarm["comparisonOperator"], alarm["threshold"], alarm["statistic"]) == ("GreaterThanThreshold", 0, "Sum")
        assert alarm["alarmActions"] == [m.outputs["topic_arn"]]
    assert sm["inputs"]["name"] in arn


def test_staleness_alarm_watches_the_flows_trained_heartbeat(manifests):
    m = manifests["prod"]  # weekly schedule: 7 days by default
    stale = only([a["inputs"] for a in mine(m, ALARM) if a["inputs"].get("namespace") == "MLOps/ContinuousTraining"])
    d = definition(m)
    beat = d["States"]["RecordTrained"]["Parameters"]
    assert (stale["namespace"], stale["metricName"]) == (beat["Namespace"], beat["MetricData"][0]["MetricName"])
    assert stale["dimensions"] == {d["Name"]: d["Value"] for d in beat["MetricData"][0]["Dimensions"]}
    assert (stale["period"], stale["evaluationPeriods"], stale["datapointsToAlarm"]) == (86400, 7, 7)
    assert stale["treatMissingData"] == "breaching" and stale["comparisonOperator"] == "LessThanThreshold"
    # dev has no schedule: no staleness alarm unless configured.
    assert not [a for a in mine(manifests["dev"], ALARM) if a["inputs"].get("namespace") == "MLOps/ContinuousTraining"]
    m3 = synth_variant("dev", lambda keys: keys["mlops:models"]["churn"].setdefault("pipeline", {}).update({"staleness_days": 3}))
    assert only([a["inputs"] for a in mine(m3, ALARM) if a["inputs"].get("namespace") == "MLOps/ContinuousTraining"])["evaluationPeriods"] == 3


def test_rejects_a_staleness_window_cloudwatch_cannot_evaluate():
    import pulumi

    with pytest.raises(pulumi.RunError, match=r"pipeline\.staleness_days: 30 is not accepted.*less than or equal to 7"):
        synth_variant("dev", lambda keys: keys["mlops:models"]["churn"].setdefault("pipeline", {}).update({"staleness_days": 30}))


def test_triggers_retry_and_park_undelivered_events_in_an_encrypted_dlq(manifests):
    m = manifests["prod"]
    queue = only(mine(m, QUEUE))
    assert queue["inputs"]["sqsManagedSseEnabled"] is True and queue["inputs"]["messageRetentionSeconds"] == 14 * 86400
    for target in mine(m, TARGET):
        assert target["inputs"]["retryPolicy"] == {"maximumEventAgeInSeconds": 3600, "maximumRetryAttempts": 10}
        assert target["inputs"]["deadLetterConfig"]["arn"].endswith("mlops-prod-churn-trigger-dlq")
    schedule = only(mine(m, SCHEDULE))
    assert schedule["inputs"]["target"]["deadLetterConfig"]["arn"].endswith("mlops-prod-churn-trigger-dlq")
    queue_policy = only(mine(m, "aws:sqs/queuePolicy:QueuePolicy"))
    statement = only(policy(queue_policy)["Statement"])
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    rule_arns = sorted(r["outputs"]["arn"] if "arn" in r.get("outputs", {}) else "" for r in mine(m, RULE))
    assert len(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == len(rule_arns) == 2


def test_drift_job_errors_alarm_to_the_stack_topic(manifests):
    m = manifests["prod"]
    alarm = only([a["inputs"] for a in m.of_type(ALARM) if a["inputs"].get("namespace") == "AWS/Lambda"])
    function = only(m.of_type("aws:lambda/function:Function"))
    assert alarm["metricName"] == "Errors" and alarm["dimensions"] == {"FunctionName": function["inputs"]["name"]}
    assert alarm["alarmActions"] == [m.outputs["topic_arn"]]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"subnet_ids": ("subnet-0123456789abcdef0",)}, "go together"),
    ],
)
def test_rejects_bad_pipeline_args_before_registering_anything(register, change, message):
    from dataclasses import fields

    from components.pipeline.pipeline import TrainingPipeline, TrainingPipelineArgs
    from components.pipeline.config import PipelineConfig

    placeholders = {f.name: None for f in fields(TrainingPipelineArgs) if f.default is f.default_factory is __import__("dataclasses").MISSING}
    args = TrainingPipelineArgs(**{**placeholders, "model": "churn", "config": PipelineConfig(),
                                   "subnet_ids": (), "security_group_ids": (), **change})
    raised = []

    def program():
        try:
            TrainingPipeline("churn", args)
        except ValueError as e:
            raised.append(str(e))

    m = register(program)
    assert raised and message in raised[0]
    assert m.resources == [] or all("TrainingPipeline" not in r["urn"] for r in m.resources)
