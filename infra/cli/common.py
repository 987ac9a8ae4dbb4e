"""What every ``mlops`` command shares: the consoles, the stack options, reading a stack, and the one mapping of
user errors to exit code 2."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Callable, Optional, TypeVar

import typer

from infra.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console


class _Console:
    """A rich ``Console`` made on first use: importing rich costs a cold command 10-25 ms, which a command that
    prints JSON (``mlops synth --format json``) never needs. Attribute reads and writes go to the console."""

    __slots__ = ("_kwargs", "_console")

    def __init__(self, **kwargs: Any):
        object.__setattr__(self, "_kwargs", kwargs)
        object.__setattr__(self, "_console", None)

    def _get(self) -> Console:
        console = object.__getattribute__(self, "_console")
        if console is None:
            from rich.console import Console

            console = Console(**object.__getattribute__(self, "_kwargs"))
            object.__setattr__(self, "_console", console)
        return console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get(), name, value)


def real_console(console: Console) -> Console:
    """The rich ``Console`` itself, for rich APIs that take one (``Progress(console=...)``)."""
    return console._get() if isinstance(console, _Console) else console


out: Console = _Console()  # type: ignore[assignment]
err: Console = _Console(stderr=True)  # type: ignore[assignment]

F = TypeVar("F", bound=Callable[..., Any])

USER_ERROR_EXIT = 2


def user_errors(fn: F) -> F:
    """Run a command; a :class:`UserError` prints ``error: <message>`` on stderr and exits 2 (never a traceback).

    Applied once, where infra/cli/app.py registers each command; the plain function keeps raising ``UserError``
    when a test calls it directly. ``functools.wraps`` keeps the signature Typer reads the options from.
    """

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(USER_ERROR_EXIT) from None

    return run  # type: ignore[return-value]


def fail(message: str) -> UserError:
    """A user error to raise: ``raise fail("...")`` is ``raise UserError("...")``."""
    return UserError(message)


# The options most commands take, as ``Annotated`` types: a command stays a plain function a test can call
# with keyword arguments (``validate(stack="dev")``), and Typer reads the option from the annotation.
StackName = Annotated[Optional[str], typer.Option("--stack", "-s", help="Stack name: reads stacks/Pulumi.<name>.yaml of the project.")]
StackFile = Annotated[Optional[Path], typer.Option("--file", "-f", help="Path of a stack file to read instead.")]
ModelName = Annotated[str, typer.Option("--model", "-m", help="Model name (a key of mlops:models).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")]


def stack_path(stack: Optional[str], file: Optional[Path]) -> Path:
    """The stack file: ``--file`` as given, or ``stacks/Pulumi.<stack>.yaml`` of the project."""
    from infra.config import stack_file, stacks_dir

    if (stack is None) == (file is None):
        raise UserError("give exactly one of --stack NAME (reads stacks/Pulumi.NAME.yaml) or --file PATH")
    if file is not None:
        return file
    path = stack_file(stack, stacks_dir())
    if not path.exists():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in path.parent.glob("Pulumi.*.yaml"))
        raise UserError(f"no stack {stack!r}: {path} does not exist; known stacks: {', '.join(known) or 'none'}")
    return path


def load_stack(stack: Optional[str], file: Optional[Path]):
    """``(stack name, StackConfig)``; a bad file raises ``ConfigError`` (a user error)."""
    from infra.config import load_stack_file

    path = stack_path(stack, file)
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml"), load_stack_file(path)


def require_model(cfg: Any, model: str, stack: str) -> str:
    if model not in cfg.models:
        raise UserError(f"stack {stack!r} has no model {model!r}; its models: {', '.join(cfg.models) or 'none'}")
    return model
