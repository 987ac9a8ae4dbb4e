"""``mlops new model NAME``: scaffold a model directory (see infra/scaffold.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from infra.cli.common import out


def new_model(
    name: Annotated[str, typer.Argument(help="Model name: the key under mlops:models (lowercase letters, digits, hyphens).")],
    framework: Annotated[str, typer.Option("--framework", help="sklearn or xgboost (the SageMaker framework image).")] = "sklearn",
    task: Annotated[str, typer.Option("--task", help="binary, multiclass or regression.")] = "binary",
    output: Annotated[Path, typer.Option("--out", "-o", help="Parent folder of the model directory.")] = Path("models"),
) -> None:
    """Write a model directory that trains, serves and tests as it stands, and the config block to paste."""
    from infra.scaffold import new_model as scaffold

    directory = scaffold(name, framework, task, output)
    out.print(f"[green]wrote[/] {directory}/ ({framework}, {task}); paste this into mlops:models:", highlight=False)
    out.print((directory / "config.yaml").read_text(), highlight=False, markup=False)


COMMANDS = [(new_model, "model", "new")]
