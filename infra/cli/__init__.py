"""``mlops``, the command line (the only package that imports typer and rich)."""


def main() -> None:
    from infra.cli.app import main as run

    run()
