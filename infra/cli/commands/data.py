"""``mlops data push|list|pull`` (versioned datasets in the data bucket) and ``mlops labels push`` (ground truth)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from infra.cli.common import AsJson, ModelName, StackFile, StackName, load_stack, out, require_model

if TYPE_CHECKING:
    from infra.ops.session import StackSession


def _session(stack: Optional[str], file: Optional[Path], model: str) -> StackSession:
    from infra.ops.session import StackSession

    name, cfg = load_stack(stack, file)
    require_model(cfg, model, name)
    return StackSession(cfg, name)


def data_push(
    path: Annotated[Path, typer.Argument(help="Dataset file or directory.")],
    model: ModelName,
    stack: StackName = None,
    file: StackFile = None,
    channel: Annotated[str, typer.Option(help="Channel folder under the model's prefix (train, test, ...).")] = "train",
) -> None:
    """Upload a dataset to the data bucket and print the S3 version id of each object."""
    from infra.ops.data import push

    session = _session(stack, file, model)
    for v in push(session, model, path, channel):
        out.print(f"s3://{session.bucket('data')}/{v.key}  version [bold]{v.version_id}[/]  ({v.size} bytes)", highlight=False)


def data_list(
    model: ModelName,
    stack: StackName = None,
    file: StackFile = None,
    channel: Annotated[Optional[str], typer.Option(help="Only this channel.")] = None,
    as_json: AsJson = False,
) -> None:
    """List every stored version of the model's datasets."""
    from rich.table import Table

    from infra.ops.data import list_versions

    session = _session(stack, file, model)
    versions = list_versions(session, model, channel)
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


def data_pull(
    model: ModelName,
    version: Annotated[str, typer.Option("--version", help="The S3 version id to restore (see `mlops data list`).")],
    stack: StackName = None,
    file: StackFile = None,
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="File or directory to write to (default: ./<file name>).")] = None,
) -> None:
    """Download one exact dataset version."""
    from infra.ops.data import pull

    session = _session(stack, file, model)
    v, target = pull(session, model, version, output)
    out.print(f"restored {v.key} version {v.version_id} to {target}", highlight=False)


def labels_push(
    path: Annotated[Path, typer.Argument(help="CSV with the header inference_id,label, or JSON Lines of {\"inference_id\", \"label\"}.")],
    model: ModelName,
    stack: StackName = None,
    file: StackFile = None,
) -> None:
    """Deliver true labels for captured requests (by the InferenceId the client passed, or the capture's eventId)."""
    from infra.ops.labels import push_labels

    session = _session(stack, file, model)
    key, count = push_labels(session, model, path)
    out.print(f"{count} labels written to s3://{session.bucket('data')}/{key}", highlight=False, soft_wrap=True)


COMMANDS = [(data_push, "push", "data"), (data_list, "list", "data"), (data_pull, "pull", "data"), (labels_push, "push", "labels")]
