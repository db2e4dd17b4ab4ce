"""Spell a BTF type as C source would (`const volatile __u32`, `char[16]`, `struct cfg`)."""

from __future__ import annotations

from bpfglobals.elf.btf import MAX_RESOLVE_DEPTH, Btf
from bpfglobals.elf.btf_types import (
    Array,
    BtfKind,
    Enum,
    Float,
    FuncProto,
    Fwd,
    Int,
    Modifier,
    Ptr,
    Struct,
    Typedef,
    Void,
)

_QUALIFIERS = {BtfKind.CONST: "const", BtfKind.VOLATILE: "volatile", BtfKind.RESTRICT: "restrict"}


def spell(btf: Btf, type_id: int, depth: int = 0) -> str:
    if depth > MAX_RESOLVE_DEPTH:
        return "<too deep>"
    t = btf[type_id]
    match t:
        case Void():
            return "void"
        case Int() | Float() | Typedef():
            return t.name
        case Modifier() if t.kind in _QUALIFIERS:
            quals = [_QUALIFIERS[t.kind]]
            inner = btf[t.type]
            tid = t.type
            while isinstance(inner, Modifier) and inner.kind in _QUALIFIERS:
                quals.append(_QUALIFIERS[inner.kind])
                tid = inner.type
                inner = btf[tid]
            order = [q for q in ("const", "volatile", "restrict") if q in quals]
            base = spell(btf, tid, depth + 1)
            if isinstance(inner, Ptr):
                return f"{base} {' '.join(order)}"
            return f"{' '.join(order)} {base}"
        case Modifier():  # TYPE_TAG
            return spell(btf, t.type, depth + 1)
        case Ptr():
            return spell(btf, t.type, depth + 1) + " *"
        case Array():
            inner, dims = t, ""
            while isinstance(inner, Array):
                dims += f"[{inner.nelems}]"
                elem = inner.type
                inner = btf[elem]
            return spell(btf, elem, depth + 1) + dims
        case Struct():
            word = "union" if t.is_union else "struct"
            return f"{word} {t.name}" if t.name else f"{word} {{...}}"
        case Enum():
            return f"enum {t.name}" if t.name else "enum {...}"
        case Fwd():
            return f"{'union' if t.is_union else 'struct'} {t.name}"
        case FuncProto():
            return "function"
    return t.kind.name.lower()
