"""Package names that load their submodule on first use, so `python -m clipconcepts STEP`
imports only what its step needs (torch and open_clip stay out of the light steps)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(`__getattr__`, `__dir__`) for `package`, whose public names map to the submodules
    defining them (`exports`: name -> submodule)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{module}"), name)

    def __dir__() -> list[str]:
        return sorted({*vars(import_module(package)), *exports})

    return __getattr__, __dir__
