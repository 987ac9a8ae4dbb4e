"""What train leaves for the rest of the flow: the serving code inside the model, and the held-out rows."""

from __future__ import annotations

import importlib.util
import json
import sys

from training_steps import CONTRACT, run_step


def test_model_dir_carries_the_serving_code(trained):
    code = trained.model_dir / "code"
    assert (code / "inference.py").read_text().startswith('"""Serving entry point')
    assert (code / "training" / "inference.py").is_file() and (code / "training" / "_deps.py").is_file()
    assert not (code / "training" / "sample").exists()


def test_serving_code_in_the_model_answers_a_request(trained):
    """The copied code alone (as /opt/ml/model/code in an isolated endpoint) loads the model and predicts."""
    sys.path.insert(0, str(trained.model_dir / "code"))
    try:
        spec = importlib.util.spec_from_file_location("served_entry", trained.model_dir / "code" / "inference.py")
        entry = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(entry)
        model = entry.model_fn(str(trained.model_dir))
        contract = json.loads(CONTRACT.read_text())
        header, first = (CONTRACT.parent / "churn.csv").read_text().splitlines()[:2]
        row = {k: v for k, v in zip(header.split(","), first.split(",")) if k != contract["target"]}
        body = entry.output_fn(entry.predict_fn(entry.input_fn(json.dumps({"instances": [row]}), "application/json"), model), "application/json")
        text = body[0] if isinstance(body, tuple) else body
        assert 0.0 <= json.loads(text)["predictions"][0]["probability"] <= 1.0
    finally:
        sys.path.remove(str(trained.model_dir / "code"))


def test_validation_split_is_left_for_evaluation(trained, tmp_path):
    holdout = trained.output_dir / "validation.csv"
    assert holdout.is_file()
    step = run_step(
        "evaluate",
        ["--model", str(trained.model_dir), "--test", str(trained.output_dir), "--output-dir", str(tmp_path)],
        {"MLOPS_CONTRACT": str(CONTRACT)},
        cwd=tmp_path,
    )
    assert step.returncode == 0, step.stderr
    evaluation = json.loads((tmp_path / "evaluation.json").read_text())
    assert evaluation["rows"] == sum(1 for _ in holdout.open()) - 1
