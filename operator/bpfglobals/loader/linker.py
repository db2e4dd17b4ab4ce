"""Build one program's final instruction stream: the libbpf `bpf_object__relocate` step.

Pure: it appends every subprogram the program reaches (transitively) after it, points each
BPF-to-BPF call and function reference at the appended copy, moves `.BTF.ext` func/line info
and CO-RE records along, and lists the map/data references left for the loader to fill in
with map fds.
"""

from __future__ import annotations

import struct

from bpfglobals.elf.btf_ext import CoreRelo, FuncInfo, LineInfo, shift
from bpfglobals.elf.model import ObjectSpec, ProgramSpec, Relocation, RelocKind, SubprogramSpec
from bpfglobals.elf.relocations import BPF_CALL, decode_insn
from bpfglobals.frozen import field, mutable
from bpfglobals.kernel.constants import BPF_PSEUDO_CALL, BPF_PSEUDO_FUNC
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.ledger import Ledger

Function = ProgramSpec | SubprogramSpec


@mutable
class LinkedProgram:
    """A program with its subprograms appended, and the references still to patch."""

    spec: ProgramSpec
    insns: bytearray
    map_refs: list[tuple[int, Relocation]]  # (absolute insn index, MAP or DATA relocation)
    func_info: list[FuncInfo]
    line_info: list[LineInfo]
    functions: list[str]  # names, in layout order (the program first)
    core_relos: list[tuple[str, CoreRelo]]  # (function name, record at its absolute insn)
    extern_refs: list[tuple[int, Relocation]] = field(default_factory=list)  # EXTERN_*
    # absolute insn index of a map/extern reference -> (ELF section, byte offset) it came from
    origin: dict[int, tuple[str, int]] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)  # records applied so far
    layout: list[Function] = field(default_factory=list)  # the functions, in layout order


def function_table(obj: ObjectSpec) -> dict[tuple[str, int], Function]:
    """(section, first instruction index in the section) -> function."""
    return {(f.section, f.section_offset // 8): f for f in [*obj.programs, *obj.subprograms]}


def set_imm(insns: bytearray, index: int, imm: int, src_reg: int | None = None) -> None:
    off = index * 8
    if src_reg is not None:
        insns[off + 1] = (insns[off + 1] & 0x0F) | (src_reg << 4)
    struct.pack_into("<i", insns, off + 4, imm)


def link_program(prog: ProgramSpec, table: dict[tuple[str, int], Function]) -> LinkedProgram:
    order: list[Function] = [prog]
    start = {(prog.section, prog.section_offset // 8): 0}
    insns = bytearray(prog.insns)
    map_refs: list[tuple[int, Relocation]] = []
    extern_refs: list[tuple[int, Relocation]] = []
    origin: dict[int, tuple[str, int]] = {}
    ledger = Ledger()
    i = 0
    while i < len(order):
        fn = order[i]
        base = start[(fn.section, fn.section_offset // 8)]
        relocs = {r.insn_index: r for r in fn.relocations}
        for j in range(len(fn.insns) // 8):
            code, _dst, src, _off, imm = decode_insn(fn.insns, j)
            r = relocs.get(j)
            is_call = code == BPF_CALL and src == BPF_PSEUDO_CALL
            if r is not None and r.kind in _DEFERRED:
                # the loader fills these in (map fds, extern values) and records them
                (extern_refs if r.kind in EXTERN_KINDS else map_refs).append((base + j, r))
                origin[base + j] = (fn.section, fn.section_offset + 8 * j)
                continue
            if r is None and not is_call:
                continue
            # A call or function reference: with a relocation the ELF says where it goes;
            # a call without one is PC-relative inside its own section.
            key = (r.target, r.offset) if r else (fn.section, fn.section_offset // 8 + j + imm + 1)
            callee = table.get(key)
            if callee is None:
                raise LoadError(
                    f"program '{prog.name}': function '{fn.name}' instruction {j} calls "
                    f"{key[0]}+{key[1]}, which is not the start of a function"
                )
            if key not in start:
                start[key] = len(insns) // 8
                order.append(callee)
                insns += callee.insns
            rel = start[key] - (base + j + 1)
            kind = RelocKind.FUNC if r is not None and r.kind == RelocKind.FUNC else RelocKind.CALL
            set_imm(insns, base + j, rel, BPF_PSEUDO_FUNC if kind == RelocKind.FUNC else None)
            if r is not None:
                ledger.add(f"rel:{r.kind.value}", fn.section, fn.section_offset + 8 * j)
        i += 1
    func_info: list[FuncInfo] = []
    line_info: list[LineInfo] = []
    core_relos: list[tuple[str, CoreRelo]] = []
    for fn in order:
        base = start[(fn.section, fn.section_offset // 8)]
        func_info += [FuncInfo(fi.insn_off + base, fi.type_id) for fi in fn.func_info]
        line_info += [
            LineInfo(li.insn_off + base, li.file_name_off, li.line_off, li.line_col)
            for li in fn.line_info
        ]
        core_relos += [(fn.name, c) for c in shift(fn.core_relos, base)]
        for what, records in (("func_info", fn.func_info), ("line_info", fn.line_info)):
            for x in records:
                ledger.add(what, fn.section, fn.section_offset + 8 * x.insn_off)
    return LinkedProgram(
        prog,
        insns,
        map_refs,
        func_info,
        line_info,
        [f.name for f in order],
        core_relos,
        extern_refs,
        origin,
        ledger,
        order,
    )


EXTERN_KINDS = (RelocKind.EXTERN_VAR, RelocKind.EXTERN_FUNC)
_DEFERRED = (RelocKind.MAP, RelocKind.DATA, *EXTERN_KINDS)
