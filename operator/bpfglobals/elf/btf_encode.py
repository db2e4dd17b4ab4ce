"""Serialise a `Btf` back to the wire format (the loader hands the fixed-up BTF to the kernel)."""

from __future__ import annotations

import contextlib
import struct

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_parse import BTF_MAGIC
from bpfglobals.elf.btf_types import (
    Array,
    BtfKind,
    BtfType,
    Datasec,
    DeclTag,
    Enum,
    Float,
    Func,
    FuncProto,
    Fwd,
    Int,
    Modifier,
    Ptr,
    Struct,
    Typedef,
    Var,
    Void,
)
from bpfglobals.errors import BtfError


class _Strings:
    """A deduplicated string table; offset 0 is the empty string, as BTF requires."""

    def __init__(self, base: bytes) -> None:
        self.buf = bytearray(base if base[:1] == b"\0" else b"\0")
        self.offsets: dict[str, int] = {}
        pos = 0
        for raw in bytes(self.buf).split(b"\0")[:-1]:
            with contextlib.suppress(UnicodeDecodeError):
                self.offsets.setdefault(raw.decode(), pos)
            pos += len(raw) + 1

    def add(self, s: str) -> int:
        off = self.offsets.get(s)
        if off is None:
            off = self.offsets[s] = len(self.buf)
            self.buf += s.encode() + b"\0"
        return off


def encode_btf(btf: Btf) -> bytes:
    strs = _Strings(btf.strings)
    out = bytearray()
    for tid, t in enumerate(btf.types):
        if tid == 0:
            if not isinstance(t, Void):
                raise BtfError("BTF type id 0 must be void")
            continue
        out += _encode_type(t, strs)
    header = struct.pack("<HBBIIIII", BTF_MAGIC, 1, 0, 24, 0, len(out), len(out), len(strs.buf))
    return header + bytes(out) + bytes(strs.buf)


def _info(kind: BtfKind, vlen: int = 0, kflag: bool = False) -> int:
    return (int(kflag) << 31) | (int(kind) << 24) | vlen


def _encode_type(t: BtfType, strs: _Strings) -> bytes:
    name = strs.add(t.name)
    head = struct.Struct("<III")
    match t:
        case Int():
            raw = (int(t.encoding) << 24) | (t.offset << 16) | t.bits
            return head.pack(name, _info(t.kind), t.size) + struct.pack("<I", raw)
        case Ptr() | Typedef() | Modifier():
            return head.pack(name, _info(t.kind), t.type)
        case Array():
            return head.pack(name, _info(t.kind), 0) + struct.pack(
                "<III", t.type, t.index_type, t.nelems
            )
        case Struct():
            kflag = any(m.bitfield_size for m in t.members)
            body = b"".join(
                struct.pack(
                    "<III",
                    strs.add(m.name),
                    m.type,
                    (m.bitfield_size << 24) | m.bit_offset if kflag else m.bit_offset,
                )
                for m in t.members
            )
            return head.pack(name, _info(t.kind, len(t.members), kflag), t.size) + body
        case Enum() if t.kind == BtfKind.ENUM:
            body = b"".join(
                struct.pack("<II", strs.add(v.name), v.value & 0xFFFFFFFF) for v in t.values
            )
            return head.pack(name, _info(t.kind, len(t.values), t.signed), t.size) + body
        case Enum():
            body = b"".join(
                struct.pack(
                    "<III",
                    strs.add(v.name),
                    v.value & 0xFFFFFFFF,
                    (v.value >> 32) & 0xFFFFFFFF,
                )
                for v in t.values
            )
            return head.pack(name, _info(t.kind, len(t.values), t.signed), t.size) + body
        case Fwd():
            return head.pack(name, _info(t.kind, 0, t.is_union), 0)
        case Func():
            return head.pack(name, _info(t.kind, int(t.linkage)), t.type)
        case FuncProto():
            body = b"".join(struct.pack("<II", strs.add(p.name), p.type) for p in t.params)
            return head.pack(name, _info(t.kind, len(t.params)), t.return_type) + body
        case Var():
            return head.pack(name, _info(t.kind), t.type) + struct.pack("<I", int(t.linkage))
        case Datasec():
            body = b"".join(struct.pack("<III", v.type, v.offset, v.size) for v in t.vars)
            return head.pack(name, _info(t.kind, len(t.vars)), t.size) + body
        case Float():
            return head.pack(name, _info(t.kind), t.size)
        case DeclTag():
            return head.pack(name, _info(t.kind), t.type) + struct.pack("<i", t.component_idx)
    raise BtfError(f"cannot encode BTF type {t!r}")
