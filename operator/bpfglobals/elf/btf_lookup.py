"""Find one named type in a large BTF blob (the kernel's /sys/kernel/btf/vmlinux) by id.

Parsing all ~100k vmlinux types into the model costs seconds; attaching an fentry program
needs one id. This walks the raw records, reading only each record's kind and size, and
compares names by string-table offset.
"""

from __future__ import annotations

from bpfglobals.elf.btf_parse import BTF_MAGIC, HEADER, TYPE_RECORD
from bpfglobals.elf.btf_types import BtfKind
from bpfglobals.errors import BtfError

# bytes that follow the 12-byte common record: fixed, and per member (vlen)
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


def find_type_id(data: bytes, name: str, kind: BtfKind) -> int | None:
    """The id of the type of `kind` called `name` in raw BTF `data`, or None."""
    if len(data) < HEADER.size:
        raise BtfError("BTF: shorter than its header")
    magic, _version, _flags, hdr_len, type_off, type_len, str_off, str_len = HEADER.unpack_from(
        data
    )
    if magic != BTF_MAGIC:
        raise BtfError(f"BTF: bad magic {magic:#x}")
    strings = data[hdr_len + str_off : hdr_len + str_off + str_len]
    wanted = _offsets(strings, name.encode())
    if not wanted:
        return None
    pos, end, tid = hdr_len + type_off, hdr_len + type_off + type_len, 1
    while pos + TYPE_RECORD.size <= end:
        name_off, info, _ = TYPE_RECORD.unpack_from(data, pos)
        k, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        if k == kind and name_off in wanted:
            return tid
        fixed, per = _EXTRA.get(k, (0, 0))
        pos += TYPE_RECORD.size + fixed + per * vlen
        tid += 1
    return None


def _offsets(strings: bytes, name: bytes) -> set[int]:
    """Every offset in the string table where the string `name` starts."""
    out, needle = set(), name + b"\0"
    if strings.startswith(needle):
        out.add(0)
    i = strings.find(b"\0" + needle)
    while i >= 0:
        out.add(i + 1)
        i = strings.find(b"\0" + needle, i + 1)
    return out
