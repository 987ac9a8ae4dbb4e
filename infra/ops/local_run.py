"""``mlops train``: validate → train → evaluate on this machine, through the very entry points and
environment contract the SageMaker containers use.

Each step is ``python -m training.<step>`` in a subprocess with the ``SM_*`` variables a container
would set, pointed at a folder laid out like ``/opt/ml``. Nothing is imported in-process, so a
step that works here works the same way in the container (and fails the same way).

A model with its own code (``source``) runs the CT flow's steps for it (components/pipeline/definition.py):
the platform's contract validation, the model's ``preprocess`` (when it has one) with the processing job's paths
mapped into the run folder, the platform's baseline statistics of the training channel, the model's ``train`` in
script mode (``SM_*`` variables, hyperparameters as ``--key value`` the way the SageMaker training toolkit passes
them), then the gate: the model's ``evaluate``, or the platform's judge of the evaluation.json its train wrote.
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
from components.pipeline.definition import BASELINE_SCRIPT
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


OWN_SAMPLE = "sample"
"""A model's own sample data: the ``sample/`` directory of its source (``mlops new model`` writes one; so does demand)."""


def step_names(model: ModelConfig) -> list[str]:
    """The steps :func:`run_local` runs for ``model``, in order."""
    if model.builtin:
        return ["validate", "train", "evaluate"]
    return ["validate", *(["preprocess"] if model.entry.preprocess else []), "baseline", "train", "evaluate"]


def _decoded(value: str) -> object:
    try:
        return json.loads(value)
    except ValueError:
        return value


def script_mode_args(hyperparameters: dict[str, str]) -> list[str]:
    """The training job's HyperParameters as the SageMaker training toolkit hands them to the entry point: each value
    JSON-decoded where it parses, then ``--key str(value)`` in key order (``-k`` for a one-letter key)."""
    args: list[str] = []
    for key in sorted(hyperparameters):
        value = _decoded(hyperparameters[key])
        if isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        args += [f"-{key}" if len(key) == 1 else f"--{key}", str(value)]
    return args


def _own_entry(model_name: str, model: ModelConfig, step: str) -> str | None:
    script = getattr(model.entry, step)
    if script is not None and not (model.source_dir / script).is_file():
        raise LocalRunError(
            f"model {model_name!r}: entry_points.{step} {script!r} is not a file in {model.source}; "
            "give a path relative to the source directory"
        )
    return script


def _run_step(run: LocalRun, step: str, command: list[str], env: dict[str, str], cwd: Path,
              on_step: Callable[[str, str], None]) -> bool:
    on_step(step, "running")
    log = run.workdir / f"{step}.log"
    started = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(command, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd)
    result = StepResult(step, proc.returncode, time.perf_counter() - started, log, _metrics(log.read_text()))
    run.steps.append(result)
    on_step(step, "done" if result.ok else "failed")
    return result.ok


def run_own_code(
    model_name: str,
    model: ModelConfig,
    *,
    data: Path | None,
    test: Path | None,
    workdir: Path,
    production_metrics: Path | None = None,
    on_step: Callable[[str, str], None] = lambda step, state: None,
) -> LocalRun:
    """A model with its own code, step by step as its CT flow runs it; stops after the first step that fails."""
    train_script = _own_entry(model_name, model, "train")
    preprocess, evaluate = _own_entry(model_name, model, "preprocess"), _own_entry(model_name, model, "evaluate")
    assert train_script is not None
    if data is None:
        data = model.source_dir / OWN_SAMPLE
        if not data.is_dir():
            raise LocalRunError(f"model {model_name!r} has no sample data ({model.source}/{OWN_SAMPLE}/ does not exist); give --data PATH")
    if test is not None and evaluate is None:
        raise LocalRunError(
            f"--test is not accepted for model {model_name!r}: it has no evaluate entry point, so the platform judges the "
            "metrics its train reported (evaluation.json); leave --test out, or give entry_points.evaluate"
        )
    if workdir.exists() and any(workdir.iterdir()):
        raise LocalRunError(f"{workdir} is not empty; give a new --out folder")
    ml = workdir / "opt" / "ml"
    processing, channels = ml / "processing", ml / "input" / "data"
    contract = ml / "input" / "config" / "contract.json"
    contract.parent.mkdir(parents=True)
    contract.write_text(model.data_contract.model_dump_json(indent=2))
    raw = processing / "input" / "data"
    _copy_into(data, raw)
    # The package's content (what the jobs unpack into their code directory), not the source tree in place.
    code = ml / "code"
    shutil.copytree(model.source_dir, code, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
    model_dir, output_dir, evaluation_dir = ml / "model", ml / "output" / "data", ml / "output" / "evaluation"
    baseline_dir, validate_dir = processing / "baseline", processing / "validate"
    for d in (model_dir, output_dir, evaluation_dir, baseline_dir, validate_dir):
        d.mkdir(parents=True, exist_ok=True)
    # The model's steps see their own code only (cwd: its code directory); the platform's steps import training/.
    model_env = {**{k: v for k, v in os.environ.items() if not k.startswith("SM_")}, "MLOPS_CONTRACT": str(contract), "MLOPS_MODEL": model_name}
    platform_env = {**model_env, "PYTHONPATH": os.pathsep.join(filter(None, [str(TRAINING.parent), os.environ.get("PYTHONPATH")]))}
    run = LocalRun(workdir)
    python = sys.executable

    if not _run_step(run, "validate", [python, "-m", "training.validate", "--data", str(raw), "--contract", str(contract),
                                       "--output-dir", str(validate_dir), "--failure-file", str(ml / "output" / "failure")],
                     platform_env, workdir, on_step):
        return run
    train_channel, validation_channel = channels / "train", None
    if preprocess is not None:
        outputs = processing / "output"
        if not _run_step(run, "preprocess", [python, preprocess, "--input", str(raw), "--train-output", str(outputs / "train"),
                                             "--validation-output", str(outputs / "validation")], model_env, code, on_step):
            return run
        _copy_into(outputs / "train", train_channel)
        validation_channel = channels / "validation"
        _copy_into(outputs / "validation", validation_channel)
    else:
        _copy_into(raw, train_channel)
    if not _run_step(run, "baseline", [python, "-c", BASELINE_SCRIPT, str(train_channel), str(contract), str(baseline_dir)],
                     platform_env, workdir, on_step):
        return run
    hyperparameters = model.hyperparameter_map
    train_env = {
        **model_env,
        "SM_CHANNEL_TRAIN": str(train_channel),
        **({"SM_CHANNEL_VALIDATION": str(validation_channel)} if validation_channel else {}),
        "SM_CHANNELS": json.dumps(["train", *(["validation"] if validation_channel else [])]),
        "SM_MODEL_DIR": str(model_dir),
        "SM_OUTPUT_DATA_DIR": str(output_dir),
        "SM_HPS": json.dumps({k: _decoded(v) for k, v in hyperparameters.items()}),
        "SM_USER_ENTRY_POINT": train_script,
        "SM_MODULE_DIR": str(code),
    }
    if not _run_step(run, "train", [python, train_script, *script_mode_args(hyperparameters)], train_env, code, on_step):
        return run
    production = ["--baseline-metrics", str(production_metrics)] if production_metrics is not None else []
    if evaluate is not None:
        if test is not None:
            holdout = channels / "test"
            _copy_into(test, holdout)
        elif validation_channel is not None:
            holdout = validation_channel
        else:
            raise LocalRunError(f"model {model_name!r} has an evaluate entry point but no preprocess writes a validation channel; give --test PATH")
        command = [python, evaluate, "--model", str(model_dir), "--test", str(holdout), "--contract", str(contract),
                   "--output-dir", str(evaluation_dir), *model.evaluation_args(), *production]
        ok = _run_step(run, "evaluate", command, model_env, code, on_step)
    else:
        reported = output_dir / "evaluation.json"
        if not reported.is_file():
            raise LocalRunError(
                f"model {model_name!r}: its train wrote no evaluation.json to SM_OUTPUT_DATA_DIR ({output_dir}); the platform "
                "judges the metrics it reports there (training/README.md, \"evaluation.json\"), or give entry_points.evaluate"
            )
        command = [python, "-m", "training.evaluate", "--metrics", str(reported), "--output-dir", str(evaluation_dir),
                   *model.evaluation_args(), *production]
        ok = _run_step(run, "evaluate", command, platform_env, workdir, on_step)
    if ok:
        written = evaluation_dir / "evaluation.json"
        if not written.is_file():
            raise LocalRunError(f"model {model_name!r}: evaluate exited 0 but wrote no {written}")
        run.evaluation = json.loads(written.read_text())
    return run


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
    """Run the steps (:func:`step_names`); stops after the first step that does not succeed."""
    if not model.builtin:
        return run_own_code(model_name, model, data=data, test=test, workdir=workdir,
                            production_metrics=production_metrics, on_step=on_step)
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
