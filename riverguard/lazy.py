"""Lazy package exports (PEP 562), for packages whose modules pull in heavy libraries.

A package ``__init__`` lists its public names as imports under ``if TYPE_CHECKING:`` (what type
checkers and readers see), keeps its ``__all__``, and ends with
``__getattr__ = lazy_exports(__name__, __file__)``: each name is imported from its module on first
use. Every ``riverguard`` command imports each package's ``cli`` module to register its commands;
with eager package imports that loaded river and scipy (detectors) and matplotlib (playbook maps)
into every service — ~190 MB and seconds of start-up for an ingest bridge that needs ~50 MB.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Callable
from pathlib import Path


def lazy_exports(package: str, init_file: str) -> Callable[[str], object]:
    """The module ``__getattr__`` for ``package``, from the ``TYPE_CHECKING`` imports of its
    ``__init__`` (``init_file``)."""
    where: dict[str, tuple[str, str]] = {}
    for node in ast.parse(Path(init_file).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    for alias in statement.names:
                        where[alias.asname or alias.name] = (statement.module, alias.name)

    def __getattr__(name: str) -> object:  # noqa: N807 - the module hook's own name
        found = where.get(name)
        if found is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = found
        value = getattr(importlib.import_module(module), attribute)
        setattr(sys.modules[package], name, value)  # looked up once
        return value

    return __getattr__
