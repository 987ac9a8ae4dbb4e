"""The demand model's own tests: its entry points run as SageMaker runs them (processes, SM_* environment), and its
serving handlers called as the XGBoost image's Transformer calls them. Needs xgboost (the image's 3.2.0)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("xgboost")

HERE = Path(__file__).resolve().parents[1]
TIMEOUT = 300


def run(script: str, args: list[str], env: dict[str, str] | None = None, cwd: Path = HERE) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    return subprocess.run([sys.executable, str(HERE / script), *args], env={**clean, "OMP_NUM_THREADS": "1", **(env or {})},
                          cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module")
def channels(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("channels")
    done = run("preprocess.py", ["--input", str(HERE / "sample"), "--train-output", str(out / "train"),
                                 "--validation-output", str(out / "validation")])
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def model_dir(channels, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("job")
    env = {"SM_CHANNEL_TRAIN": str(channels / "train"), "SM_CHANNEL_VALIDATION": str(channels / "validation"),
           "SM_MODEL_DIR": str(root / "model"), "SM_OUTPUT_DATA_DIR": str(root / "output")}
    done = run("train.py", ["--num_round", "80", "--max_depth", "4"], env, cwd=root)
    assert done.returncode == 0, done.stderr
    return root / "model"


def test_preprocess_is_deterministic_and_keeps_the_contract_columns(channels, tmp_path):
    again = run("preprocess.py", ["--input", str(HERE / "sample"), "--train-output", str(tmp_path / "t"),
                                  "--validation-output", str(tmp_path / "v")])
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "t" / "part-0.csv").read_bytes() == (channels / "train" / "part-0.csv").read_bytes()
    contract = json.loads((HERE / "contract.json").read_text())
    assert (channels / "train" / "part-0.csv").read_text().splitlines()[0].split(",") == list(contract["columns"])


def test_preprocess_drops_rows_without_a_usable_label(tmp_path):
    raw = (HERE / "sample" / "demand.csv").read_text().splitlines()
    bad = [raw[0], *raw[1:201], "mall,1,10.0,3.0,false,false,", "mall,1,10.0,3.0,false,false,-4", raw[1]]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "raw.csv").write_text("\n".join(bad) + "\n")
    done = run("preprocess.py", ["--input", str(tmp_path / "in"), "--train-output", str(tmp_path / "t"), "--validation-output", str(tmp_path / "v")])
    assert done.returncode == 0, done.stderr
    assert "203 rows read, 2 without a usable label and 1 duplicates dropped" in done.stdout


def test_rejects_input_without_the_contract_columns(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "raw.csv").write_text("store_type,price\nmall,3.0\n")
    done = run("preprocess.py", ["--input", str(tmp_path / "in"), "--train-output", str(tmp_path / "t"), "--validation-output", str(tmp_path / "v")])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "columns ['day_of_week', 'temperature_c', 'promo', 'holiday', 'units_sold'] are missing" in done.stderr


def test_train_writes_the_model_metrics_and_evaluation(model_dir):
    training = json.loads((model_dir / "training.json").read_text())
    assert training["task"] == "regression" and training["metrics"]["validation"]["r2"] > 0.7, training
    evaluation = json.loads((model_dir.parent / "output" / "evaluation.json").read_text())
    assert set(evaluation["metrics"]) == {"rmse", "mae", "r2"} and evaluation["directions"]["mae"] == "lower"
    assert {p.name for p in (model_dir / "code").iterdir()} == {"inference.py", "features.py", "contract.json"}


def test_rejects_a_bad_hyperparameter(tmp_path):
    env = {"SM_CHANNEL_TRAIN": str(HERE / "sample"), "SM_MODEL_DIR": str(tmp_path / "m"), "SM_OUTPUT_DATA_DIR": str(tmp_path / "o")}
    done = run("train.py", ["--eta", "0"], env, cwd=tmp_path)
    assert done.returncode == 2 and "eta and subsample in (0, 1]" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def handlers(model_dir):
    """inference.py imported from the model's code/ directory, as the serving image imports it."""
    sys.path.insert(0, str(model_dir / "code"))
    try:
        for name in ("inference", "features"):
            sys.modules.pop(name, None)
        module = importlib.import_module("inference")
        yield module, module.model_fn(str(model_dir))
    finally:
        sys.path.remove(str(model_dir / "code"))
        for name in ("inference", "features"):
            sys.modules.pop(name, None)


def invoke(handlers, body: bytes, content_type: str, accept: str = "application/json"):
    module, model = handlers
    return module.output_fn(module.predict_fn(module.input_fn(body, content_type), model), accept)


def test_serves_a_value_per_csv_row_and_json_record(handlers):
    body, content_type = invoke(handlers, b"mall,5,20.0,3.5,true,false\ncity,1,,9.0,false,false\n", "text/csv")
    busy, quiet = (p["value"] for p in json.loads(body)["predictions"])
    assert content_type == "application/json" and busy > quiet > 0
    record = {"store_type": "mall", "day_of_week": 5, "temperature_c": 20.0, "price": 3.5, "promo": True, "holiday": False}
    body, _ = invoke(handlers, json.dumps({"instances": [record]}).encode(), "application/json")
    assert json.loads(body)["predictions"][0]["value"] == pytest.approx(busy)


@pytest.mark.parametrize(
    "body, content_type, message",
    [
        (b"mall,5,20.0\n", "text/csv", "row 1 has 3 values; expected 6"),
        (b"mall,9,20.0,3.5,true,false\n", "text/csv", "day_of_week must be an integer 0..6"),
        (b"mall,5,20.0,free,true,false\n", "text/csv", "price must be a number, got 'free'"),
        (b"a,b", "application/x-npy", "Content-Type 'application/x-npy' is not supported"),
    ],
)
def test_rejects_a_bad_request_naming_what_is_wrong(handlers, body, content_type, message):
    module, model = handlers
    rejected = module.predict_fn(module.input_fn(body, content_type), model)
    assert isinstance(rejected, module.Rejected) and message in rejected.message, rejected
    with pytest.raises(ValueError, match="not supported|expected|must"):
        module.output_fn(rejected, "application/json")
