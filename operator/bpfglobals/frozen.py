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
from operator import attrgetter

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

    count, known = len(names), frozenset(names)
    n_required = len(required)
    default_items = [(n, defaults[n]) for n in names[n_required:]]  # the defaulted suffix
    getter = attrgetter(*names) if count > 1 else (lambda o: (getattr(o, names[0]),))

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        # Values go straight into the instance dict (__setattr__ refuses): C calls on the
        # positional path, so a BTF of 100k types is built about as fast as with dataclasses.
        if not kwargs and n_required <= len(args) <= count:
            d = self.__dict__
            d.update(zip(names, args, strict=False))
            if len(args) < count:
                d.update(default_items[len(args) - n_required :])
            return
        if len(args) > count:
            raise TypeError(f"{cls.__name__}() takes {count} positional arguments ({len(args)})")
        values = dict(zip(names, args, strict=False))
        for k, v in kwargs.items():
            if k not in known:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {k!r}")
            if k in values:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {k!r}")
            values[k] = v
        for n in names:
            if n not in values:
                if n not in defaults:
                    raise TypeError(f"{cls.__name__}() missing required argument {n!r}")
                values[n] = defaults[n]
        self.__dict__.update((n, values[n]) for n in names)

    def _fields(self: object) -> tuple[object, ...]:
        return getter(self)

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
    """A copy of `obj` with some fields changed (as `dataclasses.replace`, which it calls for
    a dataclass: modules that copy both kinds use this one)."""
    names = getattr(type(obj), "__frozen_fields__", None)
    if names is None:
        import dataclasses

        return dataclasses.replace(obj, **changes)
    return type(obj)(**{n: changes.pop(n, getattr(obj, n)) for n in names}, **changes)
