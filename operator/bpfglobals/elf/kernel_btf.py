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

from array import array

from bpfglobals.elf.binary import Reader, cstring
from bpfglobals.elf.btf import BtfQueries
from bpfglobals.elf.btf_parse import BTF_MAGIC, HEADER, TYPE_RECORD, parse_type
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
        self._by_name: dict[str, list[int]] | None = None
        self._by_essential: dict[str, list[int]] | None = None

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
        unpack, extra = TYPE_RECORD.unpack_from, _EXTRA
        pos = t0
        while pos < t1:
            if pos + 12 > t1:
                raise BtfError(f"BTF: type record at byte {pos} is truncated")
            name_off, info, _ = unpack(data, pos)
            kind = (info >> 24) & 0x1F
            if kind == 0 or kind > _MAX_KIND:
                raise BtfError(f"BTF: type record at byte {pos} has unknown kind {kind}")
            offsets.append(pos)
            name_offs.append(name_off)
            kinds.append(kind)
            fixed, per = extra.get(kind, (0, 0))
            pos += 12 + fixed + per * (info & 0xFFFF)
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

    def ids_by_name(self, name: str) -> list[int]:
        """Ids of this blob's own types (not its base's) called exactly `name`."""
        if self._by_name is None:
            self._by_name = self._name_index()
        return list(self._by_name.get(name, ()))

    def find(self, kind: BtfKind, name: str) -> int | None:
        """The first own type id of this kind and name, or None (as `Btf.find`)."""
        for tid in self.ids_by_name(name):
            if self.kind_of(tid) == kind:
                return tid
        return None

    def ids_by_essential_name(self, name: str) -> list[int]:
        """Own ids whose essential name (flavor suffix dropped) equals `name`'s."""
        if self._by_essential is None:
            if self._by_name is None:
                self._by_name = self._name_index()
            index: dict[str, list[int]] = {}
            for n, ids in self._by_name.items():
                index.setdefault(essential_name(n), []).extend(ids)
            for ids in index.values():
                ids.sort()
            self._by_essential = index
        return list(self._by_essential.get(essential_name(name), ()))

    def _name_index(self) -> dict[str, list[int]]:
        by_off: dict[int, list[int]] = {}
        start = self.start_id
        for i, off in enumerate(self._name_offs):
            if off:
                by_off.setdefault(off, []).append(start + i)
        out: dict[str, list[int]] = {}
        for off, ids in by_off.items():
            out.setdefault(self.string_at(off), []).extend(ids)
        return out
