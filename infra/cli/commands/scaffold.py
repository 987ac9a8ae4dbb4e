"""``mlops new model NAME``: scaffold a model directory (see infra/scaffold.py)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    from infra.cli.app import fail, out

    new_app = typer.Typer(help="Scaffold new things for a stack.", no_args_is_help=True)
    app.add_typer(new_app, name="new")

    @new_app.command("model")
    def model(
        name: str = typer.Argument(..., help="Model name: the key under mlops:models (lowercase letters, digits, hyphens)."),
        framework: str = typer.Option("sklearn", "--framework", help="sklearn or xgboost (the SageMaker framework image)."),
        task: str = typer.Option("binary", "--task", help="binary, multiclass or regression."),
        output: Path = typer.Option(Path("models"), "--out", "-o", help="Parent folder of the model directory."),
    ) -> None:
        """Write a model directory that trains, serves and tests as it stands, and the config block to paste."""
        from infra.scaffold import ScaffoldError, new_model

        try:
            directory = new_model(name, framework, task, output)
        except ScaffoldError as e:
            raise fail(str(e)) from None
        out.print(f"[green]wrote[/] {directory}/ ({framework}, {task}); paste this into mlops:models:", highlight=False)
        out.print((directory / "config.yaml").read_text(), highlight=False, markup=False)
