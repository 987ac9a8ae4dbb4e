"""training/train.py, run as SageMaker script mode runs it: artifacts, baseline format, metric lines."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from training_steps import CONTRACT, REPO, Run, environment, run_steps

from training import train
from training.contract import METRIC_DEFINITIONS, DataContract
from training.data import UsageError
from training.sample_data import generate


def test_writes_model_contract_and_baselines(trained, contract):
    assert {p.name for p in trained.model_dir.iterdir()} == {"model.joblib", "contract.json", "training.json", "baseline.json", "code"}
    assert DataContract.model_validate_json((trained.model_dir / "contract.json").read_text()) == contract
    assert json.loads((trained.output_dir / "baseline.json").read_text()) == json.loads(
        (trained.model_dir / "baseline.json").read_text()
    )
    assert json.loads((trained.output_dir / "validation_report.json").read_text())["valid"] is True
    summary = json.loads((trained.model_dir / "training.json").read_text())
    assert summary["hyperparameters"]["max_iter"] == 60 and summary["hyperparameters"]["max_depth"] == 4
    assert summary["rows"] == {"train": 1200, "validation": 300, "train_scored": 1200}


def test_metric_lines_match_the_metric_definitions(trained):
    """Each SageMaker metric regex finds exactly one line in the real output, with the value training.json holds."""
    recorded = json.loads((trained.model_dir / "training.json").read_text())["metrics"]
    for definition in METRIC_DEFINITIONS:
        matches = re.findall(definition["Regex"], trained.step.stdout)
        assert len(matches) == 1, (definition, trained.step.stdout)
        split, name = definition["Name"].split(":")
        assert float(matches[0]) == pytest.approx(recorded[split][name], abs=1e-6)
    assert recorded["validation"]["roc_auc"] > 0.75  # the generator's signal is learnt


def test_baseline_has_the_documented_format(trained, contract):
    baseline = json.loads((trained.model_dir / "baseline.json").read_text())
    assert baseline["format"] == "mlops-baseline/1"
    assert baseline["rows"] == 1500
    assert set(baseline["features"]) == set(contract.features)
    for name, stats in baseline["features"].items():
        assert stats["count"] + stats["null_count"] == 1500
        if contract.columns[name].type in ("int", "float"):
            assert stats["kind"] == "numeric"
            assert {"mean", "std", "min", "max"} <= set(stats)
            edges, proportions = stats["bins"]["edges"], stats["bins"]["proportions"]
            assert 1 <= len(edges) <= 9 and all(a < b for a, b in zip(edges, edges[1:]))
            assert len(proportions) == len(edges) + 1 and sum(proportions) == pytest.approx(1.0)
        else:
            assert stats["kind"] == "categorical"
            assert sum(stats["frequencies"].values()) == pytest.approx(1.0)
            allowed = contract.columns[name].allowed or ["true", "false"]
            assert set(stats["frequencies"]) <= set(allowed)
    assert baseline["features"]["monthly_charges"]["null_count"] > 0
    prediction = baseline["prediction"]
    assert prediction["count"] == 300 and sum(prediction["bins"]["proportions"]) == pytest.approx(1.0)


def test_baseline_bins_follow_the_documented_convention(trained, data_dir):
    """Bin 0 is x < e0, bin i is e(i-1) <= x < e(i), the last x >= ek: recounted here from the raw files."""
    baseline = json.loads((trained.model_dir / "baseline.json").read_text())
    frame = pd.concat([pd.read_csv(p) for p in sorted((data_dir / "train").glob("*.csv"))])
    for name in ("tenure_months", "monthly_charges", "support_calls"):
        values = frame[name].dropna().to_numpy()
        stats = baseline["features"][name]
        edges = stats["bins"]["edges"]
        bounds = [-np.inf, *edges, np.inf]
        counts = [np.sum((values >= lo) & (values < hi)) for lo, hi in zip(bounds, bounds[1:])]
        assert stats["bins"]["proportions"] == pytest.approx(np.array(counts) / len(values))
        assert stats["mean"] == pytest.approx(values.mean()) and stats["std"] == pytest.approx(values.std(ddof=1))


def test_refuses_to_train_on_invalid_data(tmp_path):
    bad = generate(300, seed=4).astype(str)
    bad.loc[0:5, "plan"] = "gold"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    args = ["--train", str(tmp_path / "bad.csv"), "--model-dir", str(tmp_path / "model"), "--contract", str(CONTRACT),
            "--output-data-dir", str(tmp_path / "out"), "--failure-file", str(tmp_path / "failure")]
    (step,) = run_steps([Run("train", args)], cwd=tmp_path)
    assert step.returncode == 1
    assert "plan [allowed]" in step.stdout and "refusing to train" in step.stderr
    assert "plan [allowed]" in (tmp_path / "failure").read_text()
    assert json.loads((tmp_path / "out" / "validation_report.json").read_text())["valid"] is False
    assert not (tmp_path / "model" / "model.joblib").exists()
    assert "Traceback" not in step.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--learning_rate", "2"], "learning_rate: Input should be less than or equal to 1 (got '2')"),
        (["--max_iter"], "--max_iter needs a value"),
        (["--max_iters", "3"], None),  # a misspelt hyperparameter is an unknown argument (argparse: exit 2)
    ],
)
def test_rejects_bad_hyperparameters_before_reading_data(tmp_path, args, message):
    common = ["--train", str(tmp_path), "--model-dir", str(tmp_path), "--output-data-dir", str(tmp_path), "--contract", str(CONTRACT)]
    if message is None:
        with pytest.raises(SystemExit) as exited:
            train.main([*common, *args])
        assert exited.value.code == 2
    else:
        with pytest.raises(UsageError, match=re.escape(message)):
            train.main([*common, *args])


_HEAVY = ("numpy", "pandas", "sklearn", "scipy", "pandera")


def test_usage_error_is_reported_before_numpy_pandas_or_sklearn_load(tmp_path):
    """A SageMaker job with a bad hyperparameter fails in a fraction of a second: train.py checks its arguments
    before it imports the scientific stack (3-4 CPU-s and ~200 MB that a usage error does not need)."""
    script = REPO / "training" / "train.py"
    code = (
        "import runpy, sys\n"
        f"sys.argv = [{str(script)!r}, '--max_iter', 'abc']\n"
        "try:\n"
        f"    runpy.run_path({str(script)!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        f"print(code, sorted(m for m in {_HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment(), capture_output=True, text=True, timeout=120)
    assert "max_iter" in done.stderr, done.stderr
    assert done.stdout.split(None, 1) == ["2", "[]\n"], (done.stdout, done.stderr)
