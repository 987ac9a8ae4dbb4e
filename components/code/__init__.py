"""Code packages: the training source and monitoring Lambda packages, content-addressed.

The names below load on first use (``__getattr__``), so importing the package alone registers nothing and
pulls in no SDK; type checkers see them through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.code.package import CodePackage, CodePackageArgs

_EXPORTS = {
    "CodePackage": "package",
    "CodePackageArgs": "package",
}

__all__ = [
    "CodePackage",
    "CodePackageArgs",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
