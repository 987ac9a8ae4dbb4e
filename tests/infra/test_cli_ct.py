"""``mlops retrain`` without a cloud: input errors and the reading of a run's history.

Starting and following real runs is in tests/integration/test_pipeline_localstack.py.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from components.pipeline.spec import state_machine_name
from infra.cli.commands.ct import alias_arn, execution_name, transitions

MLOPS = str(Path(sys.executable).with_name("mlops"))
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def mlops(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MLOPS, *args], capture_output=True, text=True, timeout=60)


def event(i: int, kind: str, name: str, seconds: float) -> dict:
    key = "stateEnteredEventDetails" if kind == "entered" else "stateExitedEventDetails"
    return {"id": i, "timestamp": T0 + timedelta(seconds=seconds), key: {"name": name}}


def test_transitions_pair_entries_and_exits_in_the_order_states_were_entered():
    history = [
        event(5, "exited", "Train", 40),
        event(1, "entered", "ValidateData", 0),
        event(2, "exited", "ValidateData", 12.5),
        event(3, "entered", "Train", 13),
        {"id": 4, "timestamp": T0, "type": "TaskScheduled"},
        event(6, "entered", "RunFailed", 41),
    ]
    steps = transitions(history)
    assert [(s.state, s.seconds) for s in steps] == [("ValidateData", 12.5), ("Train", 27.0), ("RunFailed", None)]


def test_a_state_entered_twice_is_two_steps():
    history = [event(1, "entered", "WaitForEndpoint", 0), event(2, "exited", "WaitForEndpoint", 60),
               event(3, "entered", "WaitForEndpoint", 61), event(4, "exited", "WaitForEndpoint", 121)]
    assert [s.seconds for s in transitions(history)] == [60.0, 60.0]


def test_runs_start_on_the_training_alias_under_a_readable_unique_name():
    assert alias_arn("aws", "eu-west-1", "123456789012", state_machine_name("mlops", "prod", "churn")) == (
        "arn:aws:states:eu-west-1:123456789012:stateMachine:mlops-prod-churn-training:current"
    )
    a, b = execution_name(), execution_name()
    assert a != b and a.startswith("manual-") and len(a) <= 80


def test_rejects_a_test_case_outside_localstack():
    done = mlops("retrain", "--stack", "dev", "--model", "churn", "--test-case", "HappyPath")
    assert done.returncode == 2
    assert "does not target LocalStack" in done.stderr and "Traceback" not in done.stderr


def test_rejects_an_unknown_model():
    done = mlops("retrain", "--stack", "dev", "--model", "fraud")
    assert done.returncode == 2 and "has no model 'fraud'; its models: churn" in done.stderr
