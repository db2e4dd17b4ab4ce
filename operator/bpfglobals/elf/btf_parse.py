"""Parse a raw .BTF blob (kernel uapi linux/btf.h wire format) into the `Btf` model.

Malformed input raises `BtfError` naming the type id and what is wrong; type references are
checked to be in range so later `Btf` queries cannot index past the table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from bpfglobals.elf.binary import Reader, cstring
from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import (
    Array,
    BtfKind,
    BtfType,
    Datasec,
    DeclTag,
    Enum,
    EnumValue,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Linkage,
    Member,
    Modifier,
    Param,
    Ptr,
    Struct,
    Typedef,
    Var,
    VarSecinfo,
    Void,
)
from bpfglobals.errors import BtfError

BTF_MAGIC = 0xEB9F
HEADER = struct.Struct("<HBBIIIII")  # magic, version, flags, hdr_len, type/str off+len
TYPE_RECORD = struct.Struct("<III")  # name_off, info, size_or_type
_TRIPLE = struct.Struct("<III")
_PAIR = struct.Struct("<II")
_ENUM32 = struct.Struct("<Ii")


def parse_btf(data: bytes) -> Btf:
    """Parse a whole .BTF section."""
    hdr = Reader(data, ".BTF header", error=BtfError)
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = hdr.unpack(HEADER)
    if magic != BTF_MAGIC:
        raise BtfError(f".BTF: bad magic {magic:#x} (expected {BTF_MAGIC:#x}; big-endian BTF?)")
    if version != 1:
        raise BtfError(f".BTF: unsupported version {version}")
    if hdr_len < HEADER.size or hdr_len > len(data):
        raise BtfError(f".BTF: header length {hdr_len} is invalid for {len(data)} bytes")
    strings = Reader(
        data, ".BTF string section", hdr_len + str_off, hdr_len + str_off + str_len, error=BtfError
    ).take(str_len)
    if str_len and strings[-1:] != b"\0":
        raise BtfError(".BTF: string section does not end with NUL")
    types = Reader(
        data, ".BTF type section", hdr_len + type_off, hdr_len + type_off + type_len, error=BtfError
    )
    btf = Btf([Void()], strings or b"\0")
    at = table_strings(strings)
    while types.remaining() > 0:
        btf.types.append(parse_type(types, at, len(btf.types)))
    _check_references(btf)
    return btf


def table_strings(strings: bytes) -> Callable[[int, str], str]:
    """The string lookup of one plain (non-split) string table."""

    def at(off: int, where: str) -> str:
        return cstring(strings, off, where, BtfError)

    return at


def parse_type(r: Reader, string_at: Callable[[int, str], str], tid: int) -> BtfType:
    """Decode the type record at `r`'s position; `string_at(offset, where)` names things
    (a split BTF's strings continue its base's, so the caller decides where an offset points)."""
    name_off, info, size_or_type = r.unpack(TYPE_RECORD)
    vlen = info & 0xFFFF
    kind_no = (info >> 24) & 0x1F
    kflag = bool(info >> 31)
    where = f".BTF type [{tid}]"
    name = string_at(name_off, where)
    try:
        kind = BtfKind(kind_no)
    except ValueError:
        raise BtfError(f"{where}: unknown BTF kind {kind_no}") from None

    def s(off: int) -> str:
        return string_at(off, where)

    match kind:
        case BtfKind.INT:
            raw = r.u32()
            enc = (raw >> 24) & 0xF
            if enc not in (0, 1, 2, 4):
                raise BtfError(f"{where} INT '{name}': invalid encoding {enc:#x}")
            bits, offset = raw & 0xFF, (raw >> 16) & 0xFF
            if (
                size_or_type not in (1, 2, 4, 8, 16)
                or bits == 0
                or offset + bits > 8 * size_or_type
            ):
                raise BtfError(f"{where} INT '{name}': invalid size {size_or_type}/bits {bits}")
            return Int(name, size_or_type, IntEncoding(enc), bits, offset)
        case BtfKind.PTR:
            return Ptr(size_or_type, name)
        case BtfKind.ARRAY:
            elem, index, nelems = r.unpack(_TRIPLE)
            return Array(elem, index, nelems, name)
        case BtfKind.STRUCT | BtfKind.UNION:
            members = []
            for _ in range(vlen):
                m_name, m_type, m_off = r.unpack(_TRIPLE)
                if kflag:
                    members.append(Member(s(m_name), m_type, m_off & 0xFFFFFF, m_off >> 24))
                else:
                    members.append(Member(s(m_name), m_type, m_off))
            return Struct(name, size_or_type, tuple(members), kind)
        case BtfKind.ENUM:
            vals = []
            for _ in range(vlen):
                v_name, v = r.unpack(_ENUM32)
                vals.append(EnumValue(s(v_name), v if kflag else v & 0xFFFFFFFF))
            return Enum(name, size_or_type, tuple(vals), kflag, kind)
        case BtfKind.ENUM64:
            vals = []
            for _ in range(vlen):
                v_name, lo, hi = r.unpack(_TRIPLE)
                v = (hi << 32) | lo
                if kflag and v >= 1 << 63:
                    v -= 1 << 64
                vals.append(EnumValue(s(v_name), v))
            return Enum(name, size_or_type, tuple(vals), kflag, kind)
        case BtfKind.FWD:
            return Fwd(name, kflag)
        case BtfKind.TYPEDEF:
            return Typedef(name, size_or_type)
        case BtfKind.VOLATILE | BtfKind.CONST | BtfKind.RESTRICT | BtfKind.TYPE_TAG:
            return Modifier(kind, size_or_type, name)
        case BtfKind.FUNC:
            if vlen > 2:
                raise BtfError(f"{where} FUNC '{name}': invalid linkage {vlen}")
            return Func(name, size_or_type, Linkage(vlen))
        case BtfKind.FUNC_PROTO:
            params = tuple(
                Param(s(p_name), p_type)
                for p_name, p_type in (r.unpack(_PAIR) for _ in range(vlen))
            )
            return FuncProto(size_or_type, params, name)
        case BtfKind.VAR:
            linkage = r.u32()
            if linkage > 2:
                raise BtfError(f"{where} VAR '{name}': invalid linkage {linkage}")
            return Var(name, size_or_type, Linkage(linkage))
        case BtfKind.DATASEC:
            secinfos = tuple(VarSecinfo(*r.unpack(_TRIPLE)) for _ in range(vlen))
            return Datasec(name, size_or_type, secinfos)
        case BtfKind.FLOAT:
            return Float(name, size_or_type)
        case BtfKind.DECL_TAG:
            return DeclTag(name, size_or_type, r.i32())
    raise BtfError(f"{where}: BTF kind {kind.name} is not valid in a type section")


def referenced_ids(t: BtfType) -> list[int]:
    """Type ids one type refers to (for range checks and encoding)."""
    match t:
        case Ptr() | Typedef() | Modifier() | Func() | Var() | DeclTag():
            return [t.type]
        case Array():
            return [t.type, t.index_type]
        case Struct():
            return [m.type for m in t.members]
        case FuncProto():
            return [t.return_type, *(p.type for p in t.params)]
        case Datasec():
            return [v.type for v in t.vars]
    return []


def _check_references(btf: Btf) -> None:
    n = len(btf.types)
    for tid, t in enumerate(btf.types):
        for ref in referenced_ids(t):
            if not 0 <= ref < n:
                raise BtfError(
                    f".BTF type [{tid}] {t.kind.name} '{t.name}' refers to type id {ref}, "
                    f"but only {n} types exist"
                )
