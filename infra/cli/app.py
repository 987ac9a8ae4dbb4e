"""``mlops``: validate, synth and operate an mlops-stack from the command line.

This module only assembles the Typer app: each command is a plain module-level function in
``infra/cli/commands/*.py``, listed in that module's ``COMMANDS`` as ``(function, name, group)``. Every command is
registered through ``user_errors``, so a ``UserError`` (infra/errors.py) exits 2 with its message the same way
everywhere. Command modules import their heavy dependencies inside the function: ``mlops --help`` and
``mlops validate`` load neither the Pulumi SDKs, numpy nor the SageMaker SDK.
"""

from __future__ import annotations

import importlib
import sys

import typer

from infra.cli.common import err, fail, load_stack, out, require_model, stack_path, user_errors  # noqa: F401  (re-exported)

HELP = "Validate, synth and operate an mlops-stack."

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

# The module of each top-level command and group, so that ``mlops synth ...`` imports and registers that module
# only (a test checks this against the modules' COMMANDS): every module's imports, and Typer reading every
# command's signature, cost a cold command ~15 ms it does not use.
ENTRY_MODULES: dict[str, str] = {
    "validate": "infra.cli.commands.config", "schema": "infra.cli.commands.config",
    "synth": "infra.cli.commands.synth",
    "data": "infra.cli.commands.data", "labels": "infra.cli.commands.data",
    "train": "infra.cli.commands.training",
    "rollback": "infra.cli.commands.serving",
    "diff": "infra.cli.commands.delivery", "check": "infra.cli.commands.delivery",
    "retrain": "infra.cli.commands.ct",
    "drift": "infra.cli.commands.drift",
    "report": "infra.cli.commands.monitoring", "models": "infra.cli.commands.monitoring",
    "status": "infra.cli.commands.monitoring",
    "new": "infra.cli.commands.scaffold",
}


def _root() -> None:
    """Validate, synth and operate an mlops-stack."""


def build(modules: tuple[str, ...] = COMMAND_MODULES) -> typer.Typer:
    """The Typer app with the commands of ``modules`` (every command by default)."""
    root = typer.Typer(help=HELP, no_args_is_help=True, pretty_exceptions_enable=False)
    # A callback keeps the app a group of commands even when it has only one (Typer would make that one the app).
    root.callback()(_root)
    groups: dict[str, typer.Typer] = {}
    for module in modules:
        for fn, name, group in importlib.import_module(module).COMMANDS:
            if group is not None and group not in groups:
                groups[group] = typer.Typer(help=GROUPS[group], no_args_is_help=True)
                root.add_typer(groups[group], name=group)
            (root if group is None else groups[group]).command(name)(user_errors(fn))
    return root


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the whole app, built once on first use (tests and callers drive it with CliRunner)
        globals()["app"] = whole = build()
        return whole
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    argv = sys.argv[1:]
    module = ENTRY_MODULES.get(argv[0]) if argv else None
    build((module,) if module else COMMAND_MODULES)()
