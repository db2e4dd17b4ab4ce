"""The ELF container, read once with `struct` into plain records.

This is the single boundary where the struct/index errors of a corrupted file become
`ElfError`; everything above works on these records.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from bpfglobals.elf.binary import cstring
from bpfglobals.errors import ElfError

EM_BPF = 247
SHT_PROGBITS, SHT_SYMTAB, SHT_NOBITS, SHT_REL = 1, 2, 8, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
SHN_UNDEF, SHN_ABS, SHN_COMMON = 0, 0xFFF1, 0xFFF2


@dataclass(frozen=True)
class Section:
    """One section header and its bytes."""

    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    data: bytes = field(repr=False)  # empty for NOBITS


@dataclass(frozen=True)
class Symbol:
    """One Elf64_Sym, its name resolved."""

    index: int
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int


@dataclass(frozen=True)
class Rel:
    """One Elf64_Rel entry."""

    offset: int  # byte offset in the target section
    sym: int  # symbol index
    type: int  # R_BPF_*


@dataclass
class ElfImage:
    """The sections, symbols and relocations of one relocatable BPF object."""

    sections: list[Section]
    symbols: list[Symbol]
    rels: dict[int, list[Rel]]  # target section index -> its relocations

    def by_name(self, name: str) -> Section | None:
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section(self, index: int, where: str) -> Section:
        if not 0 <= index < len(self.sections):
            raise ElfError(f"{where}: section index {index} does not exist")
        return self.sections[index]

    def symbol(self, index: int, where: str) -> Symbol:
        if not 0 <= index < len(self.symbols):
            raise ElfError(f"{where}: symbol index {index} does not exist")
        return self.symbols[index]


_PARSE_ERRORS = (
    struct.error,
    IndexError,
    KeyError,
    ValueError,
    TypeError,
    AttributeError,
    AssertionError,
    UnicodeDecodeError,
    OverflowError,
    MemoryError,
    RecursionError,
)


def read_elf(data: bytes, name: str) -> ElfImage:
    try:
        return _read(data, name)
    except ElfError:
        raise
    except _PARSE_ERRORS as e:
        raise ElfError(f"{name}: not a valid ELF object ({type(e).__name__}: {e})") from e


_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
_SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
ELFCLASS64, ELFDATA2LSB, ET_REL = 2, 1, 1
_ET_NAMES = {0: "ET_NONE", 1: "ET_REL", 2: "ET_EXEC", 3: "ET_DYN", 4: "ET_CORE"}
_EM_NAMES = {3: "EM_386", 40: "EM_ARM", 62: "EM_X86_64", 183: "EM_AARCH64", 243: "EM_RISCV"}
SHN_XINDEX = 0xFFFF


class _Shdr:
    """One Elf64_Shdr, fields by their ELF names."""

    __slots__ = ("sh_flags", "sh_info", "sh_link", "sh_name", "sh_offset", "sh_size", "sh_type")

    def __init__(self, raw: tuple[int, ...]) -> None:
        (self.sh_name, self.sh_type, self.sh_flags, _addr, self.sh_offset, self.sh_size) = raw[:6]
        self.sh_link, self.sh_info = raw[6], raw[7]


def _read(data: bytes, name: str) -> ElfImage:
    """The ELF and section headers are read with `struct` (pyelftools' ELFFile imports its
    DWARF and construct machinery: ~50 ms of every `bpfglobals load`; symbols and relocations
    were already read here). tests/kernel/test_record_accounting.py walks every test object
    with pyelftools as the independent oracle."""
    if data[:4] != b"\x7fELF":
        raise ElfError(f"{name}: not an ELF file (bad magic)")
    if len(data) < _EHDR.size:
        raise ElfError(f"{name}: not a valid ELF object (header truncated at {len(data)} bytes)")
    ehdr = _EHDR.unpack_from(data)
    ident, e_type, e_machine, shoff = ehdr[0], ehdr[1], ehdr[2], ehdr[6]
    shentsize, shnum, shstrndx = ehdr[11], ehdr[12], ehdr[13]
    if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB:
        raise ElfError(f"{name}: expected a 64-bit little-endian BPF object")
    if e_machine != EM_BPF:
        machine = _EM_NAMES.get(e_machine, e_machine)
        raise ElfError(f"{name}: e_machine is {machine}, not EM_BPF (clang -target bpf)")
    if e_type != ET_REL:
        kind = _ET_NAMES.get(e_type, e_type)
        raise ElfError(f"{name}: e_type is {kind}, expected a relocatable object (.o)")
    if shoff and shentsize != _SHDR.size:
        raise ElfError(f"{name}: not a valid ELF object (e_shentsize={shentsize})")

    def header(i: int) -> _Shdr:
        at = shoff + i * _SHDR.size
        if at + _SHDR.size > len(data):
            raise ElfError(f"{name}: section header {i} runs past the end of file")
        return _Shdr(_SHDR.unpack_from(data, at))

    first = header(0) if shoff else None
    nsec = shnum if shnum or first is None else first.sh_size  # > 0xff00: count in section 0
    if shstrndx == SHN_XINDEX and first is not None:
        shstrndx = first.sh_link
    if not 0 < nsec <= 0xFF00:
        raise ElfError(f"{name}: {nsec} sections is not plausible")
    headers = [header(i) for i in range(nsec)]
    if not 0 < shstrndx < nsec:
        raise ElfError(f"{name}: missing section-name string table (e_shstrndx={shstrndx})")
    shstr = _body(data, headers[shstrndx], shstrndx, name)
    sections = [
        Section(
            i,
            cstring(shstr, h.sh_name, f"{name}: section {i} name"),
            h.sh_type,
            h.sh_flags,
            h.sh_offset,
            h.sh_size,
            h.sh_link,
            h.sh_info,
            _body(data, h, i, name) if i else b"",
        )
        for i, h in enumerate(headers)
    ]
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if len(symtabs) != 1:
        raise ElfError(f"{name}: expected one symbol table, found {len(symtabs)}")
    symbols = _symbols(symtabs[0], sections, name)
    rels: dict[int, list[Rel]] = {}
    for s in sections:
        if s.type == SHT_REL:
            if s.size % _REL.size:
                raise ElfError(f"{name}: relocation section {s.name} size {s.size} is not /16")
            rels.setdefault(s.info, []).extend(
                Rel(off, info >> 32, info & 0xFFFFFFFF) for off, info in _REL.iter_unpack(s.data)
            )
    return ElfImage(sections, symbols, rels)


_REL = struct.Struct("<QQ")  # Elf64_Rel: r_offset, r_info (sym << 32 | type)
_SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym: name, info, other, shndx, value, size


def _body(data: bytes, h: _Shdr, index: int, name: str) -> bytes:
    if h.sh_type == SHT_NOBITS:
        return b""
    offset, size = h.sh_offset, h.sh_size
    if offset + size > len(data):
        raise ElfError(f"{name}: section {index} [{offset}, +{size}) runs past the end of file")
    return data[offset : offset + size]


def _symbols(symtab: Section, sections: list[Section], name: str) -> list[Symbol]:
    if symtab.size % _SYM.size:
        raise ElfError(f"{name}: symbol table size {symtab.size} is not a multiple of 24")
    if not 0 < symtab.link < len(sections):
        raise ElfError(f"{name}: symbol table links to missing string table {symtab.link}")
    strtab = sections[symtab.link].data
    return [
        Symbol(
            i,
            cstring(strtab, st_name, f"{name}: symbol {i}"),
            value,
            size,
            info & 0xF,
            info >> 4,
            shndx,
        )
        for i, (st_name, info, _other, shndx, value, size) in enumerate(
            _SYM.iter_unpack(symtab.data)
        )
    ]
