"""Type compatibility between two BTFs, as libbpf's `bpf_core_types_are_compat` decides it.

Used for CO-RE type-id relocations and for ksym/kfunc externs: a local type (the object's BTF)
and a target type (the kernel's) are compatible when, after skipping typedefs and qualifiers,
their shapes agree — names are the caller's business (it already matched essential names).
Structs, unions, enums and forward declarations are compatible with the same kind whatever their
members; integers unless either is a legacy bitfield-like int; pointers and arrays by what they
point at; function prototypes parameter by parameter and by their return type.
"""

from __future__ import annotations

from bpfglobals.elf.btf import BtfQueries
from bpfglobals.elf.btf_types import (
    Array,
    BtfKind,
    BtfType,
    Enum,
    Float,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Ptr,
    Struct,
    Void,
)
from bpfglobals.elf.kernel_btf import essential_name
from bpfglobals.errors import BtfError

_ENUMS = frozenset({BtfKind.ENUM, BtfKind.ENUM64})
_ALWAYS = frozenset(
    {BtfKind.VOID, BtfKind.STRUCT, BtfKind.UNION, BtfKind.ENUM, BtfKind.ENUM64, BtfKind.FWD}
)
# libbpf's limits: 32 pointer/array/return steps, 32 levels of nested prototypes
MAX_DEPTH = 32
MAX_LEVEL = 32


def kinds_compat(a: BtfType, b: BtfType) -> bool:
    """Same kind, or both enums (ENUM and ENUM64 stand for each other)."""
    return kind_ids_compat(a.kind, b.kind)


def kind_ids_compat(a: BtfKind, b: BtfKind) -> bool:
    return a == b or (a in _ENUMS and b in _ENUMS)


def types_are_compat(local: BtfQueries, local_id: int, target: BtfQueries, target_id: int) -> bool:
    """libbpf's bpf_core_types_are_compat; a chain that loops or runs too deep is an error."""
    return _compat(local, local_id, target, target_id, MAX_LEVEL)


def _compat(
    local: BtfQueries, local_id: int, target: BtfQueries, target_id: int, level: int
) -> bool:
    if not kinds_compat(local[local_id], target[target_id]):
        return False
    for _ in range(MAX_DEPTH):
        local_id, lt = local.resolve(local_id)
        target_id, tt = target.resolve(target_id)
        if not kinds_compat(lt, tt):
            return False
        if lt.kind in _ALWAYS:
            return True
        match lt, tt:
            case Int(), Int():
                return lt.offset == 0 and tt.offset == 0
            case Ptr(), Ptr():
                local_id, target_id = lt.type, tt.type
            case Array(), Array():
                local_id, target_id = lt.type, tt.type
            case FuncProto(), FuncProto():
                if len(lt.params) != len(tt.params):
                    return False
                for lp, tp in zip(lt.params, tt.params, strict=True):
                    if level <= 0:
                        raise BtfError(
                            f"BTF types [{local_id}] and [{target_id}]: function prototypes "
                            "nest too deep"
                        )
                    if not _compat(
                        local,
                        local.resolve(lp.type)[0],
                        target,
                        target.resolve(tp.type)[0],
                        level - 1,
                    ):
                        return False
                local_id, target_id = lt.return_type, tt.return_type
            case _:
                return False  # libbpf: "unexpected kind relocated"
    raise BtfError(
        f"BTF types [{local_id}] and [{target_id}]: pointer/array chain too deep (a loop?)"
    )


def names_match(local_name: str, target_name: str) -> bool:
    """Equal essential names; an anonymous target only matches an anonymous local."""
    if not target_name:
        return not local_name
    return essential_name(local_name) == essential_name(target_name)


def types_match(local: BtfQueries, local_id: int, target: BtfQueries, target_id: int) -> bool:
    """libbpf's bpf_core_types_match (`bpf_core_type_matches()`): stricter than compat —
    names (modulo flavors) after typedefs, int size and sign, array lengths, enum variant
    names and every local struct member must agree; behind a pointer a struct matches its
    forward declaration and members are no longer compared."""
    return _match(local, local_id, target, target_id, False, MAX_LEVEL)


def _match(
    local: BtfQueries, lid: int, target: BtfQueries, tid: int, behind_ptr: bool, level: int
) -> bool:
    if level <= 0:
        raise BtfError(f"BTF types [{lid}] and [{tid}]: types nest too deep to match")
    for _ in range(MAX_DEPTH):
        lid, lt = local.resolve(lid)
        tid, tt = target.resolve(tid)
        if not names_match(lt.name, tt.name):
            return False
        match lt:
            case Void():
                return tt.kind == BtfKind.VOID
            case Fwd():
                if isinstance(tt, Fwd):
                    return lt.is_union == tt.is_union
                return behind_ptr and isinstance(tt, Struct) and tt.is_union == lt.is_union
            case Enum():
                return isinstance(tt, Enum) and _enums_match(lt, tt)
            case Struct():
                if behind_ptr:
                    if lt.kind == tt.kind:
                        return True
                    return isinstance(tt, Fwd) and tt.is_union == lt.is_union
                if lt.kind != tt.kind:
                    return False
                return _composites_match(local, lt, target, tt, level)  # type: ignore[arg-type]
            case Int():
                return (
                    isinstance(tt, Int)
                    and lt.size == tt.size
                    and (lt.encoding == IntEncoding.SIGNED) == (tt.encoding == IntEncoding.SIGNED)
                )
            case Ptr():
                if not isinstance(tt, Ptr):
                    return False
                behind_ptr = True
                lid, tid = lt.type, tt.type
            case Array():
                if not isinstance(tt, Array) or lt.nelems != tt.nelems:
                    return False
                lid, tid = lt.type, tt.type
            case FuncProto():
                if not isinstance(tt, FuncProto) or len(lt.params) != len(tt.params):
                    return False
                for lp, tp in zip(lt.params, tt.params, strict=True):
                    if not _match(local, lp.type, target, tp.type, behind_ptr, level - 1):
                        return False
                lid, tid = lt.return_type, tt.return_type
            case _:
                return False
    raise BtfError(f"BTF types [{lid}] and [{tid}]: chain too deep to match (a loop?)")


def _enums_match(lt: Enum, tt: Enum) -> bool:
    if lt.size != tt.size or len(lt.values) > len(tt.values):
        return False
    return all(any(names_match(lv.name, tv.name) for tv in tt.values) for lv in lt.values)


def _composites_match(
    local: BtfQueries, lt: Struct, target: BtfQueries, tt: Struct, level: int
) -> bool:
    if len(lt.members) > len(tt.members):
        return False
    for lm in lt.members:
        if not any(
            names_match(lm.name, tm.name)
            and _match(local, lm.type, target, tm.type, False, level - 1)
            for tm in tt.members
        ):
            return False
    return True


def fields_are_compat(local: BtfQueries, local_id: int, target: BtfQueries, target_id: int) -> bool:
    """libbpf's bpf_core_fields_are_compat: may a field of type `local_id` be relocated to a
    target field of type `target_id`? Any two structs/unions; pointers and floats; ints
    unless bitfield-like; enums and forward declarations by essential name (or anonymous);
    arrays by element type."""
    for _ in range(MAX_DEPTH):
        local_id, lt = local.resolve(local_id)
        target_id, tt = target.resolve(target_id)
        if isinstance(lt, Struct) and isinstance(tt, Struct):
            return True
        if not kinds_compat(lt, tt):
            return False
        match lt, tt:
            case (Ptr(), Ptr()) | (Float(), Float()):
                return True
            case (Fwd(), Fwd()) | (Enum(), Enum()):
                ln, tn = essential_name(lt.name), essential_name(tt.name)
                return not ln or not tn or ln == tn
            case Int(), Int():
                return lt.offset == 0 and tt.offset == 0
            case Array(), Array():
                local_id, target_id = lt.type, tt.type
            case _:
                return False
    raise BtfError(f"BTF types [{local_id}] and [{target_id}]: array chain too deep (a loop?)")
