"""Names of a package imported on first use, so that importing the package itself stays light."""

from __future__ import annotations

from importlib import import_module
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str], names: dict) -> tuple[list[str], Callable, Callable]:
    """`__all__`, `__getattr__` and `__dir__` for `package`, whose public name N lives in module
    `exports[N]`; `names` is the package's globals()."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(import_module(exports[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(list(names) + list(exports))

    return sorted(exports), __getattr__, __dir__
