"""No record is ever ignored: for every test object, walk the ELF with pyelftools directly —
every entry of every relocation section, every .BTF.ext func_info/line_info/core_relo record,
every undefined symbol — and check that the loader's ledger accounts for each one that
belongs to a loaded program (applied == present), or that the load was refused with an error
naming what it could not apply.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpfglobals.elf import read_object
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.loader import load
from tests.support.bpftool import bpftool
from tests.support.iproute2 import global_pins_removed
from tests.support.kernel_facts import core_task_defines
from tests.support.progs import EXAMPLES, PROGS, compile_bpf, corpus_flags

SOURCES = (
    sorted(p.name.removesuffix(".bpf.c") for p in PROGS.glob("*.bpf.c"))
    + sorted(f"examples/{p.name}" for p in EXAMPLES.glob("*.bpf.c"))
    + sorted(f"corpus/{p.name}" for p in (PROGS / "corpus").glob("*.bpf.c"))
)
SHF_EXECINSTR = 0x4


@dataclass
class ElfRecords:
    """What an object holds, read without bpfglobals' parser."""

    funcs: dict[str, tuple[str, int, int]]  # name -> (section, first byte, end byte)
    programs: set[str]  # functions in non-.text code sections
    rels: dict[str, set[int]]  # code section -> byte offsets of its relocations
    debug_rel_sections: set[str]  # relocation sections of DWARF/.BTF (not loaded)
    map_inits: int  # relocations in .maps: initial slots of prog arrays / maps of maps
    other_rel_sections: set[str]  # relocation sections of anything else
    ext: dict[str, dict[str, set[int]]]  # kind -> section -> byte offsets
    undefined: set[str]
    calls: dict[str, set[str]]  # function -> functions it calls or takes the address of


def _btf_ext(elf: ELFFile) -> dict[str, dict[str, set[int]]]:
    out: dict[str, dict[str, set[int]]] = {"func_info": {}, "line_info": {}, "core_relo": {}}
    btf, ext = elf.get_section_by_name(".BTF"), elf.get_section_by_name(".BTF.ext")
    if btf is None or ext is None:
        return out
    b = btf.data()
    hdr_len, _, _, str_off, _ = struct.unpack_from("<IIIII", b, 4)
    strings = b[hdr_len + str_off :]
    e = ext.data()
    (ext_hdr,) = struct.unpack_from("<I", e, 4)
    offs = (
        struct.unpack_from("<IIIIII", e, 8)
        if ext_hdr >= 32
        else (*struct.unpack_from("<IIII", e, 8), 0, 0)
    )
    for kind, (off, length) in zip(out, (offs[0:2], offs[2:4], offs[4:6]), strict=True):
        if not length:
            continue
        pos, end = ext_hdr + off, ext_hdr + off + length
        (rec_size,) = struct.unpack_from("<I", e, pos)
        pos += 4
        while pos < end:
            name_off, count = struct.unpack_from("<II", e, pos)
            pos += 8
            sec = strings[name_off : strings.index(b"\0", name_off)].decode()
            for _ in range(count):
                (insn_off,) = struct.unpack_from("<I", e, pos)
                out[kind].setdefault(sec, set()).add(insn_off)
                pos += rec_size
    return out


def _walk(path: Path) -> ElfRecords:
    with path.open("rb") as f:
        elf = ELFFile(f)
        secs = [elf.get_section(i) for i in range(elf.num_sections())]
        symtab = elf.get_section_by_name(".symtab")
        syms = list(symtab.iter_symbols())
        code = {i for i, s in enumerate(secs) if s["sh_flags"] & SHF_EXECINSTR and s["sh_size"]}
        funcs = {
            s.name: (secs[s["st_shndx"]].name, s["st_value"], s["st_value"] + s["st_size"])
            for s in syms
            if s["st_info"]["type"] == "STT_FUNC" and s["st_shndx"] in code
        }

        def func_at(section: str, byte: int) -> str:
            return next(n for n, (s, a, b) in funcs.items() if s == section and a <= byte < b)

        rels: dict[str, set[int]] = {}
        debug, other = set(), set()
        map_inits = 0
        calls: dict[str, set[str]] = {n: set() for n in funcs}
        relocated: dict[tuple[str, int], object] = {}
        for s in secs:
            if s["sh_type"] != "SHT_REL":
                continue
            target = secs[s["sh_info"]]
            if target.name == ".maps":
                map_inits += s.num_relocations()
                continue
            if s["sh_info"] not in code:
                (debug if target.name.startswith((".debug_", ".BTF")) else other).add(s.name)
                continue
            for r in s.iter_relocations():
                rels.setdefault(target.name, set()).add(r["r_offset"])
                relocated[(target.name, r["r_offset"])] = syms[r["r_info_sym"]]
        for i in code:
            sec = secs[i]
            data = sec.data()
            for at in range(0, len(data), 8):
                op, regs, _, imm = struct.unpack_from("<BBhi", data, at)
                sym = relocated.get((sec.name, at))
                caller = func_at(sec.name, at)
                if op == 0x85 and regs >> 4 == 1:  # a BPF-to-BPF call (or a kfunc, by symbol)
                    if sym is None:
                        calls[caller].add(func_at(sec.name, at + 8 * (imm + 1)))
                    elif sym["st_shndx"] != "SHN_UNDEF":
                        tsec = secs[sym["st_shndx"]].name
                        calls[caller].add(func_at(tsec, sym["st_value"] + 8 * (imm + 1)))
                elif op == 0x18 and sym is not None and sym["st_shndx"] in code:
                    calls[caller].add(func_at(secs[sym["st_shndx"]].name, sym["st_value"] + imm))
        undefined = {s.name for s in syms if s["st_shndx"] == "SHN_UNDEF" and s.name}
        return ElfRecords(
            funcs,
            {n for n, (s, _, _) in funcs.items() if s != ".text"},
            rels,
            debug,
            map_inits,
            other,
            _btf_ext(elf),
            undefined,
            calls,
        )


def _reachable(rec: ElfRecords, prog: str) -> set[str]:
    seen, todo = set(), [prog]
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo += rec.calls[f]
    return seen


def _expected(rec: ElfRecords, prog: str) -> dict[str, set[tuple[str, int]]]:
    out: dict[str, set[tuple[str, int]]] = {"rel": set(), "func_info": set(), "line_info": set()}
    out["core_relo"] = set()
    for f in _reachable(rec, prog):
        sec, a, b = rec.funcs[f]
        out["rel"] |= {(sec, o) for o in rec.rels.get(sec, ()) if a <= o < b}
        for kind in ("func_info", "line_info", "core_relo"):
            out[kind] |= {(sec, o) for o in rec.ext[kind].get(sec, ()) if a <= o < b}
    return out


def _compiled(bpf_object, vmlinux_h: Path, source: str, tmp: Path) -> Path:
    """Fixtures that need facts of this kernel get them as their own tests give them."""
    if source == "core_task":
        return compile_bpf(PROGS / "core_task.bpf.c", tmp, core_task_defines())
    if source.startswith("corpus/"):
        return compile_bpf(PROGS / source, tmp, corpus_flags(vmlinux_h))
    return bpf_object(source)


@pytest.fixture(autouse=True)
def _global_pins_removed() -> Iterator[None]:
    """legacy_iproute2 (PIN_GLOBAL_NS) pins its shared map at bpffs/tc/globals on load."""
    with global_pins_removed():
        yield


@pytest.mark.parametrize("source", SOURCES)
def test_loader_accounts_for_every_record_of_loaded_programs(
    bpf_object, vmlinux_h, source, tmp_path
) -> None:
    path = _compiled(bpf_object, vmlinux_h, source, tmp_path)
    rec = _walk(path)
    present = sum(len(v) for v in rec.rels.values()) + sum(
        len(v) for kind in rec.ext.values() for v in kind.values()
    )
    assert present, f"{source}: a BPF object without relocations or .BTF.ext tests nothing"
    if rec.other_rel_sections:
        with pytest.raises(BpfGlobalsError, match=sorted(rec.other_rel_sections)[0]):
            read_object(path)
        return
    try:
        obj = read_object(path)
    except BpfGlobalsError as e:  # only map initial values may be refused at read time
        assert rec.map_inits and ".maps" in str(e), (source, str(e))
        return
    assert {e.name for e in obj.externs} == rec.undefined, "every undefined symbol is an extern"
    loadable = [p.name for p in obj.programs if p.type.prog_type]
    try:
        loaded = load(obj, programs=loadable)
    except BpfGlobalsError as e:
        core = [p for p in loadable if _expected(rec, p)["core_relo"]]
        if core:  # refused because of CO-RE records, saying so
            assert "CO-RE" in str(e), e
            return
        # refused by the kernel (e.g. a typed ksym this kernel cannot address): the error
        # names the program, so nothing was silently dropped on the way
        assert any(p in str(e) for p in loadable), e
        return
    with loaded:
        assert set(loaded.externs) == rec.undefined, "every extern is resolved or defaulted"
        # each .maps relocation is one initial slot the kernel now holds
        slots = sum(
            len(bpftool("map", "dump", "id", str(m.info.id)) or [])
            for m in loaded.maps.values()
            if not m.internal and m.type in ("prog_array", "array_of_maps", "hash_of_maps")
        )
        assert slots == rec.map_inits, (source, slots, rec.map_inits)
        for name, prog in loaded.programs.items():
            want = _expected(rec, name)
            got: dict[str, set[tuple[str, int]]] = {k: set() for k in want}
            for kind, sec, off in prog.ledger.records:
                got["rel" if kind.startswith("rel:") else kind].add((sec, off))
            assert got == want, (source, name)
            applied = sum(len(v) for v in got.values())
            assert applied == sum(len(v) for v in want.values()), (source, name)
