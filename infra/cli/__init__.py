"""``mlops``, the command line (the only package that imports typer and rich)."""

import gc


def main() -> None:
    # Importing the CLI, pydantic and pulumi allocates several hundred thousand objects that live as long as
    # the process: the cyclic collector would scan them again and again (a third of a cold synth's CPU). They
    # are imported with collection paused, then frozen out of its view; collection resumes for the command.
    gc.disable()
    try:
        from infra.cli.app import main as run
    finally:
        gc.freeze()
        gc.enable()
    try:
        run()
    finally:
        gc.freeze()  # what is left is the process's: no collection of it at interpreter exit either
