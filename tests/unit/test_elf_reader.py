"""The object reader agrees with llvm-readelf and bpftool on every fixture."""

from __future__ import annotations

import pytest

from bpfglobals.elf import RelocKind, encode_btf, parse_btf, read_object
from bpfglobals.elf.btf_types import BtfKind, Datasec, Linkage
from tests.support.oracles import (
    bpftool_btf,
    readelf_relocations,
    readelf_sections,
    readelf_symbols,
)

FIXTURES = ["globals", "calls", "maps", "legacy_maps", "examples/xdp_drop.bpf.c"]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_variables_match_the_symbol_table(bpf_object, fixture: str) -> None:
    path = bpf_object(fixture)
    obj = read_object(path)
    syms = {s.name: s for s in readelf_symbols(path) if s.type == "OBJECT"}
    variables = obj.variables()
    for v in variables:
        sym = syms[v.name]
        assert (v.section, v.offset, v.size) == (sym.section, sym.value, sym.size), v.name
        assert v.linkage == ("static" if sym.bind == "LOCAL" else "global")
    # every object symbol in a data section is a variable we know
    data_secs = {d.name for d in obj.data_sections}
    expected = {n for n, s in syms.items() if s.section in data_secs}
    assert {v.name for v in variables} == expected


@pytest.mark.parametrize("fixture", FIXTURES)
def test_data_sections_and_defaults_match_readelf(bpf_object, fixture: str) -> None:
    path = bpf_object(fixture)
    obj = read_object(path)
    sections = readelf_sections(path)
    raw = path.read_bytes()
    for d in obj.data_sections:
        assert d.size == sections[d.name][1]
        if d.file_offset is None:
            assert d.data == bytes(d.size)
        else:
            assert raw[d.file_offset : d.file_offset + d.size] == d.data
        for v in d.variables:
            assert v.default == d.data[v.offset : v.offset + v.size]
    expected = {
        n
        for n, (_, size) in sections.items()
        if size and n.split(".")[1:2] and n.startswith((".data", ".rodata", ".bss"))
    }
    assert {d.name for d in obj.data_sections} == expected


@pytest.mark.parametrize("fixture", FIXTURES)
def test_programs_match_function_symbols(bpf_object, fixture: str) -> None:
    path = bpf_object(fixture)
    obj = read_object(path)
    funcs = {s.name: s for s in readelf_symbols(path) if s.type == "FUNC"}
    for p in [*obj.programs, *obj.subprograms]:
        f = funcs.pop(p.name)
        assert (p.section, p.section_offset, len(p.insns)) == (f.section, f.value, f.size)
    assert funcs == {}
    assert all(p.section != ".text" for p in obj.programs)
    assert all(s.section == ".text" for s in obj.subprograms)


@pytest.mark.parametrize("fixture", FIXTURES)
def test_relocations_match_readelf(bpf_object, fixture: str) -> None:
    path = bpf_object(fixture)
    obj = read_object(path)
    ours = sorted(
        (p.section, (p.section_offset // 8 + r.insn_index) * 8, r.symbol)
        for p in [*obj.programs, *obj.subprograms]
        for r in p.relocations
    )
    code = {p.section for p in [*obj.programs, *obj.subprograms]}
    theirs = sorted(
        (sec, off, sym)
        for sec, rels in readelf_relocations(path).items()
        if sec in code
        for off, _type, sym in rels
    )
    assert ours == theirs


def test_relocation_kinds_and_targets(bpf_object) -> None:
    obj = read_object(bpf_object("calls"))
    progs = {p.name: p for p in obj.programs}
    subs = {s.name: s for s in obj.subprograms}
    kinds = {(r.kind, r.symbol) for r in progs["sum_prog"].relocations}
    assert (RelocKind.CALL, "global_mul") in kinds
    calls = [r for r in progs["sum_prog"].relocations if r.kind == RelocKind.CALL]
    callee_offsets = {subs["add3"].section_offset // 8, subs["global_mul"].section_offset // 8}
    assert {r.offset for r in calls} == callee_offsets
    func_refs = [r for r in progs["loop_prog"].relocations if r.kind == RelocKind.FUNC]
    assert [r.offset for r in func_refs] == [subs["loop_cb"].section_offset // 8]
    strings = [r for r in progs["loop_prog"].relocations if r.target == ".rodata.str1.1"]
    assert strings and strings[0].kind == RelocKind.DATA
    assert {d.name for d in obj.data_sections} == {".rodata", ".rodata.str1.1"}


def test_btf_names_match_bpftool(bpf_object) -> None:
    path = bpf_object("globals")
    obj = read_object(path)
    assert obj.btf is not None
    theirs = bpftool_btf(path)
    assert len(theirs) == len(obj.btf) - 1
    for t in theirs:
        ours = obj.btf[t["id"]]
        assert ours.kind.name == t["kind"], t
        assert ours.name == ("" if t["name"] == "(anon)" else t["name"]), t
        if t["kind"] == "DATASEC":
            assert [v["type_id"] for v in t["vars"]] == sorted(
                (v.type for v in ours.vars), key=[v["type_id"] for v in t["vars"]].index
            )


def test_datasec_fixup_sizes_and_offsets(bpf_object) -> None:
    path = bpf_object("globals")
    obj = read_object(path)
    raw_datasecs = {t["name"]: t for t in bpftool_btf(path) if t["kind"] == "DATASEC"}
    assert all(t["size"] == 0 for t in raw_datasecs.values())  # what clang leaves
    sections = readelf_sections(path)
    syms = {s.name: s for s in readelf_symbols(path)}
    for t in obj.btf.types:
        if isinstance(t, Datasec):
            assert t.size == sections[t.name][1]
            offsets = [v.offset for v in t.vars]
            assert offsets == sorted(offsets)
            for v in t.vars:
                assert v.offset == syms[obj.btf[v.type].name].value


@pytest.mark.parametrize("fixture", ["globals", "calls", "maps"])
def test_btf_encode_round_trip(bpf_object, fixture: str) -> None:
    btf = read_object(bpf_object(fixture)).btf
    again = parse_btf(encode_btf(btf))
    assert again.types == btf.types
    assert again.strings[: len(btf.strings)] == btf.strings


def test_maps_and_program_types(bpf_object) -> None:
    obj = read_object(bpf_object("maps"))
    maps = {m.name: m for m in obj.maps}
    assert (maps["flows"].type, maps["flows"].key_size, maps["flows"].value_size) == ("hash", 12, 8)
    assert maps["counters"].pinning == 1 and maps["counters"].type == "percpu_array"
    assert (maps["recent"].key_size, maps["recent"].flags) == (4, 2)
    assert maps["events"].type == "ringbuf" and maps["events"].max_entries == 4096
    legacy = read_object(bpf_object("legacy_maps"))
    assert [(m.name, m.legacy, m.max_entries) for m in legacy.maps] == [
        ("legacy_hash", True, 16),
        ("legacy_array", True, 2),
    ]
    assert legacy.kernel_version == 0x060100 and legacy.license == "GPL"
    calls = read_object(bpf_object("calls"))
    types = {p.name: (p.type.prog_type, p.type.attach_type) for p in calls.programs}
    assert types == {
        "sum_prog": ("socket_filter", None),
        "loop_prog": ("socket_filter", None),
        "tc_prog": ("sched_cls", None),
    }


def test_internal_map_names_follow_libbpf(bpf_object) -> None:
    from bpfglobals.elf.data_sections import internal_map_name

    assert internal_map_name("cfg", ".rodata") == "cfg.rodata"
    assert internal_map_name("cfg", ".bss") == "cfg.bss"
    assert internal_map_name("xdp_drop", ".rodata") == "xdp_drop.rodata"
    assert internal_map_name("averyverylongname", ".data") == "averyver.data"
    assert internal_map_name("x", ".rodata.extra") == ".rodata.extra"
    assert internal_map_name("x", ".data.a-very-long-name") == ".data.a_very_lo"


def test_hidden_global_subprograms_are_static_in_the_btf_as_libbpf_makes_them(bpf_object) -> None:
    obj = read_object(bpf_object("hidden_subprog"))
    assert obj.btf is not None
    fill = obj.btf[obj.btf.find(BtfKind.FUNC, "fill")]
    assert fill.linkage == Linkage.STATIC  # the ELF symbol is global, visibility hidden
    assert [s.linkage for s in obj.subprograms if s.name == "fill"] == ["global"]
    entry = obj.btf[obj.btf.find(BtfKind.FUNC, "hidden_call")]
    assert entry.linkage == Linkage.GLOBAL  # programs keep theirs
    types = {p.name: (p.type.prog_type, p.type.attach_target) for p in obj.programs}
    assert types["getpid_entry"] == ("kprobe", "getpid")  # libbpf's ksyscall/ section
