"""CO-RE at the object level, without loading: what `inspect` shows, and relocation errors
(naming program, record, instruction and spec) raised before any kernel object exists."""

from __future__ import annotations

import pytest

from bpfglobals.cli.inspect import describe
from bpfglobals.elf import read_object
from bpfglobals.elf.core_relo import CoreTarget
from bpfglobals.elf.kernel_btf import LazyBtf
from bpfglobals.loader import load
from bpfglobals.loader.core import relocate_object
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.kernel_btf import custom_btf
from tests.support.progs import PROGS, compile_bpf


def test_inspect_lists_core_relocations_per_program(bpf_object) -> None:
    info = describe(read_object(bpf_object("core_unguarded")))
    by_name = {p["name"]: p["core_relocations"] for p in info["programs"]}
    assert [r["kind"] for r in by_name["unguarded"]] == ["byte_off"]
    (r,) = by_name["unguarded"]
    assert r["type"] == "struct task_struct" and r["access"] == "0:1" and r["insn"] == 1
    assert (
        r["spec"]
        == "<byte_off> [8] struct task_struct.no_such_field_in_any_kernel (0:1 @ offset 4)"
    )
    assert sorted(x["kind"] for x in by_name["fine"]) == ["byte_off", "byte_off", "field_exists"]


def test_ambiguous_candidates_fail_the_load_naming_the_relocation(bpf_object, tmp_path) -> None:
    obj = read_object(bpf_object("core_custom"))
    target_path = compile_bpf(PROGS / "btf" / "point_ambiguous.c", tmp_path)
    target = CoreTarget(custom_btf(str(target_path)), str(target_path))
    with pytest.raises(LoadError) as e:
        relocate_object(obj, obj.programs, target)
    msg = str(e.value)
    assert "prog 'read_point': relo #" in msg and "field offset ambiguity" in msg
    assert "struct point.x (0:0 @ offset 0)" in msg and str(target_path) in msg


def test_relocation_leaves_the_parsed_object_untouched(bpf_object, tmp_path) -> None:
    obj = read_object(bpf_object("core_custom"))
    before = obj.programs[0].insns
    target_path = compile_bpf(PROGS / "btf" / "point_target.c", tmp_path)
    with open(target_path, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    relocated, done = relocate_object(obj, obj.programs, CoreTarget(custom_btf(str(target_path))))
    assert obj.programs[0].insns == before != relocated.programs[0].insns
    assert len(done) == len(obj.programs[0].core_relos) > 5
    assert isinstance(custom_btf(str(target_path)), LazyBtf)


def test_custom_target_with_the_kernels_core_is_refused_up_front(bpf_object, tmp_path) -> None:
    target = compile_bpf(PROGS / "btf" / "point_target.c", tmp_path)
    with pytest.raises(LoadError, match="needs our CO-RE; the kernel's relocates against its own"):
        load(read_object(bpf_object("core_custom")), target_btf=str(target), core_in_kernel=True)
