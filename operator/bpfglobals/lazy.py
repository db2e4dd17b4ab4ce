"""Package names imported from their modules on first use (PEP 562).

A package's `__init__` runs whenever any of its modules is imported; one that imports all of
its modules makes every `bpfglobals.<pkg>.<module>` pay for all of them (issue 16: the
start-up of `bpfglobals load`). Such a package lists where each name lives instead:

    __getattr__, __dir__ = lazy_names(__name__, globals(), {"module": "Name Other", ...})
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def lazy_names(
    package: str, namespace: dict[str, object], modules: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: each name of `modules[m]` (separated by
    spaces) from `package.m`."""
    home = {name: module for module, names in modules.items() for name in names.split()}
    namespace["__all__"] = sorted(home)

    def __getattr__(name: str) -> object:
        module = home.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # found in the module's dict from now on
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *home})

    return __getattr__, __dir__
