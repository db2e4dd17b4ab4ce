"""A parsed object as plain values and back: what the parsed-object cache stores.

The plain form holds only None, bool, int, float, str, bytes, tuples, lists and dicts, which
`marshal` writes and reads without running anything (pickle would call whatever the file
names: never read from a directory someone else can write). A value of one of the model's
classes becomes the list `[code, *fields]`, an enum member `[code, value]`, a list
`[None, *items]`; tuples and dicts stay themselves. Decoding accepts that shape and nothing
else; a class the codec does not know is refused on encoding (`CodecError`), so a new model
class fails the round-trip test over every fixture object instead of being cached wrongly.
"""

from __future__ import annotations

from enum import Enum as _Enum

from bpfglobals.elf import btf_types as bt
from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_ext import BtfExt, CoreRelo, FuncInfo, LineInfo
from bpfglobals.elf.extern_model import ExternKind, ExternSpec, KconfigField, KconfigType
from bpfglobals.elf.model import (
    DataKind,
    DataSectionSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    ProgramType,
    Relocation,
    RelocKind,
    SubprogramSpec,
    VariableSpec,
)
from bpfglobals.frozen import replace

# Every class an ObjectSpec reaches. A code is its index here: SCHEMA (below) is part of a
# cache entry's key, so reordering or changing a class's fields invalidates old entries.
_CLASSES: tuple[type, ...] = (
    ObjectSpec,
    ProgramSpec,
    ProgramType,
    Relocation,
    SubprogramSpec,
    MapSpec,
    DataSectionSpec,
    VariableSpec,
    Btf,
    BtfExt,
    FuncInfo,
    LineInfo,
    CoreRelo,
    ExternSpec,
    KconfigField,
    bt.Void,
    bt.Int,
    bt.Ptr,
    bt.Array,
    bt.Member,
    bt.Struct,
    bt.EnumValue,
    bt.Enum,
    bt.Fwd,
    bt.Typedef,
    bt.Modifier,
    bt.Func,
    bt.Param,
    bt.FuncProto,
    bt.Var,
    bt.VarSecinfo,
    bt.Datasec,
    bt.Float,
    bt.DeclTag,
    DataKind,
    RelocKind,
    ExternKind,
    KconfigType,
    bt.BtfKind,
    bt.IntEncoding,
    bt.Linkage,
)
_CODE = {cls: i for i, cls in enumerate(_CLASSES)}
_FIELDS = {cls: getattr(cls, "__frozen_fields__", ()) for cls in _CLASSES}
_ENUMS = frozenset(cls for cls in _CLASSES if issubclass(cls, _Enum))
_SCALARS = frozenset((type(None), bool, int, float, str, bytes))
SCHEMA = repr(
    tuple(
        (c.__qualname__, tuple(m.value for m in c) if c in _ENUMS else _FIELDS[c]) for c in _CLASSES
    )
)


class CodecError(Exception):
    """A value the codec cannot write, or a plain value that is not a parsed object."""


def to_plain(obj: ObjectSpec) -> object:
    """`obj` as plain values, without its path and file bytes (the reader supplies those)."""
    return _encode(replace(obj, path="", raw=b""))


def from_plain(plain: object, path: str, raw: bytes) -> ObjectSpec:
    try:
        obj = _decode(plain)
    except (TypeError, ValueError, IndexError, RecursionError) as e:
        raise CodecError(f"not a parsed object ({type(e).__name__}: {e})") from e
    if type(obj) is not ObjectSpec:
        raise CodecError(f"not a parsed object (a {type(obj).__name__})")
    obj.path, obj.raw = path, raw
    return obj


def _encode(v: object) -> object:
    t = type(v)
    if t in _SCALARS:
        return v
    if t in _CONTAINERS:
        return _CONTAINERS[t](v, _encode)
    code = _CODE.get(t)
    if code is None:
        raise CodecError(f"cannot cache a {t.__module__}.{t.__qualname__} value")
    if t in _ENUMS:
        return [code, v.value]  # type: ignore[attr-defined]
    return [code, *(_encode(getattr(v, n)) for n in _FIELDS[t])]


def _decode(v: object) -> object:
    t = type(v)
    if t in _SCALARS:
        return v
    if t is not list:
        if t in _CONTAINERS:
            return _CONTAINERS[t](v, _decode)
        raise TypeError(f"a {t.__name__} is not a plain value")
    head = v[0]  # type: ignore[index]
    # scalars (most fields) are taken as they are, without a call each
    items = [x if type(x) in _SCALARS else _decode(x) for x in v[1:]]  # type: ignore[index]
    if head is None:
        return items
    if type(head) is not int or not 0 <= head < len(_CLASSES):
        raise ValueError(f"unknown class code {head!r}")
    cls = _CLASSES[head]
    if cls in _ENUMS:
        (value,) = items
        return cls(value)
    return cls(*items)


# Containers both ways: tuples and dicts stay themselves; a list is `[None, *items]` in the
# plain form (a list with a class code first is a model value, decoded above).
_CONTAINERS = {
    tuple: lambda v, f: tuple(map(f, v)),
    dict: lambda v, f: {f(k): f(x) for k, x in v.items()},
    list: lambda v, f: [None, *map(f, v)],
}
