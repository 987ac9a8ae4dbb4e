"""``infra.scaffold.new_model``: every framework x task writes a model directory whose train entry point runs as
SageMaker runs it (a process, SM_* environment) and whose own tests pass, unchanged."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.scaffold import FRAMEWORKS, ScaffoldError, new_model, sample_csv
from infra.config import GateConfig
from training.contract import DataContract
from training.metric_names import EVALUATION_METRICS, TASKS
from training.validate import validate_dataset

COMBINATIONS = list(itertools.product(FRAMEWORKS, TASKS))
TIMEOUT = 300


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("SM_")}, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory):
    """Every combination generated, then its own tests run (all at once: the machine has few cores). Those tests run
    train.py as SageMaker runs it (a process, SM_* environment) in a job folder under their --basetemp: the
    assertions below read that job's model, evaluation and printed metrics, so each train.py runs once."""
    pytest.importorskip("xgboost")
    root = tmp_path_factory.mktemp("models")
    runs = {}
    for framework, task in COMBINATIONS:
        directory = new_model(f"{framework}-{task}", framework, task, root)
        base = tmp_path_factory.mktemp(f"tests-{framework}-{task}")
        tests = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base}", "tests"], cwd=directory,
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        runs[framework, task] = (directory, base, tests)
    done = {}
    for key, (directory, base, tests) in runs.items():
        tests_out, _ = tests.communicate(timeout=TIMEOUT)
        done[key] = {"directory": directory, "job": base / "job0", "tests": (tests.returncode, tests_out)}
    return done


@pytest.mark.parametrize("framework, task", COMBINATIONS)
def test_train_entry_point_runs_and_writes_evaluation_json(scaffolded, framework, task):
    run = scaffolded[framework, task]
    log = run["job"] / "train.log"
    assert log.is_file() and (run["job"] / "data" / "evaluation.json").is_file(), run["tests"][1]
    out = log.read_text()
    evaluation = json.loads((run["job"] / "data" / "evaluation.json").read_text())
    assert evaluation["format"] == "mlops-evaluation/1" and evaluation["task"] == task
    for name, value in evaluation["metrics"].items():
        assert re.search(rf"^validation:{name}={value:.6f}$", out, re.M), out
        assert evaluation["directions"][name] in ("higher", "lower")
    assert (run["job"] / "model" / "code" / "inference.py").is_file()


@pytest.mark.parametrize("framework, task", COMBINATIONS)
def test_generated_tests_pass(scaffolded, framework, task):
    code, out = scaffolded[framework, task]["tests"]
    assert code == 0 and "3 passed" in out, out


@pytest.mark.parametrize("framework, task", COMBINATIONS)
def test_contract_sample_and_config_block_are_what_the_platform_accepts(scaffolded, framework, task, tmp_path):
    directory = scaffolded[framework, task]["directory"]
    contract = DataContract.model_validate_json((directory / "contract.json").read_text())
    assert contract.task == task
    _, result = validate_dataset(directory / "sample", contract)
    assert result.valid, result.summary("sample")
    (block,) = yaml.safe_load((directory / "config.yaml").read_text()).values()
    assert block["framework"]["name"] == framework and block["framework"]["version"] == FRAMEWORKS[framework]
    assert block["entry_points"] == {"train": "train.py", "inference": "inference.py"}
    assert "evaluation" not in block, "the deprecated key"
    gate = GateConfig.model_validate(block["gate"])
    assert gate.metric in EVALUATION_METRICS[task] and gate.direction == gate.resolved_direction()
    if framework == "xgboost":
        assert block["image_packages"] == [r.split("==")[0] for r in (directory / "requirements.txt").read_text().split()], (
            "every requirement is in the XGBoost image (its wheels cannot be vendored)")
    else:
        assert "image_packages" not in block
    assert "```yaml" in (directory / "README.md").read_text()


def test_sample_data_is_deterministic():
    assert sample_csv("regression") == sample_csv("regression")
    assert sample_csv("binary", seed=1) != sample_csv("binary", seed=2)


@pytest.mark.parametrize(
    "name, framework, task, message",
    [
        ("Demand", "sklearn", "binary", "model name 'Demand' is not accepted"),
        ("d", "sklearn", "binary", "2..24 characters"),
        ("demand", "pytorch", "binary", "framework 'pytorch' is not accepted; accepted: sklearn, xgboost"),
        ("demand", "xgboost", "ranking", "task 'ranking' is not accepted; accepted: binary, multiclass, regression"),
    ],
)
def test_rejects_a_name_framework_or_task_it_cannot_scaffold(tmp_path, name, framework, task, message):
    with pytest.raises(ScaffoldError, match=re.escape(message)):
        new_model(name, framework, task, tmp_path)
    assert not any(tmp_path.iterdir())


def test_rejects_an_existing_directory(tmp_path):
    (tmp_path / "demand").mkdir()
    (tmp_path / "demand" / "keep.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="already exists"):
        new_model("demand", "xgboost", "regression", tmp_path)
    assert [p.name for p in (tmp_path / "demand").iterdir()] == ["keep.txt"]


def test_cli_new_model_writes_the_directory_and_prints_the_config_block(tmp_path):
    from typer.testing import CliRunner

    from infra.cli.app import app

    result = CliRunner().invoke(app, ["new", "model", "demand2", "--framework", "xgboost", "--task", "regression", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "demand2" / "train.py").is_file() and "gate: {metric: r2, direction: higher" in result.output
    refused = CliRunner().invoke(app, ["new", "model", "demand2", "--framework", "tensorflow", "--out", str(tmp_path)])
    assert refused.exit_code == 2 and "framework 'tensorflow' is not accepted" in refused.output
    assert "Traceback" not in refused.output


# A scaffolded model pasted into a copy of the dev stack (a project of its own: Pulumi.yaml, the stack file and what it
# names), then run through the CLI from that project, as a team would after `mlops new model`.
ROOT = Path(__file__).resolve().parents[2]
MLOPS = str(Path(sys.executable).with_name("mlops"))


def _mlops(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS, *args], cwd=project, capture_output=True, text=True, timeout=TIMEOUT, env=_env())


def _project_with(tmp_path: Path, name: str, framework: str, task: str) -> Path:
    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    # The checkout's wheel caches (.mlops/wheels: the training package's pinned wheels, which synth vendors; .mlops/build/
    # wheels: the drift Lambda's numpy), as a team's project has them after its first synth: the pins are this
    # repository's, and fetching them into empty caches (5 pip downloads, ~20 CPU-s) is tests/components' to test, not
    # the pasted model's. (What synth builds from them is built afresh here.)
    for cache in (Path(".mlops") / "wheels", Path(".mlops") / "build" / "wheels"):
        (ROOT / cache).mkdir(parents=True, exist_ok=True)
        (project / cache).parent.mkdir(parents=True, exist_ok=True)
        (project / cache).symlink_to(ROOT / cache, target_is_directory=True)
    shutil.copy2(ROOT / "Pulumi.yaml", project / "Pulumi.yaml")
    stack = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    for model in stack["config"]["mlops:models"].values():  # the dev stack's own models keep their files
        for key in ("source", "data_contract"):
            if isinstance(model.get(key), str) and not (project / model[key]).exists():
                target = project / model[key]
                target.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if (ROOT / model[key]).is_dir() else shutil.copy2)(ROOT / model[key], target)
    made = _mlops(project, "new", "model", name, "--framework", framework, "--task", task)
    assert made.returncode == 0, made.stdout + made.stderr
    stack["config"]["mlops:models"].update(yaml.safe_load((project / "models" / name / "config.yaml").read_text()))
    (project / "stacks" / "Pulumi.dev.yaml").write_text(yaml.safe_dump(stack, sort_keys=False))
    return project


def test_scaffolded_sklearn_binary_model_pasted_into_the_dev_stack_validates_and_trains(tmp_path):
    project = _project_with(tmp_path, "leads", "sklearn", "binary")
    validated = _mlops(project, "validate", "--stack", "dev")
    assert validated.returncode == 0 and "leads" in validated.stdout, validated.stdout + validated.stderr
    out = tmp_path / "run"
    trained = _mlops(project, "train", "--stack", "dev", "--model", "leads", "--out", str(out))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert "verdict: pass" in trained.stdout
    ml = out / "opt" / "ml"
    assert (ml / "processing" / "baseline" / "baseline.json").is_file()
    evaluation = json.loads((ml / "output" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["rule"]["primary_metric"] == "roc_auc" and evaluation["verdict"] == "pass"


def test_scaffolded_xgboost_regression_model_pasted_into_the_dev_stack_validates_and_synthesizes(tmp_path):
    project = _project_with(tmp_path, "revenue", "xgboost", "regression")
    validated = _mlops(project, "validate", "--stack", "dev")
    assert validated.returncode == 0 and "revenue" in validated.stdout, validated.stdout + validated.stderr
    manifest = tmp_path / "manifest.json"
    synth = _mlops(project, "synth", "--stack", "dev", "--out", str(manifest))
    assert synth.returncode == 0, synth.stdout + synth.stderr
    resources = json.loads(manifest.read_text())["resources"]
    (machine,) = [r for r in resources if r["type"] == "aws:sfn/stateMachine:StateMachine" and r["name"] == "pipeline-revenue-state-machine"]
    states = json.loads(machine["inputs"]["definition"])["States"]
    (train,) = [s for s in states.values() if s.get("Resource", "").endswith("createTrainingJob.sync")]
    assert "sagemaker-xgboost:3.2-0" in train["Parameters"]["AlgorithmSpecification"]["TrainingImage"]
    hyperparameters = train["Parameters"]["HyperParameters"]
    assert (hyperparameters["sagemaker_program"], hyperparameters["num_round"], hyperparameters["max_depth"]) == ("train.py", "100", "4")
    assert "--primary_metric" in json.dumps(states) and '"r2"' in json.dumps(states)
    assert any(r["name"] == "code-models-revenue-sourcedir" for r in resources), "its own code package"
