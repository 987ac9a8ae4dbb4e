"""``mlops`` registers only the invoked command's module, and that changes nothing a user sees."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli.app import COMMAND_MODULES, ENTRY_MODULES, build

ROOT = Path(__file__).resolve().parents[3]


def test_every_command_and_group_maps_to_its_module():
    """A command added to a module's COMMANDS without its entry here (or an entry naming the wrong module) fails."""
    declared = {}
    for module in COMMAND_MODULES:
        for _, name, group in importlib.import_module(module).COMMANDS:
            declared.setdefault(group or name, set()).add(module)
    assert all(len(modules) == 1 for modules in declared.values()), declared
    assert {entry: modules.pop() for entry, modules in declared.items()} == ENTRY_MODULES


def run(*args: str, whole: bool = False) -> subprocess.CompletedProcess:
    entry = "from infra.cli.app import build\nbuild()()" if whole else "from infra.cli import main\nmain()"
    probe = f"import sys\nsys.argv = ['mlops', *sys.argv[1:]]\n{entry}\n"
    return subprocess.run([sys.executable, "-c", probe, *args], cwd=ROOT, capture_output=True, text=True,
                          env={"COLUMNS": "120", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())})


@pytest.mark.parametrize("args", [["synth", "--help"], ["data", "--help"], ["new", "model", "--help"]])
def test_a_command_alone_reads_as_in_the_whole_app(args):
    """Help of a command or group from the one-module app equals the whole app's (its options, its subcommands)."""
    whole, alone = run(*args, whole=True), run(*args)
    assert alone.returncode == whole.returncode == 0, alone.stderr
    assert alone.stdout == whole.stdout and "Usage: mlops" in alone.stdout


def test_a_single_command_app_still_takes_the_command_name(tmp_path):
    """With one command registered Typer would make it the app itself (``synth`` then an unexpected argument); the
    callback keeps ``mlops synth ...``: the command runs and reports its own error."""
    from typer.testing import CliRunner

    missing = tmp_path / "Pulumi.none.yaml"
    result = CliRunner().invoke(build(("infra.cli.commands.synth",)), ["synth", "--file", str(missing)])
    assert result.exit_code == 2 and "cannot read the stack file" in result.stderr, result.output


def test_an_unknown_command_gets_the_whole_list():
    """A name ENTRY_MODULES does not know is parsed by the whole app, which can suggest the command meant."""
    result = run("synht")
    assert result.returncode == 2 and "No such command 'synht'. Did you mean 'synth'?" in result.stderr
