"""Packages whose public names load on first use (PEP 562).

A package lists where each public name lives; the module behind a name is imported the
first time someone reads that name, and the value is kept. Used where the modules behind a
package are costly to import and many processes need only a few of its names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, MutableMapping

__all__ = ["lazy_names"]


def lazy_names(
    package: str, homes: Mapping[str, str], public: Iterable[str], namespace: MutableMapping[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of a package that loads ``homes`` (name -> module) on demand.

    Args:
        package: The package's name, for the error of an unknown attribute.
        homes: Each lazily loaded name and the module that defines it.
        public: The names ``dir()`` shows (the package's ``__all__``).
        namespace: The package's ``globals()``: a loaded value is kept there.
    """
    shown = sorted(public)

    def __getattr__(name: str) -> object:
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value: object = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return shown

    return __getattr__, __dir__
