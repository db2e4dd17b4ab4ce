"""Classify the relocations of program code, as libbpf's `bpf_program__record_reloc` does.

The instruction decides the kind: a `call` with src_reg BPF_PSEUDO_CALL is a BPF-to-BPF call;
an `ldimm64` is a map, global data or function reference depending on what the symbol is.
An extern symbol (undefined, global or weak, untyped) makes a call a kfunc call and an
`ldimm64` an extern load. Anything else (other undefined symbols, unknown relocation types)
is refused with its location.
"""

from __future__ import annotations

import struct

from bpfglobals.elf.data_sections import data_kind
from bpfglobals.elf.elf_file import (
    SHF_EXECINSTR,
    SHN_UNDEF,
    STT_SECTION,
    ElfImage,
    Rel,
    Section,
    Symbol,
)
from bpfglobals.elf.externs import is_extern
from bpfglobals.elf.model import Relocation, RelocKind
from bpfglobals.errors import ElfError

R_BPF_64_64 = 1  # ldimm64
R_BPF_64_32 = 10  # call
BPF_LD_IMM64 = 0x18
BPF_CALL = 0x85
BPF_PSEUDO_CALL = 1
BPF_PSEUDO_FUNC = 4
MAPS_SECTIONS = (".maps", "maps")
_INSN = struct.Struct("<BBhi")  # code, dst:4|src:4, off, imm


def decode_insn(insns: bytes, index: int) -> tuple[int, int, int, int, int]:
    """(code, dst_reg, src_reg, off, imm) of instruction `index`."""
    code, regs, off, imm = _INSN.unpack_from(insns, index * 8)
    return code, regs & 0xF, regs >> 4, off, imm


def classify(elf: ElfImage, sec: Section, rel: Rel) -> Relocation:
    where = f"section {sec.name}, instruction {rel.offset // 8}"
    if rel.offset % 8 or rel.offset + 8 > len(sec.data):
        raise ElfError(f"{where}: relocation offset {rel.offset} is not an instruction")
    idx = rel.offset // 8
    sym = elf.symbol(rel.sym, where)
    what = f"{where} (symbol '{sym.name or '<section>'}')"
    if rel.type not in (R_BPF_64_64, R_BPF_64_32):
        raise ElfError(f"{what}: relocation type {rel.type} is not supported in program code")
    if sym.shndx == SHN_UNDEF:
        return _extern(sec, rel, sym, idx, what)
    target = elf.section(sym.shndx, what) if sym.shndx < 0xFF00 else None
    if target is None:
        raise ElfError(f"{what}: symbol in special section {sym.shndx:#x} is not supported")
    code, _dst, src, _off, imm = decode_insn(sec.data, idx)
    if code == BPF_CALL and src == BPF_PSEUDO_CALL:
        if not target.flags & SHF_EXECINSTR:
            raise ElfError(f"{what}: call into non-code section {target.name}")
        # libbpf: callee index = symbol index + imm + 1 (clang encodes imm relative to it)
        callee = sym.value // 8 + imm + 1
        return Relocation(idx, RelocKind.CALL, sym.name or target.name, target.name, callee)
    if code != BPF_LD_IMM64:
        raise ElfError(f"{what}: relocation on instruction with opcode {code:#x} (not ldimm64)")
    if rel.offset + 16 > len(sec.data):
        raise ElfError(f"{what}: ldimm64 truncated at the end of the section")
    if target.flags & SHF_EXECINSTR:
        # A function address (callbacks): clang leaves src_reg 0 and the byte offset in
        # st_value + imm; the loader makes it BPF_PSEUDO_FUNC, as libbpf does.
        if (sym.value + imm) % 8:
            raise ElfError(f"{what}: function reference to a misaligned offset")
        callee = (sym.value + imm) // 8
        return Relocation(idx, RelocKind.FUNC, sym.name or target.name, target.name, callee)
    if target.name in MAPS_SECTIONS:
        if sym.type == STT_SECTION:
            raise ElfError(f"{what}: map reference through a section symbol is not supported")
        return Relocation(idx, RelocKind.MAP, sym.name, sym.name, 0)
    if data_kind(target) is not None:
        # Section symbols carry the offset in imm; variable symbols in st_value (+ imm).
        return Relocation(
            idx, RelocKind.DATA, sym.name or target.name, target.name, sym.value + imm
        )
    raise ElfError(f"{what}: ldimm64 of section {target.name}, which is neither a map nor data")


def _extern(sec: Section, rel: Rel, sym: Symbol, idx: int, what: str) -> Relocation:
    """libbpf's RELO_EXTERN_FUNC (a call) or RELO_EXTERN_VAR (an ldimm64)."""
    if not is_extern(sym) or not sym.name:
        raise ElfError(
            f"{what}: undefined symbol that is not an extern (binding {sym.bind}, type "
            f"{sym.type}); only global or weak untyped externs (__kconfig, __ksym) resolve"
        )
    code = decode_insn(sec.data, idx)[0]
    if code == BPF_CALL:
        return Relocation(idx, RelocKind.EXTERN_FUNC, sym.name, sym.name)
    if code != BPF_LD_IMM64 or rel.offset + 16 > len(sec.data):
        raise ElfError(f"{what}: extern on instruction with opcode {code:#x} (not ldimm64/call)")
    return Relocation(idx, RelocKind.EXTERN_VAR, sym.name, sym.name)
