"""``mlops``: validate, synth and operate an mlops-stack from the command line.

This module only assembles the Typer app: each command is a plain module-level function in
``infra/cli/commands/*.py``, listed in that module's ``COMMANDS`` as ``(function, name, group)``. Every command is
registered through ``user_errors``, so a ``UserError`` (infra/errors.py) exits 2 with its message the same way
everywhere. Command modules import their heavy dependencies inside the function: ``mlops --help`` and
``mlops validate`` load neither the Pulumi SDKs, numpy nor the SageMaker SDK.
"""

from __future__ import annotations

import importlib

import typer

from infra.cli.common import err, fail, load_stack, out, require_model, stack_path, user_errors  # noqa: F401  (re-exported)

app = typer.Typer(help="Validate, synth and operate an mlops-stack.", no_args_is_help=True, pretty_exceptions_enable=False)

GROUPS: dict[str, str] = {
    "data": "Versioned datasets in the stack's data bucket.",
    "labels": "Ground-truth labels for live model quality.",
    "new": "Scaffold new things for a stack.",
}

# In `mlops --help` order.
COMMAND_MODULES: tuple[str, ...] = (
    "infra.cli.commands.config",
    "infra.cli.commands.synth",
    "infra.cli.commands.data",
    "infra.cli.commands.training",
    "infra.cli.commands.serving",
    "infra.cli.commands.delivery",
    "infra.cli.commands.ct",
    "infra.cli.commands.drift",
    "infra.cli.commands.monitoring",
    "infra.cli.commands.scaffold",
)


def _register_commands(root: typer.Typer) -> None:
    groups: dict[str, typer.Typer] = {}
    for group, help_text in GROUPS.items():
        groups[group] = typer.Typer(help=help_text, no_args_is_help=True)
        root.add_typer(groups[group], name=group)
    for module in COMMAND_MODULES:
        for fn, name, group in importlib.import_module(module).COMMANDS:
            (root if group is None else groups[group]).command(name)(user_errors(fn))


_register_commands(app)


def main() -> None:
    app()
