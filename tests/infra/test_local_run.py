"""`mlops train` through the real console script: the three container entry points, run locally."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

from infra.ops.local_run import SAMPLE_DATA

MLOPS = str(Path(sys.executable).with_name("mlops"))


def train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS, "train", "--stack", "dev", "--model", "churn", *args], capture_output=True, text=True, timeout=300)


def test_sample_run_leaves_model_baseline_and_evaluation(tmp_path):
    out = tmp_path / "run"
    run = train("--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    ml = out / "opt" / "ml"
    assert (ml / "model" / "model.joblib").is_file()
    assert json.loads((ml / "output" / "data" / "baseline.json").read_text())["format"] == "mlops-baseline/1"
    evaluation = json.loads((ml / "output" / "evaluation" / "evaluation.json").read_text())
    assert evaluation["verdict"] == "pass" and evaluation["production_metrics"] is None
    assert f"artifacts: {out}" in run.stdout.replace("\n", "")
    assert "validation:roc_auc=" in (out / "train.log").read_text(), "the container's metric lines are kept"


def test_schema_change_stops_before_training(tmp_path):
    broken = tmp_path / "broken.csv"
    pd.read_csv(SAMPLE_DATA).rename(columns={"monthly_charges": "monthly_fee"}).to_csv(broken, index=False)
    run = train("--data", str(broken), "--out", str(tmp_path / "run"))
    assert run.returncode == 1
    assert "validate failed" in run.stderr and "monthly_charges" in run.stderr
    assert not (tmp_path / "run" / "opt" / "ml" / "model" / "model.joblib").exists()


def test_worse_than_production_fails_the_verdict(tmp_path):
    production = tmp_path / "production.json"
    production.write_text(json.dumps({"roc_auc": 0.99}))
    run = train("--production-metrics", str(production), "--out", str(tmp_path / "run"))
    assert run.returncode == 1
    assert "verdict: fail" in run.stdout


def test_user_errors_are_clear(tmp_path):
    missing = train("--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "a"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr + missing.stdout
    unknown = subprocess.run([MLOPS, "train", "--stack", "dev", "--model", "fraud"], capture_output=True, text=True)
    assert unknown.returncode == 2 and "has no model 'fraud'" in unknown.stderr
    for r in (missing, unknown):
        assert "Traceback" not in r.stderr + r.stdout
