"""The CLI tests read whole messages and table cells."""

import pytest


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Rich sizes its output to the terminal it finds (none under pytest's capture or xdist's workers): both consoles
    wide enough that a message or cell is never wrapped."""
    from infra.cli import common

    monkeypatch.setattr(common.out, "_width", 400)
    monkeypatch.setattr(common.err, "_width", 400)
