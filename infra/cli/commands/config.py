"""``mlops validate`` (a stack's configuration) and ``mlops schema`` (the JSON Schema of stack files).

Both stay light: they load the config models only, never the Pulumi SDKs, numpy or the SageMaker SDK.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from infra.cli.common import StackFile, StackName, load_stack, out
from infra.errors import UserError


def validate(stack: StackName = None, file: StackFile = None) -> None:
    """Check a stack's configuration (the same check `pulumi up` runs first)."""
    name, cfg = load_stack(stack, file)
    models = ", ".join(cfg.models) or "no models"
    out.print(f"[green]ok[/] {name}: {cfg.environment.value} in {cfg.region}, {models}; protected={cfg.protected}")


def schema(
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to this file instead of stdout.")] = None,
    reference: Annotated[bool, typer.Option("--reference", help="The README's markdown reference table instead.")] = False,
) -> None:
    """Print the JSON Schema of stack files (stacks/*.yaml reference it for editor completion)."""
    from infra.config import config_reference_markdown, stack_file_schema

    text = config_reference_markdown() if reference else json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text)
        except OSError as e:
            raise UserError(f"cannot write {output}: {e.strerror}") from None
        out.print(f"wrote {output}")


# (function, command name, group): infra/cli/app.py registers each; group None is a top-level command.
COMMANDS = [(validate, "validate", None), (schema, "schema", None)]
