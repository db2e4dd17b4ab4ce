"""A lazily decoded BTF: the kernel's vmlinux (and module) BTF without parsing 100k+ types.

Decoding all of /sys/kernel/btf/vmlinux into the `Btf` model costs seconds in Python; CO-RE and
ksym lookups touch a few hundred types. `LazyBtf` makes one pass that records where each type
record starts (reading only its kind and length), decodes a type when it is asked for, and
builds the name index on first use. It answers the same queries as `Btf` (`[id]`, `len`,
`resolve`, `size_of`), so code written against `Btf` (CO-RE, type compatibility) takes either.

Module BTFs are *split* BTF: their type ids and string offsets continue after their base's
(vmlinux), and their types refer to base types freely. `LazyBtf.from_bytes(data, base=vmlinux)`
reads one; ids below `start_id` are answered by the base.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Callable

from bpfglobals.elf.binary import Reader, cstring
from bpfglobals.elf.btf import BtfQueries
from bpfglobals.elf.btf_parse import BTF_MAGIC, HEADER, parse_type
from bpfglobals.elf.btf_types import BtfKind, BtfType, Void
from bpfglobals.errors import BtfError

# bytes that follow the 12-byte common record: (fixed, per vlen entry)
_EXTRA: dict[int, tuple[int, int]] = {
    BtfKind.INT: (4, 0),
    BtfKind.ARRAY: (12, 0),
    BtfKind.STRUCT: (0, 12),
    BtfKind.UNION: (0, 12),
    BtfKind.ENUM: (0, 8),
    BtfKind.FUNC_PROTO: (0, 8),
    BtfKind.VAR: (4, 0),
    BtfKind.DATASEC: (0, 12),
    BtfKind.DECL_TAG: (4, 0),
    BtfKind.ENUM64: (0, 12),
}
_MAX_KIND = max(BtfKind)
_FIXED = [_EXTRA.get(k, (0, 0))[0] for k in range(32)]  # by kind number: list lookups are fastest
_PER = [_EXTRA.get(k, (0, 0))[1] for k in range(32)]
_NAME_INFO = struct.Struct("<II")


def essential_name(name: str) -> str:
    """libbpf's essential name: the part before the last `X___Y` flavor separator (X and Y
    not underscores): `foo___v2` -> `foo`, `a___b___c` -> `a___b`, `__u32` stays `__u32`."""
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1 : i + 4] == "___" and name[i + 4] != "_":
            return name[: i + 1]
    return name


class LazyBtf(BtfQueries):
    """Raw BTF, indexed once, decoded per type on demand. Read-only."""

    def __init__(
        self,
        data: bytes,
        base: LazyBtf | None,
        type_start: int,
        offsets: array,
        name_offs: array,
        kinds: bytes,
        strings: bytes,
    ) -> None:
        self._data = data
        self.base = base
        self._type_start = type_start
        self._offsets = offsets  # record offset of own type i (id start_id + i) in `data`
        self._name_offs = name_offs
        self._kinds = kinds
        self.strings = strings  # this blob's own string section
        self.start_id = len(base) if base is not None else 1
        self._base_str_len = len(base.strings) if base is not None else 0
        self._cache: dict[int, BtfType] = {}
        self._by_name_off: dict[int, list[int]] | None = None  # built on the first lookup
        self._essential_cache: dict[str, list[int]] = {}

    @classmethod
    def from_bytes(cls, data: bytes, base: LazyBtf | None = None) -> LazyBtf:
        """Index raw BTF `data` (one pass over the record headers, nothing decoded)."""
        if len(data) < HEADER.size:
            raise BtfError("BTF: shorter than its header")
        magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(
            data
        )
        if magic != BTF_MAGIC:
            raise BtfError(f"BTF: bad magic {magic:#x} (expected {BTF_MAGIC:#x})")
        if version != 1:
            raise BtfError(f"BTF: unsupported version {version}")
        t0, t1 = hdr_len + type_off, hdr_len + type_off + type_len
        s0, s1 = hdr_len + str_off, hdr_len + str_off + str_len
        if hdr_len < HEADER.size or t1 > len(data) or s1 > len(data):
            raise BtfError(f"BTF: header sections lie outside the {len(data)}-byte blob")
        strings = data[s0:s1]
        if base is None and strings[:1] != b"\0":
            raise BtfError("BTF: string section does not start with an empty string")
        offsets, name_offs, kinds = array("I"), array("I"), bytearray()
        add_offset, add_name, add_kind = offsets.append, name_offs.append, kinds.append
        unpack, fixed, per = _NAME_INFO.unpack_from, _FIXED, _PER
        pos = t0
        while pos < t1:
            if pos + 12 > t1:
                raise BtfError(f"BTF: type record at byte {pos} is truncated")
            name_off, info = unpack(data, pos)
            kind = (info >> 24) & 0x1F
            if kind == 0 or kind > _MAX_KIND:
                raise BtfError(f"BTF: type record at byte {pos} has unknown kind {kind}")
            add_offset(pos)
            add_name(name_off)
            add_kind(kind)
            pos += 12 + fixed[kind] + per[kind] * (info & 0xFFFF)
        if pos != t1:
            raise BtfError("BTF: the last type record runs past the type section")
        return cls(data, base, t0, offsets, name_offs, bytes(kinds), strings)

    # --- the `Btf` query surface -------------------------------------------------------

    def __len__(self) -> int:
        """All type ids, base included (libbpf's btf__type_cnt)."""
        return self.start_id + len(self._offsets)

    def __getitem__(self, type_id: int) -> BtfType:
        if type_id < self.start_id:
            if self.base is not None:
                return self.base[type_id]
            if type_id == 0:
                return Void()
        t = self._cache.get(type_id)
        if t is not None:
            return t
        i = type_id - self.start_id
        if not 0 <= i < len(self._offsets):
            raise BtfError(f"BTF type id {type_id} out of range (have {len(self)} types)")
        r = Reader(self._data, "BTF type section", self._offsets[i], error=BtfError)
        t = parse_type(r, self.string_at, type_id)
        self._cache[type_id] = t
        return t

    # --- cheap per-record queries and the name index ---------------------------------------

    def string_at(self, offset: int, where: str = "BTF") -> str:
        """The string at `offset`; a split BTF's offsets continue its base's string section."""
        if self.base is not None:
            if offset < self._base_str_len:
                return self.base.string_at(offset, where)
            offset -= self._base_str_len
        return cstring(self.strings, offset, where, BtfError)

    def kind_of(self, type_id: int) -> BtfKind:
        """The kind of a type without decoding it."""
        if type_id < self.start_id:
            return self.base.kind_of(type_id) if self.base is not None else BtfKind.VOID
        return BtfKind(self._kinds[type_id - self.start_id])

    def name_of(self, type_id: int) -> str:
        """The name of a type without decoding the rest of it."""
        if type_id < self.start_id:
            return self.base.name_of(type_id) if self.base is not None else ""
        return self.string_at(self._name_offs[type_id - self.start_id])

    def own_ids(self) -> range:
        """The ids this blob defines (all but the base's)."""
        return range(self.start_id, len(self))

    def find(self, kind: BtfKind, name: str) -> int | None:
        """The first own type id of this kind and name, or None (as `Btf.find`)."""
        for tid in self.ids_by_name(name):
            if self.kind_of(tid) == kind:
                return tid
        return None

    def ids_by_name(self, name: str) -> list[int]:
        """Ids of this blob's own types (not its base's) called exactly `name`."""
        if not name:
            return []
        return self._ids_at(self._string_offsets(name.encode() + b"\0", lambda full: True))

    def ids_by_essential_name(self, name: str) -> list[int]:
        """Own ids whose essential name (flavor suffix dropped) equals `name`'s: the CO-RE
        candidates of `name` (`task_struct` and `task_struct___2`, not `task_struct___a___b`)."""
        ess = essential_name(name)
        if not ess:
            return []
        if ess not in self._essential_cache:  # every load of every object asks again
            exact = self._string_offsets(ess.encode() + b"\0", lambda full: True)
            flavored = self._string_offsets(
                ess.encode() + b"___", lambda full: essential_name(full) == ess
            )
            self._essential_cache[ess] = self._ids_at(exact + flavored)
        return list(self._essential_cache[ess])

    def _string_offsets(self, needle: bytes, keep: Callable[[str], bool]) -> list[int]:
        """Offsets (in this blob's numbering) of strings starting with `needle` that `keep`
        accepts: a C-speed scan of the string tables instead of decoding every name."""
        tables = [(self.strings, self._base_str_len)]
        base = self.base
        while base is not None:  # a split blob's names may live in its base's strings
            tables.append((base.strings, base._base_str_len))
            base = base.base
        out = []
        for table, shift in tables:
            if table.startswith(needle):
                out.append(shift)
            i = table.find(b"\0" + needle)
            while i >= 0:
                end = table.index(b"\0", i + 1)
                if keep(table[i + 1 : end].decode(errors="replace")):
                    out.append(shift + i + 1)
                i = table.find(b"\0" + needle, i + 1)
        return out

    def _ids_at(self, name_offsets: list[int]) -> list[int]:
        if self._by_name_off is None:
            index: dict[int, list[int]] = {}
            start = self.start_id
            for i, off in enumerate(self._name_offs):
                if off:
                    index.setdefault(off, []).append(start + i)
            self._by_name_off = index
        return sorted(tid for off in name_offsets for tid in self._by_name_off.get(off, ()))
