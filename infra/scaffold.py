"""``mlops new model NAME``: a model directory that trains, serves and tests as it stands, for a framework and a task.

:func:`new_model` writes ``<out_dir>/<name>/``::

    README.md          what each file is, how to run it, and the config block to paste into the stack's YAML
    config.yaml        that config block (the model's entry under ``mlops:models``)
    contract.json      the data contract (training.contract.DataContract, with the task)
    features.py        contract columns -> model matrix, shared by training and serving
    train.py           the train entry point, SageMaker script mode (SM_CHANNEL_*, SM_MODEL_DIR, --hyperparameters)
    inference.py       model_fn / input_fn / predict_fn / output_fn for the framework image's serving stack
    requirements.txt   what the code imports, pinned to the framework image's own versions
    sample/data.csv    deterministic sample data that meets the contract
    tests/test_<name>.py   runs train.py on the sample and calls the serving handlers

Frameworks: ``sklearn`` (SageMaker scikit-learn 1.9-0 image: HistGradientBoosting) and ``xgboost`` (SageMaker XGBoost
3.2-0 image: ``xgboost.train``). Tasks: ``binary``, ``multiclass``, ``regression`` (training.metric_names). Plain
functions only: the CLI registers the command.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from string import Template

import numpy as np

from infra.errors import UserError
from training.metric_names import EVALUATION_METRICS, HIGHER_IS_BETTER, TASKS

FRAMEWORKS = {"sklearn": "1.9-0", "xgboost": "3.2-0"}
"""Framework -> the SageMaker image version the generated code is written for (sagemaker image_uris resolves it)."""
REQUIREMENTS = {
    "sklearn": ["scikit-learn==1.9.0", "numpy==2.5.1", "pandas==2.2.3", "joblib"],
    "xgboost": ["xgboost==3.2.0", "scikit-learn==1.8.0", "numpy==2.1.0", "pandas==2.2.3"],
}
IMAGE_PACKAGES = {"sklearn": [], "xgboost": [r.split("==")[0] for r in REQUIREMENTS["xgboost"]]}
"""Requirements the framework's image already has at those pins: listed as the model's ``image_packages`` (not vendored;
the XGBoost image's wheels are not on PyPI for its platform, so they cannot be). The scikit-learn image's are vendored."""
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
TARGETS = {"binary": "converted", "multiclass": "tier", "regression": "revenue"}
GATE = {"binary": ("roc_auc", 0.7), "multiclass": ("f1_macro", 0.5), "regression": ("r2", 0.5)}
SAMPLE_ROWS = 400
_SCAFFOLD_METRICS = frozenset({"roc_auc", "accuracy", "f1", "log_loss", "f1_macro", "roc_auc_ovr", "rmse", "mae", "r2"})
"""The metrics the generated train.py computes (the built-in recipe's, less binary precision and recall)."""


class ScaffoldError(UserError, ValueError):
    """A request the scaffold cannot honour; the message names the value and what is accepted."""


def contract_for(task: str) -> dict:
    target = TARGETS[task]
    spec = {"binary": {"type": "int", "min": 0, "max": 1}, "multiclass": {"type": "int", "min": 0, "max": 2},
            "regression": {"type": "float", "min": 0}}[task]
    return {
        "task": task,
        "target": target,
        "min_rows": 100,
        "columns": {
            "amount": {"type": "float", "min": 0, "max": 1000, "max_null_rate": 0.05},
            "visits": {"type": "int", "min": 0, "max": 50},
            "channel": {"type": "category", "allowed": ["web", "store", "phone"]},
            "member": {"type": "bool"},
            target: spec,
        },
    }


def sample_csv(task: str, rows: int = SAMPLE_ROWS, seed: int = 0) -> str:
    """Deterministic sample rows that meet :func:`contract_for` (the same seed always gives the same text)."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.gamma(2.0, 60.0, rows).clip(0, 1000), 2)
    visits = rng.integers(0, 30, rows)
    channel = rng.choice(["web", "store", "phone"], rows, p=[0.5, 0.3, 0.2])
    member = rng.random(rows) < 0.4
    signal = 0.012 * amount + 0.15 * visits + np.where(member, 1.0, 0.0) + np.where(channel == "web", 0.5, 0.0)
    noisy = signal + rng.normal(0, 0.6, rows)
    if task == "binary":
        target = (noisy > np.median(noisy)).astype(int).astype(str)
    elif task == "multiclass":
        target = np.digitize(noisy, np.quantile(noisy, [1 / 3, 2 / 3])).astype(str)
    else:
        target = np.char.mod("%.2f", np.maximum(0.0, 20.0 * noisy + 5.0))
    missing = rng.random(rows) < 0.02
    lines = [",".join(contract_for(task)["columns"])]
    for i in range(rows):
        cells = ["" if missing[i] else f"{amount[i]:.2f}", str(visits[i]), channel[i], "true" if member[i] else "false", target[i]]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Templates ($-placeholders; the generated code has no $ of its own)

FEATURES = '''"""$name's features: the contract's columns -> the numeric matrix the model takes (training and serving)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
TRUE, FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def load_contract(directory=HERE):
    return json.loads((Path(directory) / "contract.json").read_text(encoding="utf-8"))


def raw_features(contract):
    """The feature columns in contract order (the column order of CSV requests)."""
    return [name for name in contract["columns"] if name != contract["target"]]


def feature_names(contract):
    names = []
    for name in raw_features(contract):
        spec = contract["columns"][name]
        names += [f"{name}_{c}" for c in spec["allowed"]] if spec["type"] == "category" else [name]
    return names


def transform(frame, contract):
    """The model matrix of rows holding the contract's features; ValueError names a value it cannot read."""
    columns = []
    for name in raw_features(contract):
        if name not in frame.columns:
            raise ValueError(f"column {name!r} is missing; expected {', '.join(raw_features(contract))}")
        spec, values = contract["columns"][name], frame[name]
        if spec["type"] == "category":
            text = values.astype(str).str.strip()
            unknown = sorted(set(text) - set(spec["allowed"]))
            if unknown:
                raise ValueError(f"{name} {unknown[0]!r} is not one of {', '.join(spec['allowed'])}")
            columns += [(text == c).to_numpy(dtype=np.float64) for c in spec["allowed"]]
        elif spec["type"] == "bool":
            def one(v, name=name):
                t = str(v).strip().lower()
                if t in TRUE:
                    return 1.0
                if t in FALSE:
                    return 0.0
                raise ValueError(f"{name} must be true or false, got {v!r}")
            columns.append(np.array([one(v) for v in values], dtype=np.float64))
        else:
            blank = values.isna() | (values.astype(str).str.strip() == "")
            numbers = pd.to_numeric(values.where(~blank), errors="coerce")
            bad = numbers.isna() & ~blank
            if bad.any():
                raise ValueError(f"{name} must be a number, got {values[bad].iloc[0]!r}")
            if blank.any() and spec.get("max_null_rate", 0) == 0:
                raise ValueError(f"{name} is missing; every row needs it")
            columns.append(numbers.to_numpy(dtype=np.float64))
    return np.column_stack(columns)
'''

BACKENDS = {
    "sklearn": {
        "imports": "import joblib\nfrom sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor",
        "model_file": "model.joblib",
        "arguments": '''    parser.add_argument("--max_iter", type=int, default=100, help="boosting iterations (default 100)")
    parser.add_argument("--learning_rate", type=float, default=0.1, help="shrinkage per tree (default 0.1)")''',
        "check": '''    if args.max_iter < 1 or not 0 < args.learning_rate <= 1:
        raise UsageError("max_iter must be at least 1 and learning_rate in (0, 1]")''',
        "fit": '''def fit(args, x, y, names, classes):
    estimator = HistGradientBoostingRegressor if TASK == "regression" else HistGradientBoostingClassifier
    return estimator(max_iter=args.max_iter, learning_rate=args.learning_rate, random_state=args.seed).fit(x, y)


def save(model, path):
    joblib.dump(model, path)''',
        "load": '''def load(path):
    return joblib.load(path)''',
        "predict": '''def scores(model, x, names):
    """P(label = 1) (binary), class probabilities (multiclass) or values (regression)."""
    if TASK == "binary":
        return model.predict_proba(x)[:, 1]
    if TASK == "multiclass":
        return model.predict_proba(x)
    return model.predict(x)''',
    },
    "xgboost": {
        "imports": "import xgboost as xgb",
        "model_file": "xgboost-model.json",
        "arguments": '''    parser.add_argument("--num_round", type=int, default=100, help="boosting rounds (default 100)")
    parser.add_argument("--max_depth", type=int, default=4, help="largest tree depth (default 4)")
    parser.add_argument("--eta", type=float, default=0.1, help="learning rate (default 0.1)")''',
        "check": '''    if args.num_round < 1 or args.max_depth < 1 or not 0 < args.eta <= 1:
        raise UsageError("num_round and max_depth must be at least 1 and eta in (0, 1]")''',
        "fit": '''def fit(args, x, y, names, classes):
    objective = {"binary": "binary:logistic", "multiclass": "multi:softprob", "regression": "reg:squarederror"}[TASK]
    params = {"objective": objective, "max_depth": args.max_depth, "eta": args.eta, "seed": args.seed, "nthread": 1}
    if TASK == "multiclass":
        params["num_class"] = len(classes)
    return xgb.train(params, xgb.DMatrix(x, label=y, feature_names=names), num_boost_round=args.num_round)


def save(model, path):
    model.save_model(path)''',
        "load": '''def load(path):
    booster = xgb.Booster()
    booster.load_model(path)
    booster.set_param({"nthread": 1})
    return booster''',
        "predict": '''def scores(model, x, names):
    """P(label = 1) (binary), class probabilities (multiclass) or values (regression)."""
    return model.predict(xgb.DMatrix(x, feature_names=names))''',
    },
}

TRAIN = '''"""Train $name ($framework, $task), in SageMaker script mode.

The SageMaker $framework_title image runs it as the user entry point, hyperparameters as ``--name value``;
locally give the same environment::

    SM_CHANNEL_TRAIN=sample SM_MODEL_DIR=out/model SM_OUTPUT_DATA_DIR=out/data python train.py

Channels: ``train`` (required), ``validation`` (optional; else ``--validation_fraction`` of the rows is held out),
CSV files with a header and the contract's columns. Prints ``train:<metric>=<value>`` and
``validation:<metric>=<value>`` lines; writes the model, ``contract.json`` and ``code/`` (the serving code) to the
model directory and ``evaluation.json`` (the platform's contract, training/README.md) to the output data directory.
Exit codes: 0 trained; 2 usage error.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as sk
$imports

from features import HERE, feature_names, load_contract, transform

TASK = "$task"
MODEL_FILE = "$model_file"
SERVING_FILES = ("inference.py", "features.py", "contract.json")
DIRECTIONS = $directions


class UsageError(Exception):
    pass


$fit


def evaluate(y, score, classes):
    if TASK == "binary":
        predicted = (score >= 0.5).astype(int)
        return {"roc_auc": sk.roc_auc_score(y, score), "accuracy": sk.accuracy_score(y, predicted),
                "f1": sk.f1_score(y, predicted, zero_division=0), "log_loss": sk.log_loss(y, score, labels=[0, 1])}
    if TASK == "multiclass":
        predicted = np.asarray(classes)[np.argmax(score, axis=1)]
        return {"accuracy": sk.accuracy_score(y, predicted),
                "f1_macro": sk.f1_score(y, predicted, average="macro", labels=classes, zero_division=0),
                "log_loss": sk.log_loss(y, score, labels=classes),
                "roc_auc_ovr": sk.roc_auc_score(y, score, multi_class="ovr", average="macro", labels=classes)}
    return {"rmse": float(np.sqrt(sk.mean_squared_error(y, score))), "mae": sk.mean_absolute_error(y, score),
            "r2": sk.r2_score(y, score)}


$predict


def parse(argv):
    parser = argparse.ArgumentParser(prog="train.py", description="Train $name.")
$arguments
    parser.add_argument("--validation_fraction", type=float, default=0.2, help="held out without a validation channel")
    parser.add_argument("--seed", type=int, default=0, help="seed of the hold-out split and the model")
    args = parser.parse_args(argv)
$check
    if not 0.05 <= args.validation_fraction <= 0.5:
        raise UsageError(f"validation_fraction {args.validation_fraction} is outside 0.05..0.5")
    return args


def read(path, contract):
    files = sorted(Path(path).rglob("*.csv")) if Path(path).is_dir() else [Path(path)]
    if not files or not all(f.is_file() for f in files):
        raise UsageError(f"no CSV files in {path}")
    frame = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)
    if contract["target"] not in frame.columns:
        raise UsageError(f"{path}: no {contract['target']!r} column (the label)")
    try:
        x = transform(frame, contract)
    except ValueError as e:
        raise UsageError(f"{path}: {e}") from None
    y = pd.to_numeric(frame[contract["target"]]).to_numpy()
    return x, (y.astype(np.float64) if TASK == "regression" else y.astype(np.int64))


def environment(name):
    value = os.environ.get(name)
    if not value:
        raise UsageError(f"{name} is not set (the SageMaker job sets it; locally, export it)")
    return Path(value)


def main(argv):
    args = parse(argv)
    contract = load_contract()
    x, y = read(environment("SM_CHANNEL_TRAIN"), contract)
    validation = os.environ.get("SM_CHANNEL_VALIDATION")
    if validation and Path(validation).exists():
        x_valid, y_valid = read(validation, contract)
    else:
        order = np.random.default_rng(args.seed).permutation(len(y))
        held = order[: int(round(len(y) * args.validation_fraction))]
        keep = np.setdiff1d(order, held)
        x, y, x_valid, y_valid = x[keep], y[keep], x[held], y[held]
    spec = contract["columns"][contract["target"]]
    classes = list(range(int(spec["max"]) + 1)) if TASK == "multiclass" else [0, 1]
    names = feature_names(contract)
    model = fit(args, x, y, names, classes)
    results = {"train": evaluate(y, scores(model, x, names), classes), "validation": evaluate(y_valid, scores(model, x_valid, names), classes)}
    for split, values in results.items():
        for metric, value in values.items():
            print(f"{split}:{metric}={float(value):.6f}", flush=True)
    model_dir, output_dir = environment("SM_MODEL_DIR"), environment("SM_OUTPUT_DATA_DIR")
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    save(model, model_dir / MODEL_FILE)
    for name in SERVING_FILES:
        shutil.copy2(HERE / name, model_dir / "code" / name)
    shutil.copy2(HERE / "contract.json", model_dir / "contract.json")
    output_dir.mkdir(parents=True, exist_ok=True)
    evaluation = {"format": "mlops-evaluation/1", "task": TASK, "rows": int(len(y_valid)),
                  "metrics": {k: float(v) for k, v in results["validation"].items()}, "directions": DIRECTIONS}
    (output_dir / "evaluation.json").write_text(json.dumps(evaluation, indent=2) + "\\n")
    print(f"train: model written to {model_dir}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except UsageError as e:
        print(f"train: {e}", file=sys.stderr)
        sys.exit(2)
'''

INFERENCE = '''"""$name's serving handlers (SAGEMAKER_PROGRAM=inference.py, SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code).

Requests: text/csv (one row per line, no header, the contract's features in order) or application/json
(``{"instances": [{feature: value}, ...]}``, a list of records, or one record). Response (application/json), the
platform's $task output: $response
A request the model cannot read is answered 400 (415 for another Content-Type, 406 for another Accept) naming what
is wrong: input_fn and predict_fn hand it on to output_fn, since the serving stack turns a raised error into a 500.
"""

import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
$imports

from features import feature_names, load_contract, raw_features, transform

TASK = "$task"
MODEL_FILE = "$model_file"
CSV, JSON = "text/csv", "application/json"


class Rejected:
    def __init__(self, status, message):
        self.status, self.message = status, message


$load


$predict


def model_fn(model_dir):
    return {"model": load(Path(model_dir) / MODEL_FILE), "contract": load_contract(model_dir)}


def _frame(body, content_type, features):
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in (CSV, JSON):
        raise LookupError(f"Content-Type {content_type!r} is not supported; send {CSV} or {JSON}")
    text = bytes(body).decode("utf-8") if isinstance(body, (bytes, bytearray, memoryview)) else str(body)
    if not text.strip():
        raise ValueError("the body is empty; send at least one row")
    if media == CSV:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
        for i, row in enumerate(rows, 1):
            if len(row) != len(features):
                raise ValueError(f"row {i} has {len(row)} values; expected {len(features)}: {', '.join(features)}")
        return pd.DataFrame(rows, columns=features)
    document = json.loads(text)
    records = document.get("instances", [document]) if isinstance(document, dict) else document
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) and set(r) == set(features) for r in records):
        raise ValueError(f"send records with exactly the features {', '.join(features)}")
    return pd.DataFrame.from_records(records, columns=features)


def input_fn(request_body, content_type):
    try:
        return _frame(request_body, content_type, raw_features(load_contract(Path(__file__).resolve().parent)))
    except LookupError as e:
        return Rejected(415, str(e))
    except (ValueError, UnicodeDecodeError) as e:
        return Rejected(400, str(e))


def predict_fn(data, model):
    if isinstance(data, Rejected):
        return data
    contract = model["contract"]
    try:
        x = transform(data, contract)
    except ValueError as e:
        return Rejected(400, str(e))
    score = np.asarray(scores(model["model"], x, feature_names(contract)))
    if TASK == "binary":
        return [{"label": int(p >= 0.5), "probability": float(p)} for p in score]
    if TASK == "multiclass":
        return [{"label": int(np.argmax(row)), "probabilities": {str(c): float(p) for c, p in enumerate(row)}} for row in score]
    return [{"value": float(v)} for v in score]


def output_fn(prediction, accept):
    wanted = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    if accept and accept.strip() and not any(w in (JSON, "application/*", "*/*") for w in wanted):
        prediction = Rejected(406, f"Accept {accept!r} is not supported; this model answers {JSON}")
    if not isinstance(prediction, Rejected):
        return json.dumps({"predictions": prediction}), JSON
    body = json.dumps({"error": prediction.message, "status": prediction.status})
    flask = sys.modules.get("flask")
    if flask is not None and flask.has_request_context():
        return flask.Response(body, status=prediction.status, mimetype=JSON)
    raise ValueError(prediction.message)
'''

TEST = '''"""$name's own tests: train.py on the sample data as SageMaker runs it, then the serving handlers on its model."""

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("job")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SM_")}, "OMP_NUM_THREADS": "1",
           "SM_CHANNEL_TRAIN": str(HERE / "sample"), "SM_MODEL_DIR": str(root / "model"), "SM_OUTPUT_DATA_DIR": str(root / "data")}
    done = subprocess.run([sys.executable, str(HERE / "train.py")], env=env, cwd=root, capture_output=True, text=True, timeout=300)
    (root / "train.log").write_text(done.stdout)  # what the job prints: SageMaker reads its metrics from these lines
    assert done.returncode == 0, done.stderr
    return root / "model"


def test_train_writes_the_model_and_its_evaluation(model_dir):
    evaluation = json.loads((model_dir.parent / "data" / "evaluation.json").read_text())
    assert evaluation["task"] == "$task" and set(evaluation["metrics"]) == set(evaluation["directions"])
    assert evaluation["metrics"]["$gate_metric"] $gate_relation $gate_minimum, evaluation


@pytest.fixture(scope="module")
def handlers(model_dir):
    sys.path.insert(0, str(model_dir / "code"))
    for name in ("inference", "features"):
        sys.modules.pop(name, None)
    module = importlib.import_module("inference")
    yield module, module.model_fn(str(model_dir))
    sys.path.remove(str(model_dir / "code"))
    for name in ("inference", "features"):
        sys.modules.pop(name, None)


def test_serves_one_prediction_per_row(handlers):
    module, model = handlers
    body, content_type = module.output_fn(module.predict_fn(module.input_fn(b"$row1\\n$row2\\n", "text/csv"), model), "application/json")
    predictions = json.loads(body)["predictions"]
    assert content_type == "application/json" and len(predictions) == 2
    assert all(set(p) == $keys for p in predictions), predictions


def test_rejects_a_category_it_does_not_know(handlers):
    module, model = handlers
    rejected = module.predict_fn(module.input_fn(b"10.0,3,fax,true\\n", "text/csv"), model)
    assert rejected.status == 400 and "channel 'fax' is not one of web, store, phone" in rejected.message
'''

CONFIG = '''# The model's entry under mlops:models in stacks/Pulumi.<stack>.yaml (paste it there; paths are relative to the
# project root). Key names as issue 14's model config defines them.
$name:
  description: $description
  data_contract: $source/contract.json
  source: $source
  framework: {name: $framework, version: "$version"}
  entry_points: {train: train.py, inference: inference.py}
$image_packages  training:
    hyperparameters: $hyperparameters
  gate: {metric: $gate_metric, direction: $gate_direction, threshold: $gate_minimum, max_regression: 0.02}
'''

README = '''# $name

A $task model on the $framework_title framework (SageMaker image version $version), scaffolded by
`mlops new model $name --framework $framework --task $task`. It trains and serves as it stands:

    SM_CHANNEL_TRAIN=sample SM_MODEL_DIR=out/model SM_OUTPUT_DATA_DIR=out/data python train.py
    python -m pytest tests

| File | What it is |
|---|---|
| `contract.json` | the data contract: columns, types, ranges, the target and the task |
| `features.py` | contract columns -> model matrix, shared by `train.py` and `inference.py` |
| `train.py` | the train entry point (SageMaker script mode); writes `evaluation.json` in the platform's contract |
| `inference.py` | `model_fn` / `input_fn` / `predict_fn` / `output_fn` for the image's serving stack |
| `requirements.txt` | what the code imports, pinned to the image's own versions |
| `sample/data.csv` | deterministic sample data that meets the contract |
| `tests/` | trains on the sample and calls the serving handlers |

Replace the sample with your data, the contract with its columns, and the model in `train.py` with yours; keep the
entry points' contracts (metric lines, `evaluation.json`, the response shape). The stack's config block is in
`config.yaml`:

```yaml
$config```

Pasted there, `mlops validate --stack <stack>` checks it and `mlops train --stack <stack> --model $name` runs its
entry points on this machine (the platform's validation and baseline, `train.py` in script mode on `sample/`, the gate).
'''

RESPONSES = {
    "binary": '``{"predictions": [{"label": 0 | 1, "probability": P(label = 1)}, ...]}``.',
    "multiclass": '``{"predictions": [{"label": <class>, "probabilities": {"0": p, "1": p, ...}}, ...]}``.',
    "regression": '``{"predictions": [{"value": <number>}, ...]}``.',
}
KEYS = {"binary": '{"label", "probability"}', "multiclass": '{"label", "probabilities"}', "regression": '{"value"}'}
HYPERPARAMETERS = {"sklearn": '{max_iter: 100, learning_rate: 0.1}', "xgboost": '{num_round: 100, max_depth: 4, eta: 0.1}'}


def _check(name: str, framework: str, task: str) -> None:
    if not NAME_PATTERN.match(name) or not 2 <= len(name) <= 24:
        raise ScaffoldError(
            f"model name {name!r} is not accepted: 2..24 characters of lowercase letters, digits and hyphens, "
            "starting with a letter and not ending with a hyphen (e.g. demand-forecast)"
        )
    if framework not in FRAMEWORKS:
        raise ScaffoldError(f"framework {framework!r} is not accepted; accepted: {', '.join(FRAMEWORKS)}")
    if task not in TASKS:
        raise ScaffoldError(f"task {task!r} is not accepted; accepted: {', '.join(TASKS)}")


def new_model(name: str, framework: str = "sklearn", task: str = "binary", out_dir: Path | str = "models") -> Path:
    """Write the model directory ``<out_dir>/<name>/`` and return its path; refuses a directory that exists."""
    _check(name, framework, task)
    target = Path(out_dir) / name
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or --out directory (nothing was written)")
    backend = BACKENDS[framework]
    gate_metric, gate_minimum = GATE[task]
    higher = HIGHER_IS_BETTER[gate_metric]
    contract = contract_for(task)
    lines = sample_csv(task).splitlines()
    values = {
        "name": name, "framework": framework, "framework_title": {"sklearn": "scikit-learn", "xgboost": "XGBoost"}[framework],
        "task": task, "version": FRAMEWORKS[framework], "model_file": backend["model_file"], "imports": backend["imports"],
        "directions": repr({m: "higher" if HIGHER_IS_BETTER[m] else "lower" for m in EVALUATION_METRICS[task] if m in _SCAFFOLD_METRICS}),
        "fit": backend["fit"], "load": backend["load"], "predict": backend["predict"], "arguments": backend["arguments"],
        "check": backend["check"], "response": RESPONSES[task], "keys": KEYS[task],
        "gate_metric": gate_metric, "gate_minimum": gate_minimum, "gate_relation": ">=" if higher else "<=",
        "gate_direction": "higher" if higher else "lower", "row1": ",".join(lines[1].split(",")[:-1]),
        "row2": ",".join(lines[2].split(",")[:-1]), "source": target.as_posix(),
        "description": f"A {task} model ({framework}); describe what it predicts.", "hyperparameters": HYPERPARAMETERS[framework],
        "image_packages": f"  image_packages: [{', '.join(IMAGE_PACKAGES[framework])}]\n" if IMAGE_PACKAGES[framework] else "",
    }
    config = Template(CONFIG).substitute(values)
    files = {
        "contract.json": json.dumps(contract, indent=2) + "\n",
        "features.py": Template(FEATURES).substitute(values),
        "train.py": Template(TRAIN).substitute(values),
        "inference.py": Template(INFERENCE).substitute(values),
        "requirements.txt": "".join(f"{r}\n" for r in REQUIREMENTS[framework]),
        "sample/data.csv": "\n".join(lines) + "\n",
        f"tests/test_{name.replace('-', '_')}.py": Template(TEST).substitute(values),
        "config.yaml": config,
        "README.md": Template(README).substitute({**values, "config": config}),
    }
    for relative, text in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
