"""``mlops synth``: run the real program under Pulumi's mock engine and show what it creates."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from infra.cli.common import StackFile, StackName, out, stack_path
from infra.errors import UserError

if TYPE_CHECKING:
    from rich.tree import Tree
    from infra.review.synth import Manifest


class SynthFormat(str, Enum):
    tree = "tree"
    json = "json"
    mermaid = "mermaid"


def synth(
    stack: StackName = None,
    file: StackFile = None,
    output: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the JSON manifest here.")] = None,
    fmt: Annotated[SynthFormat, typer.Option("--format", help="What to print: tree, json or mermaid.")] = SynthFormat.tree,
    program: Annotated[Optional[Path], typer.Option(
        "--program", "-p", help="Synthesize this Pulumi program directory (e.g. examples/minimal) with its own Pulumi.<stack>.yaml.",
    )] = None,
) -> None:
    """Run the real program under Pulumi's mock engine (no CLI, cloud or credentials) and show what it creates."""
    from infra.review.synth import ProgramError, mermaid, synth_file, synth_program

    if program is not None:
        if stack is None or file is not None:
            raise UserError("--program needs --stack NAME (the program directory's Pulumi.<NAME>.yaml) and no --file")
        try:
            manifest = synth_program(program, stack)
        except ProgramError as e:
            raise UserError(str(e)) from None
    else:
        _, manifest = synth_file(stack_path(stack, file))
    text = json.dumps(manifest.to_json(), indent=2, sort_keys=True) + "\n" if output is not None or fmt is SynthFormat.json else ""
    if output is not None:
        output.write_text(text)
    if fmt is SynthFormat.json:
        sys.stdout.write(text)
    elif fmt is SynthFormat.mermaid:
        sys.stdout.write(mermaid(manifest))
    else:
        from rich.table import Table

        out.print(tree(manifest))
        table = Table("type", "count", title=f"{len(manifest.resources)} resources")
        for token, n in sorted(manifest.counts().items()):
            table.add_row(token, str(n))
        out.print(table)
        for message in manifest.messages:
            out.print(message, highlight=False)
        if output is not None:
            out.print(f"manifest written to {output}")


def tree(manifest: Manifest) -> Tree:
    """A rich Tree of components and resources, as nested in the program."""
    from rich.tree import Tree

    root = Tree(f"[bold]{manifest.project}[/] / [bold cyan]{manifest.stack}[/]")
    nodes: dict[str | None, Any] = {None: root}
    for r in manifest.resources:  # registration order: parents come before their children
        parent = nodes.get(r["parent"], root)
        flags = " [yellow]protected[/]" if r["protect"] else ""
        label = f"[green]{r['name']}[/] [dim]{r['type']}[/]{flags}" if r["custom"] else f"[bold]{r['name']}[/] [magenta]{r['type']}[/]"
        nodes[r["urn"]] = parent.add(label)
    return root


COMMANDS = [(synth, "synth", None)]
