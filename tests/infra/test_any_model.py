"""Issue 14: any team's model — its own code, framework or container, entry points, hyperparameters and gate.

Config refusals go through the loader every command uses (``config_from_keys``; ``mlops validate`` in a process);
the rest synthesizes real stacks under the mocks and asserts on the resources and on the state machine definition.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.pipeline import definition as flow
from infra.config import PROJECT_ROOT, STACKS_DIR, ConfigError, config_from_keys
from infra.review.diff import diff
from infra.review.synth import synth_file, synth_keys

HERE = Path(__file__).parent
BYOC = HERE / "stacks" / "Pulumi.byoc.yaml"
MLOPS = str(Path(sys.executable).with_name("mlops"))
SFN = "aws:sfn/stateMachine:StateMachine"
PACKAGE = "mlops:code:CodePackage"


def dev_keys() -> dict:
    return yaml.safe_load((STACKS_DIR / "Pulumi.dev.yaml").read_text())["config"]


def problems_of(change) -> list[str]:
    keys = dev_keys()
    change(keys["mlops:models"]["demand"], keys["mlops:models"]["churn"])
    with pytest.raises(ConfigError) as e:
        config_from_keys(keys, "test")
    return e.value.problems


def flow_of(manifest, model: str) -> dict:
    [sm] = [r for r in manifest.of_type(SFN) if f"::pipeline-{model}-" in r["urn"]]
    return json.loads(sm["inputs"]["definition"])["States"]


# --- mlops validate: each wrong key is named with what is accepted --------------------------------------------


def test_rejects_unknown_framework_name():
    [p] = problems_of(lambda d, c: d["framework"].update(name="caffe"))
    assert "mlops:models.demand.framework.name" in p and "'sklearn', 'xgboost', 'pytorch', 'tensorflow' or 'huggingface'" in p


def test_rejects_unknown_framework_version_naming_the_accepted_ones():
    [p] = problems_of(lambda d, c: d["framework"].update(version="9.9-9"))
    assert p.startswith("config.mlops:models.demand.framework.version: '9.9-9' is not accepted")
    assert "3.2-0" in p and "1.7-1" in p, "the accepted versions come from the SDK's registry file"


def test_rejects_the_deprecated_framework_version_when_unknown():
    [p] = problems_of(lambda d, c: c.setdefault("training", {}).update(framework_version="0.1-0"))
    assert "mlops:models.churn.training.framework_version: '0.1-0'" in p and "1.9-0" in p


def test_rejects_a_missing_entry_point_file_naming_the_scripts():
    [p] = problems_of(lambda d, c: d["entry_points"].update(preprocess="transform.py"))
    assert "mlops:models.demand.entry_points.preprocess: 'transform.py' is not accepted" in p
    assert "preprocess.py" in p and "train.py" in p


def test_rejects_an_entry_point_outside_the_source():
    [p] = problems_of(lambda d, c: d["entry_points"].update(train="../../../training/train.py"))
    assert "entry_points.train" in p


def test_rejects_own_source_without_train_entry_point():
    problems = problems_of(lambda d, c: d.pop("entry_points"))
    assert any("mlops:models.demand.entry_points: required key is missing" in p and "train" in p for p in problems)
    problems = problems_of(lambda d, c: d["entry_points"].pop("train"))
    assert any("entry_points.train" in p and "missing" in p for p in problems)


def test_rejects_a_served_model_without_inference_entry_point():
    [p] = problems_of(lambda d, c: d["entry_points"].pop("inference"))
    assert "entry_points.inference: required key is missing" in p and "endpoint.enabled: false" in p


def test_rejects_unknown_gate_direction():
    [p] = problems_of(lambda d, c: d["gate"].update(direction="down"))
    assert "mlops:models.demand.gate.direction" in p and "'higher' or 'lower'" in p


def test_rejects_a_direction_that_contradicts_the_metric():
    [p] = problems_of(lambda d, c: d["gate"].update(direction="higher"))
    assert "gate.direction: 'higher' is not accepted: lower is better for rmse" in p


def test_rejects_an_unknown_metric_without_direction():
    [p] = problems_of(lambda d, c: (d["gate"].update(metric="mape"), d["gate"].pop("direction")))
    assert "gate.direction: required key is missing: 'mape'" in p and "higher, lower" in p


def test_accepts_any_metric_with_a_direction_for_own_code():
    keys = dev_keys()
    keys["mlops:models"]["demand"]["gate"] = {"metric": "mape", "direction": "lower", "threshold": 0.2}
    assert config_from_keys(keys, "test").models["demand"].gate_rule == ("mape", "lower", 0.2, 0.0)


def test_rejects_a_metric_the_built_in_recipe_does_not_report():
    [p] = problems_of(lambda d, c: c["gate"].update(metric="rmse", direction="lower"))
    assert "mlops:models.churn.gate.metric: 'rmse' is not accepted: the built-in recipe reports for task binary" in p
    assert "roc_auc" in p


def test_rejects_gate_and_deprecated_evaluation_together():
    [p] = problems_of(lambda d, c: c.update(evaluation={"primary_metric": "roc_auc", "minimum": 0.7}))
    assert "mlops:models.churn.gate: give either gate or the deprecated evaluation" in p


def test_rejects_bad_built_in_hyperparameters_with_their_key():
    [p] = problems_of(lambda d, c: c.update(training={"hyperparameters": {"max_iterations": 5}}))
    assert p.startswith("config.mlops:models.churn.training.hyperparameters.max_iterations: unknown key")
    assert "max_iter" in p


def test_rejects_a_framework_other_than_sklearn_for_the_built_in_recipe():
    [p] = problems_of(lambda d, c: c.update(framework={"name": "xgboost", "version": "3.2-0"}))
    assert "mlops:models.churn.framework.name: 'xgboost' is not accepted for the built-in recipe" in p


@pytest.mark.parametrize("uri", [
    "ghcr.io/team/ranker:1",  # not ECR
    "111122223333.dkr.ecr.us-east-1.amazonaws.com/ranker",  # no tag or digest
    "1111.dkr.ecr.us-east-1.amazonaws.com/ranker:1",  # not an account id
])
def test_rejects_an_image_that_is_not_an_ecr_uri(uri):
    def change(d, c):
        d.pop("framework")
        d["images"] = {"training": uri, "inference": uri}

    problems = problems_of(change)
    assert any("mlops:models.demand.images.training" in p and "should match pattern" in p for p in problems), problems


def test_rejects_framework_and_images_together():
    [p] = problems_of(lambda d, c: d.update(images={"training": "111122223333.dkr.ecr.us-east-1.amazonaws.com/x:1"}))
    assert "images: give either framework" in p


def test_validate_command_names_the_key_without_traceback(tmp_path):
    keys = dev_keys()
    keys["mlops:models"]["demand"]["framework"]["version"] = "9.9-9"
    path = tmp_path / "Pulumi.bad.yaml"
    path.write_text(yaml.safe_dump({"config": keys}))
    run = subprocess.run([MLOPS, "validate", "--file", str(path)], capture_output=True, text=True)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "framework.version: '9.9-9' is not accepted" in run.stdout + run.stderr and "Traceback" not in run.stderr


def test_framework_versions_are_read_without_importing_the_sdk():
    code = ("import sys; from infra import frameworks as f; f.check('xgboost', '3.2-0', 'us-east-1'); "
            "print('sagemaker' in sys.modules, 'sagemaker.core' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True).stdout
    assert out.split() == ["False", "False"]


# --- the shipped second model: its own images, package, hyperparameters, steps and gate -----------------------


def test_demand_runs_its_own_code_in_its_own_images(manifests):
    m = manifests["dev"]
    out = m.outputs["models"]
    assert out["demand"]["training_image"].endswith("/sagemaker-xgboost:3.2-0")
    assert out["churn"]["training_image"].endswith("/sagemaker-scikit-learn:1.9-0-cpu-py3")
    packages = {r["name"]: r for r in m.of_type(PACKAGE)}
    assert set(packages) == {"code", "code-examples-models-demand"}
    states = flow_of(m, "demand")
    train = states["Train"]["Parameters"]
    assert train["AlgorithmSpecification"]["TrainingImage"] == out["demand"]["training_image"]
    code = [c for c in train["InputDataConfig"] if c["ChannelName"] == "code"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert code != m.outputs["code_package_uri"] and "/code/" in code
    assert train["Environment"]["MLOPS_CODE_SHA256"] in code
    hp = train["HyperParameters"]
    assert hp["sagemaker_program"] == "train.py" and hp["num_round"] == "200" and hp["eta"] == "0.1"
    assert "failure_file" not in hp and "max_iter" not in hp, "the model's own hyperparameters only"
    assert [c["ChannelName"] for c in train["InputDataConfig"]] == ["train", "validation", "contract", "code"]
    # churn keeps the built-in recipe from the platform's package
    churn = flow_of(m, "churn")["Train"]["Parameters"]
    assert churn["HyperParameters"]["sagemaker_program"] == "training/train.py"
    assert [c for c in churn["InputDataConfig"] if c["ChannelName"] == "code"][0]["DataSource"]["S3DataSource"]["S3Uri"] == m.outputs["code_package_uri"]


def test_preprocess_writes_the_channels_under_the_run(manifests):
    states = flow_of(manifests["dev"], "demand")
    assert states["ValidateData"]["Next"] == "Preprocess"
    prep = states["Preprocess"]["Parameters"]
    assert prep["AppSpecification"]["ImageUri"].endswith("/sagemaker-xgboost:3.2-0")
    assert "python3 preprocess.py" in prep["AppSpecification"]["ContainerEntrypoint"][5]
    outputs = {o["OutputName"]: o["S3Output"] for o in prep["ProcessingOutputConfig"]["Outputs"]}
    assert outputs["train"]["LocalPath"] == "/opt/ml/processing/output/train"
    assert "/demand/runs/{}/preprocess/train'" in outputs["train"]["S3Uri.$"]
    assert "/demand/runs/{}/preprocess/validation'" in outputs["validation"]["S3Uri.$"]
    channels = states["PreprocessedChannels"]["Parameters"]
    assert "/runs/{}/preprocess/train/" in channels["train.$"] and "/runs/{}/preprocess/validation/" in channels["validation.$"]
    train_channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in states["Train"]["Parameters"]["InputDataConfig"]}
    assert train_channels["train"]["S3Uri.$"] == "$.channels.train"
    assert train_channels["validation"]["S3Uri.$"] == "$.channels.validation"
    assert "Preprocess" not in flow_of(manifests["dev"], "churn")


def test_platform_steps_run_the_platform_code_for_a_model_of_its_own(manifests):
    m = manifests["dev"]
    states = flow_of(m, "demand")
    platform = m.outputs["code_package_uri"]
    sklearn = m.outputs["models"]["churn"]["training_image"]
    for step in ("ValidateData", "ComputeBaseline", "Evaluate"):
        p = states[step]["Parameters"]
        assert p["AppSpecification"]["ImageUri"] == sklearn, step
        [code] = [i for i in p.get("ProcessingInputs", states["CompareWithProduction"]["Parameters"]["inputs"]) if i["InputName"] == "code"]
        assert code["S3Input"]["S3Uri"] == platform, step
    base = states["ComputeBaseline"]["Parameters"]
    data = [i for i in base["ProcessingInputs"] if i["InputName"] == "data"][0]["S3Input"]
    assert data["S3Uri.$"] == "$.channels.train", "drift's baseline statistics of the training channel"
    package = states["RegisterModel"]["Parameters"]
    assert "/runs/{}/baseline/baseline.json'" in package["DriftCheckBaselines"]["ModelDataQuality"]["Statistics"]["S3Uri.$"]
    assert package["InferenceSpecification"]["Containers"][0]["Image"] == m.outputs["models"]["demand"]["inference_image"]
    assert package["InferenceSpecification"]["Containers"][0]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"


def test_gate_verdict_checks_the_gate_metric_and_threshold(manifests):
    demand = flow_of(manifests["dev"], "demand")["GateVerdict"]["Choices"]
    assert {"Variable": "$.evaluation.report.metrics.rmse", "NumericLessThanEquals": 20.0} in demand[0]["And"]
    assert demand[1]["Next"] == "BelowThreshold"
    churn = flow_of(manifests["dev"], "churn")["GateVerdict"]["Choices"]
    assert {"Variable": "$.evaluation.report.metrics.roc_auc", "NumericGreaterThanEquals": 0.7} in churn[0]["And"]
    metrics = flow_of(manifests["dev"], "demand")["RegisterModel"]["Parameters"]["CustomerMetadataProperties"]
    assert "metric:test:rmse.$" in metrics and "metric:test:roc_auc.$" not in metrics
    assert metrics["hyperparameter:num_round"] == "200"


# --- the platform's own steps, run for real on the platform's code --------------------------------------------


def test_baseline_step_writes_a_baseline_drift_loads(tmp_path):
    from training.drift import load_baseline

    out = tmp_path / "out"
    out.mkdir()
    demand = PROJECT_ROOT / "examples" / "models" / "demand"
    subprocess.run([sys.executable, "-c", flow.BASELINE_SCRIPT, str(demand / "sample"), str(demand / "contract.json"), str(out)],
                   check=True, cwd=PROJECT_ROOT, capture_output=True)
    doc = json.loads((out / "baseline.json").read_text())
    baseline = load_baseline(doc, "baseline.json")
    assert set(baseline.names) == {"store_type", "day_of_week", "temperature_c", "price", "promo", "holiday"}
    assert doc["rows"] == 800


@pytest.mark.parametrize("rmse, production, verdict", [(12.0, None, "pass"), (30.0, None, "fail"), (12.0, 10.0, "fail"), (12.0, 11.5, "pass")])
def test_judge_step_applies_the_gate_to_the_metrics_train_reported(tmp_path, rmse, production, verdict):
    report, out = tmp_path / "report" / "data", tmp_path / "out"
    report.mkdir(parents=True)
    out.mkdir()
    (report / "evaluation.json").write_text(json.dumps({"metrics": {"rmse": rmse, "mae": 8.0, "r2": 0.7}}))
    prod = "-"
    if production is not None:
        prod = str(tmp_path / "production.json")
        Path(prod).write_text(json.dumps({"metrics": {"rmse": production}}))
    rule = ["--primary_metric", "rmse", "--direction", "lower", "--minimum", "20.0", "--max_regression", "1.0"]
    subprocess.run([sys.executable, "-c", "".join(flow.JUDGE_SCRIPT), str(tmp_path / "report"), str(out), prod, *rule],
                   check=True, cwd=PROJECT_ROOT, capture_output=True)
    doc = json.loads((out / "evaluation.json").read_text())
    assert doc["verdict"] == verdict and doc["metrics"]["rmse"] == rmse and doc["reasons"]


# --- bring your own container ---------------------------------------------------------------------------------


def test_own_container_model_pulls_only_its_repositories_and_the_platforms():
    _, m = synth_file(BYOC)
    role = [r for r in m.of_type("aws:iam/role:Role") if "::model-ranker-" in r["urn"]][0]
    [runtime] = [p for p in m.of_type("aws:iam/rolePolicy:RolePolicy") if p["inputs"]["role"] == role["inputs"]["name"]
                 and "sagemaker-runtime" in p["name"]]
    stmts = json.loads(runtime["inputs"]["policy"])["Statement"]
    [pull] = [s for s in stmts if "ecr:BatchGetImage" in s["Action"]]
    assert sorted(pull["Resource"]) == sorted([
        "arn:aws:ecr:us-east-1:111122223333:repository/team-a/ranker-serve",
        "arn:aws:ecr:us-east-1:111122223333:repository/team-a/ranker-train",
        "arn:aws:ecr:us-east-1:683313688378:repository/sagemaker-scikit-learn",  # the platform's steps
    ])
    assert "ecr:GetDownloadUrlForLayer" in pull["Action"]
    assert [s for s in stmts if s.get("Action") == "ecr:GetAuthorizationToken"]
    states = flow_of(m, "ranker")
    algorithm = states["Train"]["Parameters"]["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == "111122223333.dkr.ecr.us-east-1.amazonaws.com/team-a/ranker-train:1.4.0"
    assert "ContainerEntrypoint" not in algorithm, "an own image keeps its own entry point"
    hp = states["Train"]["Parameters"]["HyperParameters"]
    assert (hp["num_round"], hp["objective"], hp["verbose"]) == ("50", "reg:squarederror", "false"), "free-form, as strings"
    assert states["Evaluate"]["Parameters"]["AppSpecification"]["ImageUri"] == algorithm["TrainingImage"], "its own evaluate"
    assert m.outputs["models"]["ranker"]["inference_image"].endswith("/team-a/ranker-serve@sha256:" + "0123456789abcdef" * 4)


def test_rejects_a_model_role_that_pulls_any_repository():
    from infra.review import rules

    stmt = {"Effect": "Allow", "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": "arn:aws:ecr:us-east-1:111122223333:repository/*"}
    record = {"type": rules.ROLE_POLICY, "name": "p", "urn": "urn:p", "inputs": {"policy": json.dumps({"Statement": [stmt]})}}
    stack = rules.Stack([record]) if hasattr(rules, "Stack") else None
    found = list(rules.check_ecr_pulls_scoped(record, stack))
    assert found and "repository/*" in found[0]
    stmt["Resource"] = "arn:aws:ecr:us-east-1:111122223333:repository/team-a/ranker-train"
    record["inputs"]["policy"] = json.dumps({"Statement": [stmt]})
    assert list(rules.check_ecr_pulls_scoped(record, stack)) == []


def test_shipped_and_byoc_stacks_pass_the_ecr_rule(manifests):
    from infra.review import rules

    for m in [*manifests.values(), synth_file(BYOC)[1]]:
        stack = rules.Stack(m.resources) if hasattr(rules, "Stack") else None
        for r in m.resources:
            if r["type"] in rules.IDENTITY_POLICIES or r["type"] == rules.ROLE:
                assert list(rules.check_ecr_pulls_scoped(r, stack)) == [], r["name"]


# --- two models with different code in one stack --------------------------------------------------------------


def test_changing_one_models_code_changes_only_its_package_and_jobs(tmp_path):
    sources = {}
    for team in ("alpha", "beta"):
        sources[team] = tmp_path / team
        shutil.copytree(PROJECT_ROOT / "examples" / "models" / "demand", sources[team], ignore=shutil.ignore_patterns("__pycache__"))
    keys = dev_keys()
    demand = keys["mlops:models"].pop("demand")
    for team, path in sources.items():
        keys["mlops:models"][team] = {**copy.deepcopy(demand), "source": str(path)}
    before = synth_keys("two", keys, "us-east-1")
    packages = {r["name"]: r for r in before.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if r["name"].startswith("code")}
    assert len(packages) == 3, sorted(packages)  # the platform's and one per source
    (sources["alpha"] / "train.py").write_text((sources["alpha"] / "train.py").read_text() + "\n# tuned\n")
    after = synth_keys("two", keys, "us-east-1")
    report = diff(before.to_json(), after.to_json())
    changed = [c.name for c in report.changes]
    assert changed, "the changed code is a new package"
    assert all("alpha" in name for name in changed), changed
    assert any(name.startswith("code-") and name.endswith("-sourcedir") for name in changed)
    assert "pipeline-alpha-state-machine" in changed


def test_per_step_instance_types_reach_each_step_and_typos_name_the_keys():
    keys = dev_keys()
    keys["mlops:models"]["demand"]["instance_types"] = {"validate": "ml.c5.xlarge", "evaluate": "ml.c5.2xlarge", "inference": "ml.c5.large"}
    m = synth_keys("steps", keys, "us-east-1")
    states = flow_of(m, "demand")
    assert states["ValidateData"]["Parameters"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.c5.xlarge"
    assert states["Evaluate"]["Parameters"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.c5.2xlarge"
    assert states["Preprocess"]["Parameters"]["ProcessingResources"]["ClusterConfig"]["InstanceType"] == "ml.m5.large"
    assert states["Train"]["Parameters"]["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    [config] = [c for c in m.of_type("aws:sagemaker/endpointConfiguration:EndpointConfiguration") if "endpoint-demand-" in c["urn"]]
    assert config["inputs"]["productionVariants"][0]["instanceType"] == "ml.c5.large"
    [p] = problems_of(lambda d, c: d.update(instance_types={"validatee": "ml.c5.xlarge"}))
    assert "instance_types.validatee: unknown key (did you mean 'validate'?)" in p and "validate, preprocess, train" in p


def test_own_code_with_the_deprecated_evaluation_still_gets_the_threshold_check():
    keys = dev_keys()
    demand = keys["mlops:models"]["demand"]
    demand.pop("gate")
    demand["evaluation"] = {"primary_metric": "rmse", "direction": "lower", "minimum": 18.0, "max_regression": 0.5}
    states = flow_of(synth_keys("legacy", keys, "us-east-1"), "demand")
    assert {"Variable": "$.evaluation.report.metrics.rmse", "NumericLessThanEquals": 18.0} in states["GateVerdict"]["Choices"][0]["And"]
    assert states["Evaluate"]["Parameters"]["AppSpecification"]["ContainerEntrypoint"][-3:] == list(flow.JUDGE_SCRIPT)
    args = states["NoProductionModel"]["Parameters"]["arguments"]
    assert args[args.index("--primary_metric") + 1] == "rmse" and args[args.index("--minimum") + 1] == "18.0"
