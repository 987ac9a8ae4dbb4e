"""``mlops``: validate, synth and operate an mlops-stack from the command line."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from infra.config import STACKS_DIR, ConfigError, StackConfig, load_stack_file, stack_file, stack_file_schema

app = typer.Typer(help="Validate, synth and operate an mlops-stack.", no_args_is_help=True, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Versioned datasets in the stack's data bucket.", no_args_is_help=True)
app.add_typer(data_app, name="data")
labels_app = typer.Typer(help="Ground-truth labels for live model quality.", no_args_is_help=True)
app.add_typer(labels_app, name="labels")

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a user-facing error; raise the returned Exit (code 2: the user's input, never a traceback)."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def stack_path(stack: Optional[str], file: Optional[Path]) -> Path:
    if (stack is None) == (file is None):
        raise fail("give exactly one of --stack NAME (reads stacks/Pulumi.NAME.yaml) or --file PATH")
    if file is not None:
        return file
    path = stack_file(stack)
    if not path.exists():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in STACKS_DIR.glob("Pulumi.*.yaml"))
        raise fail(f"no stack {stack!r}: {path} does not exist; known stacks: {', '.join(known) or 'none'}")
    return path


def load_stack(stack: Optional[str], file: Optional[Path]) -> tuple[str, StackConfig]:
    path = stack_path(stack, file)
    try:
        cfg = load_stack_file(path)
    except ConfigError as e:
        raise fail(str(e)) from None
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml"), cfg


def require_model(cfg: StackConfig, model: str, stack: str) -> str:
    if model not in cfg.models:
        raise fail(f"stack {stack!r} has no model {model!r}; its models: {', '.join(cfg.models) or 'none'}")
    return model


StackOpt = typer.Option(None, "--stack", "-s", help="Stack name: reads stacks/Pulumi.<name>.yaml.")
FileOpt = typer.Option(None, "--file", "-f", help="Path of a stack file to read instead.")


@app.command()
def validate(stack: Optional[str] = StackOpt, file: Optional[Path] = FileOpt) -> None:
    """Check a stack's configuration (the same check `pulumi up` runs first)."""
    name, cfg = load_stack(stack, file)
    models = ", ".join(cfg.models) or "no models"
    out.print(f"[green]ok[/] {name}: {cfg.environment.value} in {cfg.region}, {models}; protected={cfg.protected}")


@app.command()
def schema(
    output: Optional[Path] = typer.Option(None, "--out", "-o", help="Write to this file instead of stdout."),
    reference: bool = typer.Option(False, "--reference", help="The README's markdown reference table instead."),
) -> None:
    """Print the JSON Schema of stack files (stacks/*.yaml reference it for editor completion)."""
    from infra.config import config_reference_markdown

    text = config_reference_markdown() if reference else json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        out.print(f"wrote {output}")


class SynthFormat(str, Enum):
    tree = "tree"
    json = "json"
    mermaid = "mermaid"


@app.command()
def synth(
    stack: Optional[str] = StackOpt,
    file: Optional[Path] = FileOpt,
    output: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the JSON manifest here."),
    fmt: SynthFormat = typer.Option(SynthFormat.tree, "--format", help="What to print: tree, json or mermaid."),
) -> None:
    """Run the real program under Pulumi's mock engine (no CLI, cloud or credentials) and show what it creates."""
    from infra.review.synth import mermaid, synth_file, tree

    path = stack_path(stack, file)
    try:
        _, manifest = synth_file(path)
    except ConfigError as e:
        raise fail(str(e)) from None
    doc = manifest.to_json()
    if output is not None:
        output.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    if fmt is SynthFormat.json:
        sys.stdout.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    elif fmt is SynthFormat.mermaid:
        sys.stdout.write(mermaid(manifest))
    else:
        out.print(tree(manifest))
        table = Table("type", "count", title=f"{len(manifest.resources)} resources")
        for token, n in sorted(manifest.counts().items()):
            table.add_row(token, str(n))
        out.print(table)
        if output is not None:
            out.print(f"manifest written to {output}")


# ---------------------------------------------------------------------------------------------------------------
# data


def _data_session(stack: Optional[str], file: Optional[Path], model: str):
    from infra.ops.session import StackSession

    name, cfg = load_stack(stack, file)
    require_model(cfg, model, name)
    return StackSession(cfg, name)


ModelOpt = typer.Option(..., "--model", "-m", help="Model name (a key of mlops:models).")


@data_app.command("push")
def data_push(
    path: Path = typer.Argument(..., help="Dataset file or directory."),
    stack: Optional[str] = StackOpt,
    file: Optional[Path] = FileOpt,
    model: str = ModelOpt,
    channel: str = typer.Option("train", help="Channel folder under the model's prefix (train, test, ...)."),
) -> None:
    """Upload a dataset to the data bucket and print the S3 version id of each object."""
    from infra.ops.data import DataError, push

    session = _data_session(stack, file, model)
    try:
        versions = push(session, model, path, channel)
    except DataError as e:
        raise fail(str(e)) from None
    for v in versions:
        out.print(f"s3://{session.bucket('data')}/{v.key}  version [bold]{v.version_id}[/]  ({v.size} bytes)", highlight=False)


@data_app.command("list")
def data_list(
    stack: Optional[str] = StackOpt,
    file: Optional[Path] = FileOpt,
    model: str = ModelOpt,
    channel: Optional[str] = typer.Option(None, help="Only this channel."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List every stored version of the model's datasets."""
    from infra.ops.data import DataError, list_versions

    session = _data_session(stack, file, model)
    try:
        versions = list_versions(session, model, channel)
    except DataError as e:
        raise fail(str(e)) from None
    if as_json:
        rows = [
            {"key": v.key, "version_id": v.version_id, "size": v.size, "last_modified": v.last_modified.isoformat(), "latest": v.is_latest}
            for v in versions
        ]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table("key", "version id", "size", "last modified", "latest", title=f"s3://{session.bucket('data')}/{model}/")
    for v in versions:
        table.add_row(v.key, v.version_id, str(v.size), v.last_modified.isoformat(timespec="seconds"), "yes" if v.is_latest else "")
    out.print(table)


@data_app.command("pull")
def data_pull(
    stack: Optional[str] = StackOpt,
    file: Optional[Path] = FileOpt,
    model: str = ModelOpt,
    version: str = typer.Option(..., "--version", help="The S3 version id to restore (see `mlops data list`)."),
    output: Optional[Path] = typer.Option(None, "--out", "-o", help="File or directory to write to (default: ./<file name>)."),
) -> None:
    """Download one exact dataset version."""
    from infra.ops.data import DataError, pull

    session = _data_session(stack, file, model)
    try:
        v, target = pull(session, model, version, output)
    except DataError as e:
        raise fail(str(e)) from None
    out.print(f"restored {v.key} version {v.version_id} to {target}", highlight=False)


@labels_app.command("push")
def labels_push(
    path: Path = typer.Argument(..., help="CSV with the header inference_id,label, or JSON Lines of {\"inference_id\", \"label\"}."),
    stack: Optional[str] = StackOpt,
    file: Optional[Path] = FileOpt,
    model: str = ModelOpt,
) -> None:
    """Deliver true labels for captured requests (by the InferenceId the client passed, or the capture's eventId)."""
    from infra.ops.data import DataError
    from infra.ops.labels import push_labels

    session = _data_session(stack, file, model)
    try:
        key, count = push_labels(session, model, path)
    except DataError as e:
        raise fail(str(e)) from None
    out.print(f"{count} labels written to s3://{session.bucket('data')}/{key}", highlight=False, soft_wrap=True)


# Commands of the other areas (training, CT flow, serving, drift, delivery) live in their own modules,
# each with `register(app)`; they are added here.
COMMAND_MODULES: tuple[str, ...] = (
    "infra.cli.commands.training", "infra.cli.commands.serving", "infra.cli.commands.delivery", "infra.cli.commands.ct", "infra.cli.commands.drift", "infra.cli.commands.monitoring",
    "infra.cli.commands.scaffold",
)


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_commands()


def main() -> None:
    app()
