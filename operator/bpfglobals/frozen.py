"""`@frozen`: immutable value classes for the modules `bpfglobals get` imports.

`dataclasses` imports `inspect` (and with it ast, dis, tokenize, linecache): about 20 ms of
a process's start-up on a 2-vCPU machine, a third of `get`'s whole budget (issue 16). This
decorator gives those few classes what a `@dataclass(frozen=True)` gives them: fields from
the annotations in order, defaults, an `__init__` taking them by position or keyword,
`__eq__`, `__hash__`, `__repr__`, `__match_args__`, and no assignment after construction;
`replace` is `dataclasses.replace`. Nothing else (no field(), no __post_init__, no ordering,
no inheritance of fields): a class needing those is a dataclass, and lives off that path.
"""

from __future__ import annotations

from collections.abc import Callable

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """An attribute of a frozen value was assigned or deleted."""


def frozen(cls: type) -> type:
    # this class's own annotations (inspect.get_annotations would import inspect)
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    required = [n for n in names if n not in defaults]
    if names[: len(required)] != tuple(required):
        raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")
    for n in defaults:
        if isinstance(defaults[n], list | dict | set):
            raise TypeError(f"{cls.__name__}.{n}: mutable default; use an immutable one")

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        if len(args) > len(names):
            raise TypeError(
                f"{cls.__name__}() takes {len(names)} positional arguments, {len(args)} given"
            )
        values = dict(zip(names, args, strict=False))
        for k, v in kwargs.items():
            if k not in names:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {k!r}")
            if k in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {k!r}")
            values[k] = v
        for n in names:
            v = values.get(n, defaults.get(n, _MISSING))
            if v is _MISSING:
                raise TypeError(f"{cls.__name__}() missing required argument {n!r}")
            object.__setattr__(self, n, v)

    def _fields(self: object) -> tuple[object, ...]:
        return tuple(getattr(self, n) for n in names)

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _fields(self) == _fields(other)

    def __hash__(self: object) -> int:
        return hash(_fields(self))

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{cls.__qualname__}({inner})"

    def __setattr__(self: object, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self: object, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    methods: dict[str, Callable[..., object] | tuple[str, ...]] = {
        "__init__": __init__,
        "__eq__": __eq__,
        "__hash__": __hash__,
        "__repr__": __repr__,
        "__setattr__": __setattr__,
        "__delattr__": __delattr__,
        "__match_args__": names,
        "__frozen_fields__": names,
    }
    for k, v in methods.items():
        if callable(v):
            v.__qualname__ = f"{cls.__qualname__}.{k}"
        setattr(cls, k, v)
    return cls


def replace(obj: object, **changes: object) -> object:
    """A copy of `obj` with some fields changed (as `dataclasses.replace`)."""
    names = type(obj).__frozen_fields__
    return type(obj)(**{n: changes.pop(n, getattr(obj, n)) for n in names}, **changes)
