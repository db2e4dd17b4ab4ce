"""`@frozen` and `@mutable`: value classes without the cost of `dataclasses`.

`dataclasses` imports `inspect` (and with it ast, dis, tokenize, linecache): about 20 ms of
a process's start-up on a 2-vCPU machine, and each class it builds compiles its methods with
`exec` (~0.3-0.8 ms per class; the ELF model and the loader have ~30 of them). Issue 16 gives
`bpfglobals get` 60 ms and `load` 80 ms in all, so the classes on those paths use these two
decorators, which build the same methods from closures (no `exec`):

- `@frozen` is `@dataclass(frozen=True)`: fields from the class's own annotations in order,
  defaults, an `__init__` taking them by position or keyword, `__eq__`, `__hash__`,
  `__repr__`, `__match_args__`, and no assignment or deletion after construction;
- `@mutable` is `@dataclass()`: the same without the freezing, and unhashable (as a dataclass
  with `eq=True` is);
- `field(default=..., default_factory=..., repr=False)` as `dataclasses.field` for those three
  keywords; `replace` as `dataclasses.replace` (and it calls that one for a dataclass).

Nothing else (no __post_init__, no ordering, no inheritance of fields, no slots): a class
needing those is a dataclass, and lives off the start-up paths. tests/unit/test_frozen.py
checks both against the dataclasses they stand for.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter

_MISSING = object()


class FrozenInstanceError(AttributeError):
    """An attribute of a frozen value was assigned or deleted."""


class _Field:
    """What `field()` returns: read by the decorators, never left on the class."""

    __slots__ = ("default", "factory", "repr")

    def __init__(self, default: object, factory: object, repr_: bool) -> None:
        self.default, self.factory, self.repr = default, factory, repr_


def field(
    *,
    default: object = _MISSING,
    default_factory: Callable[[], object] | object = _MISSING,
    repr: bool = True,
) -> object:
    if default is not _MISSING and default_factory is not _MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return _Field(default, default_factory, repr)


def frozen(cls: type) -> type:
    return _value_class(cls, frozen=True)


def mutable(cls: type) -> type:
    return _value_class(cls, frozen=False)


def _value_class(cls: type, *, frozen: bool) -> type:
    # this class's own annotations (inspect.get_annotations would import inspect)
    names = tuple(cls.__dict__.get("__annotations__", {}))  # noqa: RUF063
    defaults: dict[str, object] = {}
    factories: dict[str, Callable[[], object]] = {}
    hidden: set[str] = set()  # repr=False
    for n in names:
        if n not in cls.__dict__:
            continue
        v = cls.__dict__[n]
        if isinstance(v, _Field):
            if not v.repr:
                hidden.add(n)
            if v.factory is not _MISSING:
                factories[n] = v.factory  # type: ignore[assignment]
            elif v.default is not _MISSING:
                defaults[n] = v.default
            if v.default is _MISSING:
                delattr(cls, n)  # as dataclasses: no class attribute for a field without one
            else:
                setattr(cls, n, v.default)
        else:
            defaults[n] = v
    required = [n for n in names if n not in defaults and n not in factories]
    if names[: len(required)] != tuple(required):
        raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")
    for n, d in defaults.items():
        if isinstance(d, list | dict | set):
            raise TypeError(f"{cls.__name__}.{n}: mutable default; use an immutable one")

    count, known = len(names), frozenset(names)
    n_required = len(required)
    # the defaulted suffix: (name, default, factory or None)
    tail = [(n, defaults.get(n), factories.get(n)) for n in names[n_required:]]
    constant_tail = [(n, d) for n, d, _ in tail] if not factories else None
    getter = attrgetter(*names) if count > 1 else (lambda o: (getattr(o, names[0]),))
    shown = tuple(n for n in names if n not in hidden)

    def __init__(self: object, *args: object, **kwargs: object) -> None:
        # Values go straight into the instance dict (a frozen class's __setattr__ refuses):
        # C calls on the positional path, so a BTF of 100k types is built about as fast as
        # with dataclasses.
        if not kwargs and n_required <= len(args) <= count:
            d = self.__dict__
            d.update(zip(names, args, strict=False))
            if len(args) < count:
                if constant_tail is not None:
                    d.update(constant_tail[len(args) - n_required :])
                else:
                    for n, v, make in tail[len(args) - n_required :]:
                        d[n] = make() if make is not None else v
            return
        if len(args) > count:
            raise TypeError(f"{cls.__name__}() takes {count} positional arguments ({len(args)})")
        values = dict(zip(names, args, strict=False))
        if not known.issuperset(kwargs):
            bad = next(k for k in kwargs if k not in known)
            raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {bad!r}")
        if len(values) and not values.keys().isdisjoint(kwargs):
            twice = next(k for k in kwargs if k in values)
            raise TypeError(f"{cls.__name__}() got multiple values for argument {twice!r}")
        values.update(kwargs)
        if len(values) < count:
            for n in names:
                if n not in values:
                    if n in factories:
                        values[n] = factories[n]()
                    elif n in defaults:
                        values[n] = defaults[n]
                    else:
                        raise TypeError(f"{cls.__name__}() missing required argument {n!r}")
        self.__dict__.update([(n, values[n]) for n in names])

    def _fields(self: object) -> tuple[object, ...]:
        return getter(self)

    def __eq__(self: object, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return _fields(self) == _fields(other)

    def __hash__(self: object) -> int:
        return hash(_fields(self))

    def __repr__(self: object) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{cls.__qualname__}({inner})"

    def __setattr__(self: object, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self: object, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    methods: dict[str, Callable[..., object] | tuple[str, ...] | None] = {
        "__init__": __init__,
        "__eq__": __eq__,
        "__repr__": __repr__,
        "__match_args__": names,
        "__frozen_fields__": names,
    }
    if frozen:
        methods |= {"__hash__": __hash__, "__setattr__": __setattr__, "__delattr__": __delattr__}
    else:
        methods["__hash__"] = None  # eq without frozen: unhashable, as a dataclass
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
