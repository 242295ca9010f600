"""Lazy re-exports for package ``__init__`` modules (PEP 562 module ``__getattr__``).

A package lists ``{name: module}`` and gets a ``__getattr__`` that imports the module on first
use, so importing the package stays cheap (no numba, scikit-learn, SQLAlchemy or nbconvert
until something needs them).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_getattr(package: str, exports: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` resolving ``exports`` (attribute -> module path) on demand."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
