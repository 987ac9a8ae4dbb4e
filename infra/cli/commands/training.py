"""``mlops train``: the local run of validate → train → evaluate (see infra/ops/local_run.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from infra.cli.common import ModelName, StackFile, StackName, err, load_stack, out, real_console, require_model


def train(
    model: ModelName,
    stack: StackName = None,
    file: StackFile = None,
    data: Annotated[Optional[Path], typer.Option("--data", help="CSV file or directory (default: the shipped sample for the sample contract; a model's own sample/ directory).")] = None,
    test: Annotated[Optional[Path], typer.Option("--test", help="Holdout CSV file or directory (default: 20% of --data; a model's own evaluate: its validation channel).")] = None,
    production_metrics: Annotated[
        Optional[Path], typer.Option("--production-metrics", help="Metrics of the model in production, to compare with.")
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--out", "-o", help="Folder for the artifacts (default: .mlops/runs/<model>-<time> in the working directory).")
    ] = None,
) -> None:
    """Validate, train and evaluate on this machine with the containers' entry points and environment (a model with
    its own code: validate, its preprocess, the platform's baseline, its train, its evaluate or the platform's judge)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.table import Table

    from infra.ops.local_run import run_local, step_names

    name, cfg = load_stack(stack, file)
    require_model(cfg, model, name)
    workdir = output or Path.cwd() / ".mlops" / "runs" / f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=real_console(out)) as progress:
        tasks = {s: progress.add_task(f"{s}: waiting", total=1) for s in step_names(cfg.models[model])}

        def on_step(step: str, state: str) -> None:
            progress.update(tasks[step], description=f"{step}: {state}", completed=1 if state != "running" else 0)

        run = run_local(model, cfg.models[model], data=data, test=test, workdir=workdir, production_metrics=production_metrics, on_step=on_step)
    table = Table("step", "result", "seconds", "metrics")
    for s in run.steps:
        shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(s.metrics.items()))
        table.add_row(s.name, "[green]ok[/]" if s.ok else f"[red]exit {s.returncode}[/]", f"{s.seconds:.1f}", shown)
    out.print(table)
    failed = next((s for s in run.steps if not s.ok), None)
    if failed is not None:
        tail = "\n".join(failed.log.read_text().splitlines()[-15:])
        err.print(f"[red]{failed.name} failed[/] (log: {failed.log}):\n{tail}", highlight=False)
    elif run.evaluation is not None:
        verdict = run.evaluation["verdict"]
        colour = "green" if verdict == "pass" else "red"
        out.print(f"verdict: [{colour}]{verdict}[/] — " + "; ".join(run.evaluation.get("reasons", [])), highlight=False)
    out.print(f"artifacts: {run.workdir}", highlight=False)
    if not run.passed:
        raise typer.Exit(1)


COMMANDS = [(train, "train", None)]
