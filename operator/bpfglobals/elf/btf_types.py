"""The BTF type model: one frozen data class per BTF kind (pure, no parsing here).

Type IDs index `Btf.types`; ID 0 is `void`. References between types are IDs, not objects, so
the model mirrors the wire format and can be serialised back byte for byte (the loader loads
the fixed-up BTF into the kernel).
"""

from __future__ import annotations

from enum import IntEnum

from bpfglobals.frozen import frozen


class BtfKind(IntEnum):
    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


class IntEncoding(IntEnum):
    """BTF_INT_* encoding bits (one value per int; BTF never combines them)."""

    NONE = 0
    SIGNED = 1
    CHAR = 2
    BOOL = 4


class Linkage(IntEnum):
    """BTF_VAR_* / BTF_FUNC_* linkage."""

    STATIC = 0
    GLOBAL = 1
    EXTERN = 2


@frozen
class Void:
    name: str = ""
    kind: BtfKind = BtfKind.VOID


@frozen
class Int:
    name: str
    size: int  # bytes
    encoding: IntEncoding
    bits: int  # number of value bits
    offset: int = 0  # bit offset of the value inside `size` bytes (0 in practice)
    kind: BtfKind = BtfKind.INT

    @property
    def signed(self) -> bool:
        return self.encoding == IntEncoding.SIGNED


@frozen
class Ptr:
    type: int
    name: str = ""
    kind: BtfKind = BtfKind.PTR


@frozen
class Array:
    type: int  # element type
    index_type: int
    nelems: int
    name: str = ""
    kind: BtfKind = BtfKind.ARRAY


@frozen
class Member:
    name: str
    type: int
    bit_offset: int
    bitfield_size: int = 0  # 0 when the member is not a bitfield


@frozen
class Struct:
    """A struct or a union (`kind` tells which)."""

    name: str
    size: int
    members: tuple[Member, ...]
    kind: BtfKind = BtfKind.STRUCT

    @property
    def is_union(self) -> bool:
        return self.kind == BtfKind.UNION


@frozen
class EnumValue:
    name: str
    value: int


@frozen
class Enum:
    """ENUM (32-bit values) or ENUM64 (`kind` tells which)."""

    name: str
    size: int
    values: tuple[EnumValue, ...]
    signed: bool
    kind: BtfKind = BtfKind.ENUM


@frozen
class Fwd:
    name: str
    is_union: bool
    kind: BtfKind = BtfKind.FWD


@frozen
class Typedef:
    name: str
    type: int
    kind: BtfKind = BtfKind.TYPEDEF


@frozen
class Modifier:
    """VOLATILE, CONST, RESTRICT or TYPE_TAG: a qualifier around `type`."""

    kind: BtfKind
    type: int
    name: str = ""  # only TYPE_TAG has a name


@frozen
class Func:
    name: str
    type: int  # a FUNC_PROTO
    linkage: Linkage
    kind: BtfKind = BtfKind.FUNC


@frozen
class Param:
    name: str
    type: int


@frozen
class FuncProto:
    return_type: int
    params: tuple[Param, ...]
    name: str = ""
    kind: BtfKind = BtfKind.FUNC_PROTO


@frozen
class Var:
    name: str
    type: int
    linkage: Linkage
    kind: BtfKind = BtfKind.VAR


@frozen
class VarSecinfo:
    type: int  # a VAR (or a FUNC for extern ksyms)
    offset: int
    size: int


@frozen
class Datasec:
    name: str
    size: int
    vars: tuple[VarSecinfo, ...]
    kind: BtfKind = BtfKind.DATASEC


@frozen
class Float:
    name: str
    size: int
    kind: BtfKind = BtfKind.FLOAT


@frozen
class DeclTag:
    name: str
    type: int
    component_idx: int  # -1 for the type itself
    kind: BtfKind = BtfKind.DECL_TAG


BtfType = (
    Void
    | Int
    | Ptr
    | Array
    | Struct
    | Enum
    | Fwd
    | Typedef
    | Modifier
    | Func
    | FuncProto
    | Var
    | Datasec
    | Float
    | DeclTag
)

# Kinds that only qualify or rename another type: skipped when resolving to the concrete type.
TRANSPARENT_KINDS = frozenset(
    {
        BtfKind.TYPEDEF,
        BtfKind.VOLATILE,
        BtfKind.CONST,
        BtfKind.RESTRICT,
        BtfKind.TYPE_TAG,
    }
)
