"""Programs and subprograms: the functions of executable sections, split by their symbols."""

from __future__ import annotations

from bpfglobals.elf.btf_ext import BtfExt, shift
from bpfglobals.elf.elf_file import (
    SHF_EXECINSTR,
    SHT_PROGBITS,
    STB_LOCAL,
    STT_FUNC,
    ElfImage,
    Section,
)
from bpfglobals.elf.model import ProgramSpec, ProgramType, SubprogramSpec
from bpfglobals.elf.progtypes import program_type
from bpfglobals.elf.relocations import classify
from bpfglobals.errors import ElfError

TEXT = ".text"


def read_programs(
    elf: ElfImage, ext: BtfExt | None
) -> tuple[list[ProgramSpec], list[SubprogramSpec]]:
    programs: list[ProgramSpec] = []
    subprograms: list[SubprogramSpec] = []
    for sec in elf.sections:
        if sec.type != SHT_PROGBITS or not sec.flags & SHF_EXECINSTR or sec.size == 0:
            continue
        if sec.size % 8:
            raise ElfError(f"section {sec.name}: size {sec.size} is not a multiple of 8")
        relocs = sorted(
            (classify(elf, sec, r) for r in elf.rels.get(sec.index, [])), key=lambda r: r.insn_index
        )
        funcs = sorted(
            (s for s in elf.symbols if s.shndx == sec.index and s.type == STT_FUNC),
            key=lambda s: s.value,
        )
        if not funcs:
            raise ElfError(f"section {sec.name}: code without any function symbol")
        ptype = None if sec.name == TEXT else _section_type(sec)
        claimed = 0
        for f in funcs:
            start, end = f.value, f.value + f.size
            if start % 8 or f.size % 8 or f.size == 0 or end > sec.size or start < claimed:
                raise ElfError(
                    f"section {sec.name}: function '{f.name}' [{start}, {end}) is not a valid, "
                    "non-overlapping range of instructions"
                )
            claimed = end
            first, last = start // 8, end // 8
            mine = tuple(
                r.__class__(r.insn_index - first, r.kind, r.symbol, r.target, r.offset)
                for r in relocs
                if first <= r.insn_index < last
            )
            fi = li = co = ()
            if ext is not None:
                fi = shift(
                    tuple(x for x in ext.func_info.get(sec.name, ()) if first <= x.insn_off < last),
                    -first,
                )
                li = shift(
                    tuple(x for x in ext.line_info.get(sec.name, ()) if first <= x.insn_off < last),
                    -first,
                )
                co = shift(
                    tuple(
                        x for x in ext.core_relos.get(sec.name, ()) if first <= x.insn_off < last
                    ),
                    -first,
                )
            common = dict(
                name=f.name,
                section=sec.name,
                insns=sec.data[start:end],
                section_offset=start,
                relocations=mine,
                linkage="static" if f.bind == STB_LOCAL else "global",
                func_info=fi,
                line_info=li,
                core_relos=co,
            )
            if ptype is None:
                subprograms.append(SubprogramSpec(**common))
            else:
                programs.append(ProgramSpec(type=ptype, **common))
        inside = {i for f in funcs for i in range(f.value // 8, (f.value + f.size) // 8)}
        stray = [r for r in relocs if r.insn_index not in inside]
        if stray:
            raise ElfError(
                f"section {sec.name}: relocation at instruction {stray[0].insn_index} lies "
                "outside every function"
            )
    _check_btf_ext_coverage(elf, ext, programs, subprograms)
    return programs, subprograms


def _check_btf_ext_coverage(
    elf: ElfImage,
    ext: BtfExt | None,
    programs: list[ProgramSpec],
    subprograms: list[SubprogramSpec],
) -> None:
    """Every func_info/line_info/core_relo record lies in a function: one that does not would
    be dropped without a word, so it is refused."""
    if ext is None:
        return
    ranges: dict[str, list[tuple[int, int]]] = {}
    for f in [*programs, *subprograms]:
        first = f.section_offset // 8
        ranges.setdefault(f.section, []).append((first, first + len(f.insns) // 8))
    for what, table in (
        ("func_info", ext.func_info),
        ("line_info", ext.line_info),
        ("core_relo", ext.core_relos),
    ):
        for sec, records in table.items():
            spans = ranges.get(sec, [])
            for rec in records:
                if not any(a <= rec.insn_off < b for a, b in spans):
                    raise ElfError(
                        f".BTF.ext {what} record for section '{sec}' instruction "
                        f"{rec.insn_off} lies in no function of that section"
                    )


def _section_type(sec: Section) -> ProgramType:
    # An unknown section is only an error if the program is loaded (as in libbpf): the
    # loader refuses an empty prog_type with the section name.
    return program_type(sec.name) or ProgramType("", None)
