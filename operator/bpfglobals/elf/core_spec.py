"""CO-RE access specs: what one `.BTF.ext` CO-RE record asks for, in local and target terms.

A record names a root type and an access string (`0:1:2:3`: index through a pointer, then
member/array indexes). The *spec* is that string walked through a BTF: the low-level indexes
(`raw`), the high-level accessors that matter for matching (named members and array indexes,
anonymous struct/union hops dropped) and the resulting bit offset. Matching a local spec against
a candidate target type builds the target spec the same way libbpf's relo_core.c does
(bpf_core_parse_spec / bpf_core_spec_match / bpf_core_format_spec); pure, no kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from bpfglobals.elf.btf import BtfQueries
from bpfglobals.elf.btf_compat import fields_are_compat, types_are_compat, types_match
from bpfglobals.elf.btf_types import Array, BtfKind, Enum, Struct
from bpfglobals.elf.kernel_btf import essential_name
from bpfglobals.errors import BpfGlobalsError, BtfError

MAX_SPEC_LEN = 64  # libbpf's BPF_CORE_SPEC_MAX_LEN


class CoreKind(IntEnum):
    """enum bpf_core_relo_kind (uapi linux/bpf.h)."""

    FIELD_BYTE_OFFSET = 0
    FIELD_BYTE_SIZE = 1
    FIELD_EXISTS = 2
    FIELD_SIGNED = 3
    FIELD_LSHIFT_U64 = 4
    FIELD_RSHIFT_U64 = 5
    TYPE_ID_LOCAL = 6
    TYPE_ID_TARGET = 7
    TYPE_EXISTS = 8
    TYPE_SIZE = 9
    ENUMVAL_EXISTS = 10
    ENUMVAL_VALUE = 11
    TYPE_MATCHES = 12

    @property
    def label(self) -> str:
        """libbpf's short name (core_relo_kind_str), as its messages print it."""
        return _LABELS[self]

    @property
    def field_based(self) -> bool:
        return self <= CoreKind.FIELD_RSHIFT_U64

    @property
    def type_based(self) -> bool:
        return self in _TYPE_BASED

    @property
    def enumval_based(self) -> bool:
        return self in (CoreKind.ENUMVAL_EXISTS, CoreKind.ENUMVAL_VALUE)


_LABELS = {
    CoreKind.FIELD_BYTE_OFFSET: "byte_off",
    CoreKind.FIELD_BYTE_SIZE: "byte_sz",
    CoreKind.FIELD_EXISTS: "field_exists",
    CoreKind.FIELD_SIGNED: "signed",
    CoreKind.FIELD_LSHIFT_U64: "lshift_u64",
    CoreKind.FIELD_RSHIFT_U64: "rshift_u64",
    CoreKind.TYPE_ID_LOCAL: "local_type_id",
    CoreKind.TYPE_ID_TARGET: "target_type_id",
    CoreKind.TYPE_EXISTS: "type_exists",
    CoreKind.TYPE_MATCHES: "type_matches",
    CoreKind.TYPE_SIZE: "type_size",
    CoreKind.ENUMVAL_EXISTS: "enumval_exists",
    CoreKind.ENUMVAL_VALUE: "enumval_value",
}
_TYPE_BASED = frozenset(
    {
        CoreKind.TYPE_ID_LOCAL,
        CoreKind.TYPE_ID_TARGET,
        CoreKind.TYPE_EXISTS,
        CoreKind.TYPE_MATCHES,
        CoreKind.TYPE_SIZE,
    }
)


def kind_label(kind: int) -> str:
    """libbpf's name of a relocation kind, or `kind N` for one it does not know."""
    try:
        return CoreKind(kind).label
    except ValueError:
        return f"kind {kind}"


class CoreError(BpfGlobalsError):
    """A CO-RE relocation cannot be applied safely (what libbpf refuses to load)."""


@dataclass(frozen=True)
class Accessor:
    type_id: int  # struct/union (named member) or array element type
    idx: int  # member index or array index
    name: str | None  # member name (or enumerator name); None for an array index


@dataclass
class Spec:
    """bpf_core_spec: a record's access walked through one BTF."""

    btf: BtfQueries
    root_type_id: int
    kind: CoreKind
    acc: list[Accessor] = field(default_factory=list)
    raw: list[int] = field(default_factory=list)
    bit_offset: int = 0


def _is_flex_arr(btf: BtfQueries, prev: Accessor | None, arr: Array) -> bool:
    """A zero-length array that is the last member of the struct it was reached through."""
    if prev is None or not prev.name or arr.nelems > 0:
        return False
    t = btf[prev.type_id]
    return isinstance(t, Struct) and prev.idx == len(t.members) - 1


def parse_spec(btf: BtfQueries, type_id: int, access: str, kind: CoreKind) -> Spec:
    """bpf_core_parse_spec; CoreError when the record does not fit the local BTF."""
    spec = Spec(btf, type_id, kind)
    if not access or access.startswith(":"):
        raise CoreError(f"empty or malformed access string '{access}'")
    if kind.type_based:
        if access != "0":
            raise CoreError(f"type-based relocation with access string '{access}' (want '0')")
        return spec
    for part in access.split(":"):
        if not part.isdigit():
            raise CoreError(f"access string '{access}': '{part}' is not an index")
        if len(spec.raw) == MAX_SPEC_LEN:
            raise CoreError(f"access string '{access}' is longer than {MAX_SPEC_LEN}")
        spec.raw.append(int(part))
    tid, t = btf.resolve(type_id)
    idx = spec.raw[0]
    if kind.enumval_based:
        if not isinstance(t, Enum) or len(spec.raw) > 1 or idx >= len(t.values):
            raise CoreError(f"access string '{access}' names no enumerator of type [{type_id}]")
        spec.acc.append(Accessor(tid, idx, t.values[idx].name))
        return spec
    if not kind.field_based:
        raise CoreError(f"unknown relocation kind {int(kind)}")
    spec.acc.append(Accessor(tid, idx, None))
    spec.bit_offset = idx * _size(btf, tid) * 8
    for i, idx in enumerate(spec.raw[1:], 1):
        tid, t = btf.resolve(tid)
        if isinstance(t, Struct):
            if idx >= len(t.members):
                raise CoreError(f"access string '{access}': member {idx} of [{tid}] is missing")
            m = t.members[idx]
            spec.bit_offset += m.bit_offset
            if m.name:
                spec.acc.append(Accessor(tid, idx, m.name))
            tid = m.type
        elif isinstance(t, Array):
            flex = _is_flex_arr(btf, spec.acc[-1], t)
            tid, _ = btf.resolve(t.type)
            if not flex and idx >= t.nelems:
                raise CoreError(f"access string '{access}': index {idx} outside [{t.nelems}]")
            spec.acc.append(Accessor(tid, idx, None))
            spec.bit_offset += idx * _size(btf, tid) * 8
        else:
            raise CoreError(
                f"access string '{access}' (at index {i}) reaches type [{tid}] of kind "
                f"{t.kind.name}, which has no members"
            )
    return spec


def _size(btf: BtfQueries, tid: int) -> int:
    try:
        return btf.size_of(tid)
    except BtfError as e:
        raise CoreError(str(e)) from e


def match_spec(local: Spec, target: BtfQueries, target_id: int) -> Spec | None:
    """bpf_core_spec_match: the target spec when `target_id` satisfies `local`, else None."""
    spec = Spec(target, target_id, local.kind)
    if local.kind.type_based:
        decide = types_match if local.kind == CoreKind.TYPE_MATCHES else types_are_compat
        try:
            ok = decide(local.btf, local.root_type_id, target, target_id)
        except BtfError as e:
            raise CoreError(str(e)) from e
        return spec if ok else None
    if local.kind.enumval_based:
        tid, t = target.resolve(target_id)
        if not isinstance(t, Enum):
            return None
        want = essential_name(local.acc[0].name or "")
        for i, v in enumerate(t.values):
            if essential_name(v.name) == want:
                spec.acc.append(Accessor(tid, i, v.name))
                spec.raw.append(i)
                return spec
        return None
    tid = target_id
    for i, la in enumerate(local.acc):
        tid, t = target.resolve(tid)
        if la.name:
            found = _match_member(local.btf, la, target, tid, spec)
            if found is None:
                return None
            tid = found
            continue
        if i > 0:
            if not isinstance(t, Array):
                return None
            flex = _is_flex_arr(target, spec.acc[-1], t)
            if not flex and la.idx >= t.nelems:
                return None
            tid, _ = target.resolve(t.type)
        if len(spec.raw) == MAX_SPEC_LEN:
            raise CoreError(f"target type [{target_id}]: access nests deeper than {MAX_SPEC_LEN}")
        spec.acc.append(Accessor(tid, la.idx, None))
        spec.raw.append(la.idx)
        spec.bit_offset += la.idx * _size(target, tid) * 8
    return spec


def _match_member(
    local: BtfQueries, la: Accessor, target: BtfQueries, target_id: int, spec: Spec
) -> int | None:
    """bpf_core_match_member: find the local named member in the target (descending into
    anonymous members), extending `spec`; the member's type id, or None."""
    target_id, tt = target.resolve(target_id)
    if not isinstance(tt, Struct):
        return None
    lt = local[la.type_id]
    assert isinstance(lt, Struct)
    lm = lt.members[la.idx]
    raw = spec.raw
    for i, m in enumerate(tt.members):
        if len(raw) == MAX_SPEC_LEN:
            raise CoreError(f"target type [{target_id}]: access nests deeper than {MAX_SPEC_LEN}")
        if m.name and m.name != lm.name:
            continue  # libbpf speculates and undoes; nothing to undo when names differ
        spec.bit_offset += m.bit_offset
        spec.raw.append(i)
        if not m.name:
            found = _match_member(local, la, target, m.type, spec)
            if found is not None:
                return found
        elif m.name == lm.name:
            try:
                compat = fields_are_compat(local, lm.type, target, m.type)
            except BtfError as e:
                raise CoreError(str(e)) from e
            if not compat:
                return None
            spec.acc.append(Accessor(target_id, i, m.name))
            return m.type
        spec.bit_offset -= m.bit_offset
        spec.raw.pop()
    return None


def format_spec(spec: Spec) -> str:
    """bpf_core_format_spec: `<byte_off> [7] struct foo.bar[2] (0:1:2 @ offset 12)`."""
    t = spec.btf[spec.root_type_id]
    kind = "UNKN" if t.kind == BtfKind.VOID else t.kind.name
    out = f"<{spec.kind.label}> [{spec.root_type_id}] {kind.lower()} {t.name or '<anon>'}"
    if spec.kind.type_based:
        return out
    if spec.kind.enumval_based:
        _, e = spec.btf.resolve(spec.root_type_id)
        assert isinstance(e, Enum)
        v = e.values[spec.raw[0]]
        return f"{out}::{v.name} = {v.value}"
    for i, a in enumerate(spec.acc):
        if a.name:
            out += f".{a.name}"
        elif i > 0 or a.idx > 0:
            out += f"[{a.idx}]"
    raw = ":".join(str(r) for r in spec.raw)
    byte, bit = divmod(spec.bit_offset, 8)
    return f"{out} ({raw} @ offset {byte}.{bit})" if bit else f"{out} ({raw} @ offset {byte})"
