"""Where code is read from and where builds go by default: standard library only (the CLI's local runs use it too)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def work_dir() -> Path:
    """Where builds and caches go unless an argument says otherwise: ``.mlops`` in the working directory (never beside
    the installed package, which may be read-only)."""
    return Path.cwd() / ".mlops"


def package_source(name: str) -> Path:
    """The directory of the importable package ``name`` (e.g. ``training``): what a code package archives."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{name!r} is not an importable package; install it or give its directory as source_dir")
    return Path(next(iter(spec.submodule_search_locations))).resolve()
