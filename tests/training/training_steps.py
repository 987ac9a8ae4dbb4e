"""Running the training entry points as SageMaker does: in subprocesses, configured by environment."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACT = REPO / "training" / "sample" / "contract.json"
STEP_TIMEOUT = 120


@dataclass(frozen=True)
class Step:
    """A finished run."""

    returncode: int
    stdout: str
    stderr: str


def environment(extra: Mapping[str, str] | None = None, isolated: bool = False) -> dict[str, str]:
    """This environment without SageMaker's variables, plus ``extra``. ``isolated``: for ``python -S``, which
    skips `site` and with it the editable install's import hook, so that `training` is importable only
    the way it is in the container; site-packages come in through PYTHONPATH."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SM_") and k != "MLOPS_CONTRACT"}
    # Runs go several at a time on few cores: OpenMP threads per process would only oversubscribe them.
    base["OMP_NUM_THREADS"] = "1"
    if isolated:
        paths = sysconfig.get_paths()
        base["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([paths["purelib"], paths["platlib"]]))
    return {**base, **(extra or {})}


@dataclass(frozen=True)
class Run:
    """One entry-point invocation: ``python -m training.<step>``, or ``python training/<step>.py`` (script)."""

    step: str
    args: Sequence[str]
    env: Mapping[str, str] | None = None
    script: bool = False

    def command(self) -> list[str]:
        if self.script:
            return [sys.executable, "-S", str(REPO / "training" / f"{self.step}.py"), *self.args]
        return [sys.executable, "-m", f"training.{self.step}", *self.args]


def run_steps(runs: Sequence[Run], cwd: Path) -> list[Step]:
    """Start several independent entry points at once and wait for all; results in order. Scripts run
    from ``cwd`` (as SageMaker runs them from /opt/ml/code), modules from the repository root."""
    processes = [
        subprocess.Popen(
            run.command(),
            cwd=cwd if run.script else REPO,
            env=environment(run.env, isolated=run.script),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for run in runs
    ]
    results = []
    for p in processes:
        out, err = p.communicate(timeout=STEP_TIMEOUT)
        results.append(Step(p.returncode, out, err))
    return results


def run_step(step: str, args: Sequence[str], env: Mapping[str, str] | None = None, *, cwd: Path, script: bool = False) -> Step:
    return run_steps([Run(step, args, env, script)], cwd)[0]


def run_isolated(code: str, cwd: Path) -> Step:
    """Run Python code the way a container does: ``python -S``, with nothing of this repository importable."""
    p = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=cwd, env=environment(isolated=True), capture_output=True, text=True,
        timeout=STEP_TIMEOUT,
    )
    return Step(p.returncode, p.stdout, p.stderr)
