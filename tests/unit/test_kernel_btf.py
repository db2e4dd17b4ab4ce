"""The lazy kernel BTF reader answers exactly what the full parser answers, for vmlinux and for
split (module) BTF, without decoding what nobody asks for; and libbpf's type compatibility."""

from __future__ import annotations

import random
import struct
import subprocess
import time

import pytest

from bpfglobals.elf import btf_types as bt
from bpfglobals.elf import encode_btf, parse_btf
from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_compat import types_are_compat
from bpfglobals.elf.btf_types import (
    Array,
    BtfKind,
    Enum,
    EnumValue,
    FuncProto,
    Fwd,
    Int,
    IntEncoding,
    Member,
    Param,
    Ptr,
    Struct,
)
from bpfglobals.elf.kernel_btf import LazyBtf, essential_name
from bpfglobals.errors import BtfError

VMLINUX = "/sys/kernel/btf/vmlinux"


@pytest.fixture(scope="module")
def vmlinux_raw() -> bytes:
    with open(VMLINUX, "rb") as f:
        return f.read()


def test_lazy_vmlinux_decodes_every_type_as_the_full_parser_does(vmlinux_raw: bytes) -> None:
    full = parse_btf(vmlinux_raw)
    lazy = LazyBtf.from_bytes(vmlinux_raw)
    assert len(lazy) == len(full) > 10_000
    for tid in range(0, len(full), 3):  # a third of them: the rest costs seconds, not coverage
        assert lazy[tid] == full[tid], tid
        assert lazy.kind_of(tid) == full[tid].kind
        assert lazy.name_of(tid) == getattr(full[tid], "name", "")
    sample = random.Random(7).sample(range(1, len(full)), 500)
    for tid in sample:
        assert lazy.resolve(tid) == full.resolve(tid)


def test_lazy_name_index_matches_bpftool(vmlinux_raw: bytes) -> None:
    lazy = LazyBtf.from_bytes(vmlinux_raw)
    shown = subprocess.run(
        ["bpftool", "btf", "dump", "file", VMLINUX], capture_output=True, text=True, check=True
    ).stdout
    for name in ("task_struct", "sk_buff", "sock", "bpf_prog"):
        ids = lazy.ids_by_name(name)
        expected = [int(ln[1:].split("]")[0]) for ln in shown.splitlines() if f" '{name}' " in ln]
        assert ids == expected, name
        (sid,) = [i for i in ids if lazy.kind_of(i) == BtfKind.STRUCT]
        assert lazy.size_of(sid) == lazy[sid].size > 0
    assert lazy.ids_by_name("no_such_type_anywhere") == []


def test_indexing_vmlinux_is_cheap_and_decodes_nothing(vmlinux_raw: bytes) -> None:
    t0 = time.perf_counter()
    lazy = LazyBtf.from_bytes(vmlinux_raw)
    index_s = time.perf_counter() - t0
    assert lazy._cache == {}
    lazy.ids_by_name("task_struct")
    assert lazy._cache == {}  # names come from the index, not from decoding
    # a full parse costs seconds; the index must stay well under one (2 shared cores)
    assert index_s < 1.0, index_s


def test_essential_names_drop_the_flavor_suffix(vmlinux_raw: bytes) -> None:
    assert essential_name("task_struct___v510") == "task_struct"
    assert essential_name("task_struct") == "task_struct"
    assert essential_name("a___b___c") == "a___b"  # the last separator counts
    assert essential_name("x____y") == "x____y"  # four underscores: no separator
    assert essential_name("___x") == "___x"
    lazy = LazyBtf.from_bytes(vmlinux_raw)
    assert lazy.ids_by_essential_name("task_struct___old") == lazy.ids_by_name("task_struct")


def _split_blob(base: Btf, str_base_len: int) -> bytes:
    """A module-style split BTF by hand: a PTR to base type 1 and a struct using both."""
    n = len(base)
    strings = b"mod_thing\0next\0"
    types = struct.pack("<III", 0, 2 << 24, 1)  # [n] PTR -> base [1]
    types += struct.pack("<III", str_base_len, (4 << 24) | 2, 16)  # [n+1] struct mod_thing
    types += struct.pack("<III", 0, 1, 0)  # member '' (no name) : base [1] at bit 0
    types += struct.pack("<III", str_base_len + 10, n, 64)  # member next : [n] at bit 64
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings


def test_split_btf_continues_its_base_ids_and_strings() -> None:
    base_model = Btf([bt.Void(), Int("int", 4, IntEncoding.SIGNED, 32)])
    base = LazyBtf.from_bytes(encode_btf(base_model))
    split = LazyBtf.from_bytes(_split_blob(base_model, len(base.strings)), base)
    n = len(base)
    assert split.start_id == n == 2 and len(split) == 4
    assert split[1] == Int("int", 4, IntEncoding.SIGNED, 32)  # answered by the base
    assert split[n] == Ptr(1)
    s = split[n + 1]
    assert isinstance(s, Struct) and s.name == "mod_thing"
    assert [m.name for m in s.members] == ["", "next"]
    assert split.ids_by_name("mod_thing") == [n + 1]
    assert split.ids_by_name("int") == []  # own ids only: candidates search base and modules
    assert split.size_of(n + 1) == 16 and split.size_of(n) == 8
    with pytest.raises(BtfError, match="out of range"):
        split[len(split)]


def test_lazy_reader_refuses_truncated_records() -> None:
    blob = encode_btf(Btf([bt.Void(), Int("int", 4, IntEncoding.SIGNED, 32)]))
    hdr = list(struct.unpack_from("<HBBIIIII", blob))
    hdr[5] -= 2  # type_len cuts the INT's extra word
    bad = struct.pack("<HBBIIIII", *hdr) + blob[24:]
    with pytest.raises(BtfError, match=r"runs past|truncated"):
        LazyBtf.from_bytes(bad)


# --- types_are_compat (libbpf's bpf_core_types_are_compat) ---------------------------------

INT = Int("int", 4, IntEncoding.SIGNED, 32)
UINT = Int("unsigned int", 4, IntEncoding.NONE, 32)
LONG = Int("long", 8, IntEncoding.SIGNED, 64)


def _btf(*types) -> Btf:
    return Btf([bt.Void(), *types])


def test_compat_ignores_member_layout_but_not_kinds() -> None:
    local = _btf(INT, Struct("s", 4, (Member("a", 1, 0),)), Ptr(2), bt.Typedef("s_t", 2), Ptr(4))
    target = _btf(
        LONG, Struct("s", 16, (Member("b", 1, 0), Member("a", 1, 64))), Ptr(2), Fwd("s", False)
    )
    assert types_are_compat(local, 1, target, 1)  # ints of any size/sign
    assert types_are_compat(local, 2, target, 2)  # structs whatever their members
    assert types_are_compat(local, 3, target, 3)  # pointers to compatible types
    assert types_are_compat(local, 5, target, 3)  # typedefs below the top are looked through
    assert not types_are_compat(local, 4, target, 2)  # the outermost kinds must agree
    assert not types_are_compat(local, 2, target, 4)  # struct vs forward declaration
    assert not types_are_compat(local, 3, target, 1)  # pointer vs int


def test_compat_enums_and_arrays_and_bitfield_ints() -> None:
    local = _btf(
        Enum("e", 4, (EnumValue("A", 1),), False),
        Array(3, 3, 4),
        INT,
        Int("old_bf", 4, IntEncoding.NONE, 3, offset=2),
        bt.Modifier(BtfKind.CONST, 3),
    )
    target = _btf(
        Enum("e", 8, (EnumValue("B", 2),), True, BtfKind.ENUM64),
        Array(3, 3, 99),
        UINT,
        INT,
        bt.Modifier(BtfKind.VOLATILE, 3),
    )
    assert types_are_compat(local, 1, target, 1)  # ENUM vs ENUM64
    assert types_are_compat(local, 2, target, 2)  # arrays of any length, compatible elements
    assert not types_are_compat(local, 4, target, 3)  # legacy bitfield-like int
    # the outermost kinds must agree before qualifiers are skipped (libbpf checks both)
    assert not types_are_compat(local, 5, target, 3)
    assert not types_are_compat(local, 5, target, 5)  # const vs volatile: kinds differ


def test_compat_function_prototypes_by_params_and_return() -> None:
    local = _btf(
        INT,
        Ptr(0),
        FuncProto(1, (Param("a", 1), Param("b", 2))),
        FuncProto(1, (Param("a", 1),)),
        FuncProto(2, (Param("a", 1), Param("b", 2))),
    )
    target = _btf(
        UINT,
        Ptr(0),
        FuncProto(1, (Param("x", 1), Param("y", 2))),
        FuncProto(1, (Param("x", 2),)),
    )
    assert types_are_compat(local, 3, target, 3)  # param names do not matter
    assert not types_are_compat(local, 4, target, 3)  # different arity
    assert not types_are_compat(local, 4, target, 4)  # int param vs pointer param
    assert not types_are_compat(local, 5, target, 3)  # pointer return vs int return


def test_compat_reports_a_pointer_loop() -> None:
    loop = _btf(Ptr(2), Ptr(1))
    with pytest.raises(BtfError, match="too deep"):
        types_are_compat(loop, 1, loop, 1)


def test_compat_against_the_kernel(vmlinux_raw: bytes) -> None:
    kernel = LazyBtf.from_bytes(vmlinux_raw)
    (task,) = [i for i in kernel.ids_by_name("task_struct") if kernel.kind_of(i) == BtfKind.STRUCT]
    local = _btf(Struct("task_struct", 8, ()))
    assert types_are_compat(local, 1, kernel, task)
    # int do_unlinkat(int dfd, struct filename *name)
    proto = kernel[kernel.find(BtfKind.FUNC, "do_unlinkat")].type
    mine = _btf(INT, Struct("filename", 0, ()), Ptr(2))
    mine.types.append(FuncProto(1, (Param("dfd", 1), Param("name", 3))))
    assert types_are_compat(mine, 4, kernel, proto)
    wrong = _btf(INT, FuncProto(1, (Param("dfd", 1), Param("name", 1))))
    assert not types_are_compat(wrong, 2, kernel, proto)
