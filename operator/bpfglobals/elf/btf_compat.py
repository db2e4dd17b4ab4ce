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
from bpfglobals.elf.btf_types import Array, BtfKind, BtfType, FuncProto, Int, Ptr
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
    return a.kind == b.kind or (a.kind in _ENUMS and b.kind in _ENUMS)


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
