"""`mlops train` of a model with its own code (the dev stack's demand: XGBoost regression), through the real console
script: the platform's validate, the model's preprocess, the platform's baseline, the model's train in script mode and
the platform's judge of the metrics it reported."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from infra.ops.local_run import script_mode_args

pytest.importorskip("xgboost")

ROOT = Path(__file__).resolve().parents[3]
MLOPS = str(Path(sys.executable).with_name("mlops"))
DEMAND_SAMPLE = ROOT / "examples" / "models" / "demand" / "sample" / "demand.csv"


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS, "train", "--model", "demand", *args], capture_output=True, text=True, timeout=300, cwd=ROOT)


def stack_with(tmp_path: Path, **demand) -> Path:
    """A copy of the dev stack whose demand model has ``demand``'s keys replaced."""
    document = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    document["config"]["mlops:models"]["demand"].update(demand)
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_own_code_run_leaves_model_baseline_and_verdict(tmp_path):
    out = tmp_path / "run"
    run = train("--stack", "dev", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    ml = out / "opt" / "ml"
    assert (ml / "model" / "xgboost-model.json").is_file(), "the model's own artifact, written by its train.py"
    assert (ml / "model" / "code" / "inference.py").is_file()
    # preprocess wrote the channels train read; the platform's baseline is of the training channel
    train_rows = len(pd.read_csv(ml / "input" / "data" / "train" / "part-0.csv"))
    assert (ml / "input" / "data" / "validation" / "part-0.csv").is_file()
    baseline = json.loads((ml / "processing" / "baseline" / "baseline.json").read_text())
    assert baseline["format"] == "mlops-baseline/1" and baseline["rows"] == train_rows
    evaluation = json.loads((ml / "output" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["verdict"] == "pass" and evaluation["rule"]["primary_metric"] == "rmse"
    reported = json.loads((ml / "output" / "data" / "evaluation.json").read_text())
    assert evaluation["metrics"] == reported["metrics"], "the platform judged what the model's train reported"
    assert "verdict: pass" in run.stdout and "preprocess" in run.stdout and "baseline" in run.stdout
    assert "validation:rmse=" in (out / "train.log").read_text()


def test_hyperparameters_reach_train_and_production_comparison_fails_the_verdict(tmp_path):
    stack = stack_with(tmp_path, training={"hyperparameters": {"num_round": 30, "max_depth": 3, "eta": 0.3}})
    production = tmp_path / "production.json"
    production.write_text(json.dumps({"rmse": 1.0}))
    out = tmp_path / "run"
    run = train("--file", str(stack), "--production-metrics", str(production), "--out", str(out))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "verdict: fail" in run.stdout
    hyperparameters = json.loads((out / "opt" / "ml" / "model" / "training.json").read_text())["hyperparameters"]
    assert (hyperparameters["num_round"], hyperparameters["max_depth"], hyperparameters["eta"]) == (30, 3, 0.3)


def test_script_mode_args_are_the_training_toolkits():
    # values JSON-decoded then str()'d, keys in order, one-letter keys with one dash
    assert script_mode_args({"eta": "0.1", "b": "true", "name": "abc", "num_round": "200"}) == [
        "-b", "True", "--eta", "0.1", "--name", "abc", "--num_round", "200"]


def test_rejects_data_that_breaks_the_contract_before_preprocess(tmp_path):
    broken = tmp_path / "broken.csv"
    pd.read_csv(DEMAND_SAMPLE).rename(columns={"temperature_c": "temperature_f"}).to_csv(broken, index=False)
    out = tmp_path / "run"
    run = train("--stack", "dev", "--data", str(broken), "--out", str(out))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "validate failed" in run.stderr and "temperature_c" in run.stderr
    assert not (out / "preprocess.log").exists() and not (out / "opt" / "ml" / "model" / "xgboost-model.json").exists()


def test_rejects_a_train_that_exits_non_zero(tmp_path):
    stack = stack_with(tmp_path, training={"hyperparameters": {"eta": 5}})
    run = train("--file", str(stack), "--out", str(tmp_path / "run"))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "train failed" in run.stderr and "eta and subsample in (0, 1]" in run.stderr, "the tail of train's log"
    assert "verdict" not in run.stdout and "Traceback" not in run.stderr


def test_rejects_a_missing_entry_point(tmp_path):
    stack = stack_with(tmp_path, entry_points={"train": "missing.py", "inference": "inference.py"})
    run = train("--file", str(stack), "--out", str(tmp_path / "run"))
    assert run.returncode == 2, run.stdout + run.stderr
    assert "entry_points.train" in run.stderr and "missing.py" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "run").exists()


def test_rejects_a_test_set_when_the_platform_judges_reported_metrics(tmp_path):
    run = train("--stack", "dev", "--test", str(DEMAND_SAMPLE), "--out", str(tmp_path / "run"))
    assert run.returncode == 2 and "--test is not accepted" in run.stderr and "Traceback" not in run.stderr


def test_rejects_a_missing_data_path(tmp_path):
    run = train("--stack", "dev", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "run"))
    assert run.returncode == 2 and "does not exist" in run.stderr and "Traceback" not in run.stderr


EVALUATE = '''import json, sys
from pathlib import Path
args = sys.argv[1:]
value = dict(zip(args[::2], args[1::2]))
test_rows = sum(1 for f in Path(value["--test"]).rglob("*.csv") for _ in f.open()) - 1
document = {"format": "mlops-evaluation/1", "task": "regression", "rows": test_rows, "metrics": {"rmse": 1.0},
            "directions": {"rmse": "lower"}, "verdict": "pass", "reasons": ["judged by the model's own evaluate"], "argv": args}
Path(value["--output-dir"], "evaluation.json").write_text(json.dumps(document))
'''


def test_own_evaluate_gets_the_model_the_validation_channel_and_the_gate(tmp_path):
    source = tmp_path / "demand"
    shutil.copytree(ROOT / "examples" / "models" / "demand", source, ignore=shutil.ignore_patterns("tests", "__pycache__"))
    (source / "evaluate.py").write_text(EVALUATE)
    stack = stack_with(tmp_path, source=str(source), training={"hyperparameters": {"num_round": 20}},
                       entry_points={"train": "train.py", "inference": "inference.py", "preprocess": "preprocess.py", "evaluate": "evaluate.py"})
    out = tmp_path / "run"
    run = train("--file", str(stack), "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "judged by the model's own evaluate" in run.stdout
    ml = out / "opt" / "ml"
    args = json.loads((ml / "output" / "evaluation" / "evaluation.json").read_text())["argv"]
    given = dict(zip(args[::2], args[1::2]))
    assert given["--model"] == str(ml / "model") and given["--test"] == str(ml / "input" / "data" / "validation")
    assert (given["--primary_metric"], given["--direction"], float(given["--minimum"])) == ("rmse", "lower", 20.0)
    assert "--baseline-metrics" not in given
