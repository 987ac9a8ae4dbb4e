"""training/evaluate.py: the verdict against production metrics, in the metric's direction, from a model
directory or a model.tar.gz as SageMaker writes it."""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from training_steps import Run, Step, run_steps

from training import evaluate
from training.contract import metric_definitions
from training.data import UsageError


@dataclass(frozen=True)
class Evaluated:
    step: Step
    document: dict | None


def _archive(model_dir: Path, target: Path) -> Path:
    """model.tar.gz as a training job packs SM_MODEL_DIR."""
    target.mkdir(parents=True)
    with tarfile.open(target / "model.tar.gz", "w:gz") as tar:
        for path in model_dir.iterdir():
            tar.add(path, arcname=path.name)
    return target / "model.tar.gz"


@pytest.fixture(scope="module")
def evaluated(trained, data_dir, tmp_path_factory) -> dict[str, Evaluated]:
    root = tmp_path_factory.mktemp("evaluate")
    archive = _archive(trained.model_dir, root / "archive")
    production = {
        "weak": {"roc_auc": 0.55, "accuracy": 0.5, "log_loss": 5.0},
        "strong": {"metrics": {"roc_auc": 0.99, "accuracy": 0.99, "log_loss": 0.05}},  # an evaluation.json
        "no_primary": {"accuracy": 0.7},
    }
    for name, content in production.items():
        (root / f"{name}.json").write_text(json.dumps(content))
    test = str(data_dir / "test")

    def run(name: str, *args: str, model: Path = trained.model_dir) -> Run:
        return Run("evaluate", ["--model", str(model), "--test", test, "--output-dir", str(root / name), *args])

    cases = {
        "first": Run(
            "evaluate",
            ["--minimum", "0.6"],
            {"SM_MODEL_DIR": str(trained.model_dir), "SM_CHANNEL_TEST": test, "SM_OUTPUT_DATA_DIR": str(root / "first")},
            script=True,
        ),
        "better": run("better", "--baseline-metrics", str(root / "weak.json"), "--max_regression", "0.0", model=archive),
        "worse": run("worse", "--baseline-metrics", str(root / "strong.json"), "--max_regression", "0.02", model=archive.parent),
        "log_loss_better": run("log_loss_better", "--baseline-metrics", str(root / "weak.json"),
                               "--primary_metric", "log_loss", "--minimum", "2.0"),
        "log_loss_worse": run("log_loss_worse", "--baseline-metrics", str(root / "strong.json"),
                              "--primary_metric", "log_loss", "--minimum", "2.0", "--max_regression", "0.01"),
        "no_primary": run("no_primary", "--baseline-metrics", str(root / "no_primary.json")),
    }
    steps = run_steps(list(cases.values()), cwd=root)
    results = {}
    for name, step in zip(cases, steps):
        path = root / name / "evaluation.json"
        results[name] = Evaluated(step, json.loads(path.read_text()) if path.exists() else None)
    return results


def test_first_model_passes_on_the_minimum_alone(evaluated):
    first = evaluated["first"]
    assert first.step.returncode == 0, first.step.stderr
    doc = first.document
    assert doc["format"] == "mlops-evaluation/1"
    assert doc["verdict"] == "pass"
    assert doc["production_metrics"] is None and doc["comparison"] == {}
    assert doc["rule"] == {"primary_metric": "roc_auc", "minimum": 0.6, "max_regression": 0.0}
    assert any("first model" in r for r in doc["reasons"])
    assert doc["rows"] == 500


def test_first_model_below_the_minimum_fails(trained, data_dir, tmp_path):
    args = ["--model", str(trained.model_dir), "--test", str(data_dir / "test"), "--output-dir", str(tmp_path), "--minimum", "0.99"]
    assert evaluate.main(args) == 0  # the pipeline's gate reads the verdict
    doc = json.loads((tmp_path / "evaluation.json").read_text())
    assert doc["verdict"] == "fail"
    assert doc["reasons"] == [f"roc_auc {doc['metrics']['roc_auc']:.6f} does not reach the minimum (at least 0.99)"]


def test_better_than_production_passes_with_a_comparison(evaluated):
    doc = evaluated["better"].document
    assert doc["verdict"] == "pass"
    roc = doc["comparison"]["roc_auc"]
    assert roc["production"] == 0.55 and roc["delta"] == pytest.approx(roc["new"] - 0.55)
    assert set(doc["comparison"]) == {"roc_auc", "accuracy", "log_loss"}


def test_worse_than_production_fails_naming_the_regression(evaluated):
    result = evaluated["worse"]
    assert result.step.returncode == 0
    assert result.document["verdict"] == "fail"
    assert result.document["production_metrics"]["roc_auc"] == 0.99
    assert "worse than production 0.990000" in result.document["reasons"][0]
    assert "verdict=fail" in result.step.stdout


def test_log_loss_is_judged_lower_is_better(evaluated):
    better, worse = evaluated["log_loss_better"].document, evaluated["log_loss_worse"].document
    assert better["verdict"] == "pass"  # its loss is below production's 5.0
    assert worse["verdict"] == "fail"  # its loss is above production's 0.05
    assert worse["comparison"]["log_loss"]["delta"] > 0.01
    assert "log_loss" in worse["reasons"][0] and "worse than production 0.050000" in worse["reasons"][0]


def test_prints_test_metric_lines(evaluated):
    stdout = evaluated["first"].step.stdout
    metrics = evaluated["first"].document["metrics"]
    for definition in metric_definitions(["test"]):
        (value,) = re.findall(definition["Regex"], stdout)
        assert float(value) == pytest.approx(metrics[definition["Name"].split(":")[1]], abs=1e-6)


def test_bad_input_exits_2_with_a_message(evaluated):
    result = evaluated["no_primary"]
    assert result.step.returncode == 2
    assert "have no numeric 'roc_auc' (the primary metric); found: accuracy" in result.step.stderr
    assert "Traceback" not in result.step.stderr
    assert result.document is None


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--baseline-metrics", "{malformed}"], "is not valid JSON"),
        (["--test", "{bad_holdout}"], "column 'monthly_charges' (float) is missing"),
        (["--primary_metric", "auc"], "primary_metric: Input should be 'roc_auc', 'accuracy', 'f1' or 'log_loss' (got 'auc')"),
        (["--model", "{malformed}"], "not a readable model archive"),
    ],
)
def test_rejects_bad_input_with_a_usage_error(trained, data_dir, tmp_path, extra, message):
    (tmp_path / "malformed").write_text("{not json")
    (tmp_path / "bad_holdout.csv").write_text("tenure_months,plan\n1,basic\n")
    extra = [a.format(malformed=tmp_path / "malformed", bad_holdout=tmp_path / "bad_holdout.csv") for a in extra]
    args = ["--model", str(trained.model_dir), "--test", str(data_dir / "test"), "--output-dir", str(tmp_path / "out")]
    with pytest.raises(UsageError) as raised:
        evaluate.main([*args, *extra])
    assert message in str(raised.value)
    assert not (tmp_path / "out" / "evaluation.json").exists()
