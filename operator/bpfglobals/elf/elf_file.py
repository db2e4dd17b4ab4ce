"""The ELF container, read once with pyelftools into plain records.

This is the single boundary where pyelftools' own exceptions (and the struct/index errors it
lets through on corrupted files) become `ElfError`; everything above works on these records.
"""

from __future__ import annotations

import io
import struct

from bpfglobals.elf.binary import cstring
from bpfglobals.errors import ElfError
from bpfglobals.frozen import field, frozen, mutable

EM_BPF = 247
SHT_PROGBITS, SHT_SYMTAB, SHT_NOBITS, SHT_REL = 1, 2, 8, 9
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STV_DEFAULT, STV_INTERNAL, STV_HIDDEN, STV_PROTECTED = 0, 1, 2, 3
SHN_UNDEF, SHN_ABS, SHN_COMMON = 0, 0xFFF1, 0xFFF2


@frozen
class Section:
    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    data: bytes = field(repr=False)  # empty for NOBITS


@frozen
class Symbol:
    index: int
    name: str
    value: int
    size: int
    type: int
    bind: int
    shndx: int
    visibility: int = 0  # st_other & 3: STV_DEFAULT, STV_INTERNAL, STV_HIDDEN, STV_PROTECTED


@frozen
class Rel:
    offset: int  # byte offset in the target section
    sym: int  # symbol index
    type: int  # R_BPF_*


@mutable
class ElfImage:
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
    # pyelftools is imported here, when an ELF is parsed, not with this module: its import
    # (construct, the DWARF readers) is most of a `bpfglobals load`'s start-up, and a load of
    # an object met before reads its parse from the cache (elf/object_cache.py) instead.
    from elftools.common.exceptions import ELFError, ELFParseError

    try:
        return _read(data, name)
    except ElfError:
        raise
    except (ELFError, ELFParseError, *_PARSE_ERRORS) as e:
        raise ElfError(f"{name}: not a valid ELF object ({type(e).__name__}: {e})") from e
    except Exception as e:  # construct's own error types vary across versions
        if type(e).__module__.startswith(("construct", "elftools")):
            raise ElfError(f"{name}: not a valid ELF object ({type(e).__name__}: {e})") from e
        raise


def _read(data: bytes, name: str) -> ElfImage:
    from elftools.elf.elffile import ELFFile

    if data[:4] != b"\x7fELF":
        raise ElfError(f"{name}: not an ELF file (bad magic)")
    elf = ELFFile(io.BytesIO(data))
    if elf.elfclass != 64 or not elf.little_endian:
        raise ElfError(f"{name}: expected a 64-bit little-endian BPF object")
    if elf["e_machine"] not in ("EM_BPF", EM_BPF):
        raise ElfError(f"{name}: e_machine is {elf['e_machine']}, not EM_BPF (clang -target bpf)")
    if elf["e_type"] != "ET_REL":
        raise ElfError(f"{name}: e_type is {elf['e_type']}, expected a relocatable object (.o)")
    nsec = elf.num_sections()
    if not 0 < nsec <= 0xFF00:
        raise ElfError(f"{name}: {nsec} sections is not plausible")
    headers = [elf._get_section_header(i) for i in range(nsec)]
    shstrndx = elf["e_shstrndx"]
    if not 0 < shstrndx < nsec:
        raise ElfError(f"{name}: missing section-name string table (e_shstrndx={shstrndx})")
    shstr = _body(data, headers[shstrndx], shstrndx, name)
    sections = [
        Section(
            i,
            cstring(shstr, h["sh_name"], f"{name}: section {i} name"),
            _num(h["sh_type"]),
            h["sh_flags"],
            h["sh_offset"],
            h["sh_size"],
            h["sh_link"],
            h["sh_info"],
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


def _body(data: bytes, h, index: int, name: str) -> bytes:
    if _num(h["sh_type"]) == SHT_NOBITS:
        return b""
    offset, size = h["sh_offset"], h["sh_size"]
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
            other & 3,
        )
        for i, (st_name, info, other, shndx, value, size) in enumerate(
            _SYM.iter_unpack(symtab.data)
        )
    ]


_SHT_NAMES = {
    "SHT_NULL": 0,
    "SHT_PROGBITS": 1,
    "SHT_SYMTAB": 2,
    "SHT_STRTAB": 3,
    "SHT_RELA": 4,
    "SHT_HASH": 5,
    "SHT_DYNAMIC": 6,
    "SHT_NOTE": 7,
    "SHT_NOBITS": 8,
    "SHT_REL": 9,
}


def _num(v: object) -> int:
    """pyelftools names known section types; we compare raw numbers."""
    return v if isinstance(v, int) else _SHT_NAMES.get(str(v), -1)
