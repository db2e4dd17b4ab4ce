"""Parse .BTF.ext: per-section func_info, line_info and CO-RE relocation records.

In object files record offsets are byte offsets into the section; we keep instruction indexes
(as the kernel wants them) relative to the function that contains the record.
"""

from __future__ import annotations

import struct

from bpfglobals.elf.binary import Reader, cstring
from bpfglobals.errors import BtfError
from bpfglobals.frozen import frozen, mutable, replace

BTF_EXT_MAGIC = 0xEB9F
_HEADER = struct.Struct("<HBBI")  # magic, version, flags, hdr_len


@frozen
class FuncInfo:
    """A .BTF.ext func_info record: the BTF FUNC of the function at `insn_off`."""

    insn_off: int  # instruction index
    type_id: int  # a BTF FUNC


@frozen
class LineInfo:
    """A .BTF.ext line_info record: the source line of the instruction at `insn_off`."""

    insn_off: int  # instruction index
    file_name_off: int  # offsets into the .BTF string section (kept valid by encode_btf)
    line_off: int
    line_col: int  # line << 10 | column

    @property
    def line(self) -> int:
        return self.line_col >> 10


@frozen
class CoreRelo:
    """A .BTF.ext CO-RE record: the field/type/enum access at `insn_off` to relocate."""

    insn_off: int  # instruction index
    type_id: int  # the local root type
    access: str  # the access string ("0:1:2"), as its offset's string in .BTF
    kind: int  # enum bpf_core_relo_kind
    index: int = 0  # position among its section's records (libbpf's "relo #N")
    access_off: int = 0  # offset of `access` in the .BTF strings (the kernel's CO-RE wants it)


@mutable
class BtfExt:
    """The records of .BTF.ext, per ELF section name."""

    func_info: dict[str, list[FuncInfo]]
    line_info: dict[str, list[LineInfo]]
    core_relos: dict[str, list[CoreRelo]]


def shift(records: tuple, delta: int) -> tuple:
    """The same records with instruction offsets moved by `delta` (when code is relocated)."""
    return tuple(replace(r, insn_off=r.insn_off + delta) for r in records)


def parse_btf_ext(data: bytes, strings: bytes) -> BtfExt:
    r = Reader(data, ".BTF.ext header", error=BtfError)
    magic, version, _flags, hdr_len = r.unpack(_HEADER)
    if magic != BTF_EXT_MAGIC or version != 1:
        raise BtfError(f".BTF.ext: bad magic {magic:#x} or version {version}")
    if not 24 <= hdr_len <= len(data):
        raise BtfError(f".BTF.ext: header length {hdr_len} invalid for {len(data)} bytes")
    fi_off, fi_len, li_off, li_len = (r.u32() for _ in range(4))
    co_off = co_len = 0
    if hdr_len >= 32:
        co_off, co_len = r.u32(), r.u32()
    if any(data[32:hdr_len]):  # header fields past core_relo: parts we would not read
        raise BtfError(
            f".BTF.ext: header of {hdr_len} bytes describes parts newer than func_info, "
            "line_info and core_relo, which bpfglobals does not know"
        )

    def block(off: int, length: int, what: str, min_rec: int, fmt: struct.Struct):
        out: dict[str, list[tuple]] = {}
        if length == 0:
            return out
        b = Reader(data, f".BTF.ext {what}", hdr_len + off, hdr_len + off + length, BtfError)
        rec_size = b.u32()
        if rec_size < min_rec or rec_size % 4:
            raise BtfError(f".BTF.ext {what}: record size {rec_size} is invalid")
        while b.remaining() > 0:
            sec_off, count = b.u32(), b.u32()
            sec = cstring(strings, sec_off, f".BTF.ext {what}", BtfError)
            b.need(count * rec_size)
            recs = out.setdefault(sec, [])
            for _ in range(count):
                raw = b.take(rec_size)
                recs.append(fmt.unpack_from(raw))
        return out

    fi = block(fi_off, fi_len, "func_info", 8, struct.Struct("<II"))
    li = block(li_off, li_len, "line_info", 16, struct.Struct("<IIII"))
    co = block(co_off, co_len, "core_relo", 16, struct.Struct("<IIII"))
    for what, blk in (("func_info", fi), ("line_info", li), ("core_relo", co)):
        for sec, recs in blk.items():
            if any(rec[0] % 8 for rec in recs):
                raise BtfError(f".BTF.ext {what} of {sec}: instruction offset not a multiple of 8")
    return BtfExt(
        {s: [FuncInfo(o // 8, t) for o, t in v] for s, v in fi.items()},
        {s: [LineInfo(o // 8, f, lo, lc) for o, f, lo, lc in v] for s, v in li.items()},
        {
            s: [
                CoreRelo(o // 8, t, cstring(strings, a, ".BTF.ext core_relo", BtfError), k, i, a)
                for i, (o, t, a, k) in enumerate(v)
            ]
            for s, v in co.items()
        },
    )
