"""``mlops train``: validate → train → evaluate on this machine, through the very entry points and
environment contract the SageMaker containers use.

Each step is ``python -m training.<step>`` in a subprocess with the ``SM_*`` variables a container
would set, pointed at a folder laid out like ``/opt/ml``. Nothing is imported in-process, so a
step that works here works the same way in the container (and fails the same way).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from components.code.paths import package_source
from infra.config import ModelConfig
from infra.errors import UserError

TRAINING = package_source("training")
SAMPLE_DATA = TRAINING / "sample" / "churn.csv"
SAMPLE_CONTRACT = TRAINING / "sample" / "contract.json"
METRIC_LINE = re.compile(r"^(?P<split>[a-z]+):(?P<name>[a-z_0-9]+)=(?P<value>-?[0-9.eE+-]+|nan|inf)$")


class LocalRunError(UserError):
    """A user-facing problem with the local run's inputs."""


@dataclass
class StepResult:
    name: str
    returncode: int
    seconds: float
    log: Path
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


@dataclass
class LocalRun:
    workdir: Path
    steps: list[StepResult] = field(default_factory=list)
    evaluation: dict | None = None

    @property
    def passed(self) -> bool:
        return all(s.ok for s in self.steps) and bool(self.evaluation) and self.evaluation.get("verdict") == "pass"


def default_data(model: ModelConfig) -> Path:
    """The shipped sample dataset, when the model uses the sample contract; otherwise the user must say."""
    sample = json.loads(SAMPLE_CONTRACT.read_text())
    if model.data_contract.model_dump(mode="json") == type(model.data_contract).model_validate(sample).model_dump(mode="json"):
        return SAMPLE_DATA
    raise LocalRunError("this model does not use the sample contract, so there is no default dataset; give --data PATH")


def _copy_into(src: Path, channel: Path) -> None:
    channel.mkdir(parents=True, exist_ok=True)
    if src.is_file():
        shutil.copy2(src, channel / src.name)
    elif src.is_dir():
        shutil.copytree(src, channel, dirs_exist_ok=True)
    else:
        raise LocalRunError(f"{src} does not exist; give a CSV file or a directory of CSV files")


def _split_holdout(data: Path, train_dir: Path, test_dir: Path, fraction: float, seed: int) -> None:
    """Without a --test set, hold out a seeded share of the rows (the CT flow gets ``<model>/test/`` instead)."""
    import pandas as pd

    if not data.exists():
        raise LocalRunError(f"{data} does not exist; give a CSV file or a directory of CSV files")
    files = [data] if data.is_file() else sorted(p for p in data.rglob("*.csv*") if p.is_file())
    if not files:
        raise LocalRunError(f"{data} holds no CSV files; give a CSV file or a directory of CSV files")
    try:
        frame = pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise LocalRunError(f"{data} is not readable as CSV: {e}") from None
    test = frame.sample(frac=fraction, random_state=seed)
    train_dir.mkdir(parents=True, exist_ok=True)
    test_dir.mkdir(parents=True, exist_ok=True)
    frame.drop(test.index).to_csv(train_dir / "train.csv", index=False)
    test.to_csv(test_dir / "test.csv", index=False)


def _metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        m = METRIC_LINE.match(line.strip())
        if m:
            out[f"{m['split']}:{m['name']}"] = float(m["value"])
    return out


def run_local(
    model_name: str,
    model: ModelConfig,
    *,
    data: Path | None,
    test: Path | None,
    workdir: Path,
    production_metrics: Path | None = None,
    on_step: Callable[[str, str], None] = lambda step, state: None,
) -> LocalRun:
    """Run the three steps; stops after the first step that does not succeed."""
    if not model.builtin:
        raise LocalRunError(
            f"model {model_name!r} runs its own code ({model.source}); mlops train runs the built-in recipe's steps only "
            "for now: run its entry points in its framework's environment (see the model's own README)"
        )
    data = data or default_data(model)
    if workdir.exists() and any(workdir.iterdir()):
        raise LocalRunError(f"{workdir} is not empty; give a new --out folder")
    ml = workdir / "opt" / "ml"
    channels = ml / "input" / "data"
    contract = ml / "input" / "config" / "contract.json"
    contract.parent.mkdir(parents=True)
    contract.write_text(model.data_contract.model_dump_json(indent=2))
    if test is not None:
        _copy_into(data, channels / "train")
        _copy_into(test, channels / "test")
    else:
        _split_holdout(data, channels / "train", channels / "test", 0.2, model.training.hyperparameters.random_state)

    model_dir, output_dir, evaluation_dir = ml / "model", ml / "output" / "data", ml / "output" / "evaluation"
    for d in (model_dir, output_dir, evaluation_dir):
        d.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SM_CHANNEL_TRAIN": str(channels / "train"),
        "SM_CHANNEL_TEST": str(channels / "test"),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir),
        "MLOPS_CONTRACT": str(contract),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TRAINING.parent), os.environ.get("PYTHONPATH")])),
    }
    failure = ml / "output" / "failure"
    evaluate_args = [
        "--model", str(model_dir), "--test", str(channels / "test"), "--output-dir", str(evaluation_dir),
        *model.evaluation_args(),  # the gate (or the deprecated evaluation rule), as the CT flow's Evaluate gets it
    ]
    if production_metrics is not None:
        evaluate_args += ["--baseline-metrics", str(production_metrics)]
    steps = [
        ("validate", ["--data", str(channels / "train"), "--output-dir", str(output_dir), "--failure-file", str(failure)]),
        ("train", model.training.hyperparameters.to_cli_args()),
        ("evaluate", evaluate_args),
    ]
    run = LocalRun(workdir)
    for step, args in steps:
        on_step(step, "running")
        log = workdir / f"{step}.log"
        started = time.perf_counter()
        with log.open("w") as fh:
            proc = subprocess.run([sys.executable, "-m", f"training.{step}", *args], env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=workdir)
        result = StepResult(step, proc.returncode, time.perf_counter() - started, log, _metrics(log.read_text()))
        run.steps.append(result)
        on_step(step, "done" if result.ok else "failed")
        if not result.ok:
            return run
    run.evaluation = json.loads((evaluation_dir / "evaluation.json").read_text())
    return run
