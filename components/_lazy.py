"""The packages' lazy exports: a name loads its module on first use, so ``import components`` (or a sub-package)
registers nothing and pulls in no SDK; type checkers see the names through each package's ``TYPE_CHECKING``
imports."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` resolving each exported name from its module (``exports``: name →
    module within the package)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
