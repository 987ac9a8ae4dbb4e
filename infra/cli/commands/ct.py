"""``mlops retrain``: start a run of a model's continuous-training flow and follow its state transitions.

Exit codes: 0 the run succeeded (or another run of the model was already in progress and covers the
request); 1 the run failed, timed out or was aborted (the cause is printed); 2 the input is the user's to
fix (unknown stack or model, flow not deployed, no credentials).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import typer

from components.pipeline.spec import ALREADY_DEPLOYING, ALREADY_RUNNING, TRAINING_ALIAS, state_machine_name

FINAL_STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")


@dataclass(frozen=True)
class Transition:
    """One state of the run as the history shows it: entered, and exited (or failed) when it is done."""

    state: str
    entered: datetime
    exited: datetime | None = None

    @property
    def seconds(self) -> float | None:
        return (self.exited - self.entered).total_seconds() if self.exited else None


def transitions(events: Iterable[dict[str, Any]]) -> list[Transition]:
    """The states of a run in the order they were entered, from GetExecutionHistory events."""
    steps: list[Transition] = []
    open_steps: dict[str, int] = {}
    for e in sorted(events, key=lambda e: e["id"]):
        if "stateEnteredEventDetails" in e:
            name = e["stateEnteredEventDetails"]["name"]
            open_steps[name] = len(steps)
            steps.append(Transition(name, e["timestamp"]))
        elif "stateExitedEventDetails" in e:
            i = open_steps.pop(e["stateExitedEventDetails"]["name"], None)
            if i is not None:
                steps[i] = Transition(steps[i].state, steps[i].entered, e["timestamp"])
    return steps


def alias_arn(partition: str, region: str, account: str, name: str) -> str:
    return f"arn:{partition}:states:{region}:{account}:stateMachine:{name}:{TRAINING_ALIAS}"


def execution_name() -> str:
    """Readable and unique: ``manual-<UTC time>-<random>`` (execution names are unique per state machine)."""
    return f"manual-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def register(app: typer.Typer) -> None:
    from infra.cli.app import FileOpt, StackOpt, err, fail, load_stack, out, require_model

    @app.command()
    def retrain(
        stack: Optional[str] = StackOpt,
        file: Optional[Path] = FileOpt,
        model: str = typer.Option(..., "--model", "-m", help="Model name (a key of mlops:models)."),
        follow: bool = typer.Option(True, "--follow/--no-follow", help="Follow the run until it ends (default) or only start it."),
        test_case: Optional[str] = typer.Option(
            None, "--test-case", help="LocalStack only: run this scenario of the Step Functions mock config (SFN_MOCK_CONFIG)."
        ),
        poll_seconds: float = typer.Option(5.0, "--poll-seconds", min=0.2, help="How often the run's history is read."),
    ) -> None:
        """Start a retraining run of a model (validate, train, evaluate, gate, register, deploy) and follow it."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        from infra.ops.session import StackSession

        name, cfg = load_stack(stack, file)
        require_model(cfg, model, name)
        if test_case is not None and cfg.localstack is None:
            raise fail(f"--test-case runs a LocalStack mock scenario; stack {name!r} does not target LocalStack (mlops:localstack)")
        session = StackSession(cfg, name)
        sfn = session.client("stepfunctions")
        try:
            caller = session.client("sts").get_caller_identity()
            target = alias_arn(caller["Arn"].split(":")[1], cfg.region, caller["Account"], state_machine_name(cfg.name_prefix, name, model))
            started = sfn.start_execution(
                stateMachineArn=target + (f"#{test_case}" if test_case else ""),
                name=execution_name(),
                input=json.dumps({"trigger": "manual", "requested_by": caller["Arn"]}),
            )
        except NoCredentialsError:
            raise fail("no AWS credentials found; configure a profile (mlops:aws_profile) or the AWS_* variables") from None
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("StateMachineDoesNotExist", "ResourceNotFound", "InvalidArn"):
                raise fail(f"the training flow of {model!r} is not deployed ({target} not found); run `pulumi up --stack {name}` first") from None
            raise fail(f"Step Functions refused to start the run: {code}: {e.response['Error'].get('Message', '')}") from None
        except BotoCoreError as e:
            raise fail(f"cannot reach AWS: {e}") from None
        arn = started["executionArn"]
        out.print(f"started run [bold]{arn.rsplit(':', 1)[-1]}[/] of {model} ({name})", highlight=False, soft_wrap=True)
        out.print(f"  {arn}", style="dim", highlight=False, soft_wrap=True)
        if not follow:
            return
        try:
            result = _follow(sfn, arn, poll_seconds, out)
        except KeyboardInterrupt:
            err.print(f"stopped following; the run goes on: {arn}", highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None
        except ClientError as e:
            raise fail(f"cannot read the run's history: {e.response['Error'].get('Message', e)}") from None
        status, steps = result["status"], result["steps"]
        last = steps[-1].state if steps else ""
        if status == "SUCCEEDED":
            if last in (ALREADY_RUNNING, ALREADY_DEPLOYING):
                out.print(f"[yellow]another run of {model} is in progress; it covers this request[/]", highlight=False, soft_wrap=True)
                return
            notice = result["output"].get("notice", {}) if isinstance(result["output"], dict) else {}
            out.print(f"[green]run succeeded[/]: {notice.get('message', 'done')}", highlight=False, soft_wrap=True)
            return
        err.print(f"[bold red]run {status.lower().replace('_', ' ')}[/] in {last or 'its first state'}", highlight=False, soft_wrap=True)
        if result.get("error") or result.get("cause"):
            err.print(f"{result.get('error', '')}: {result.get('cause', '')}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _follow(sfn: Any, arn: str, poll_seconds: float, console: Any, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Poll the run's history, printing each state as it completes, until the run ends."""
    printed = 0
    with console.status("starting") as status:
        while True:
            events: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000, "includeExecutionData": False}
            while True:
                page = sfn.get_execution_history(**kwargs)
                events += page["events"]
                if not page.get("nextToken"):
                    break
                kwargs["nextToken"] = page["nextToken"]
            steps = transitions(events)
            while printed < len(steps) and steps[printed].exited is not None:
                s = steps[printed]
                console.print(f"  [green]✓[/] {s.state:<24} {s.seconds:7.1f}s", highlight=False, soft_wrap=True)
                printed += 1
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] in FINAL_STATUSES:
                for s in steps[printed:]:  # the state the run ended in (Fail/Succeed states have no exit event)
                    mark = "[green]✓[/]" if described["status"] == "SUCCEEDED" else "[red]✗[/]"
                    console.print(f"  {mark} {s.state}", highlight=False, soft_wrap=True)
                output = json.loads(described.get("output") or "null")
                return {
                    "status": described["status"],
                    "steps": steps,
                    "output": output,
                    "error": described.get("error"),
                    "cause": described.get("cause"),
                }
            current = steps[-1].state if steps else "starting"
            status.update(f"{current} ({len(steps)} states so far)")
            sleep(poll_seconds)
