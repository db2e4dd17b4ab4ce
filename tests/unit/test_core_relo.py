"""CO-RE relocation without a kernel: made-up local and target BTFs, one relocation kind and one
libbpf rule per test (relo_core.c semantics), and the instruction patches that follow."""

from __future__ import annotations

import struct

import pytest

from bpfglobals.elf import encode_btf
from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_compat import types_match
from bpfglobals.elf.btf_ext import CoreRelo
from bpfglobals.elf.btf_types import (
    Array,
    BtfKind,
    Enum,
    EnumValue,
    Fwd,
    Int,
    IntEncoding,
    Member,
    Ptr,
    Struct,
    Typedef,
    Void,
)
from bpfglobals.elf.core_relo import POISON_IMM, CoreTarget, patch, relocate_function, resolve
from bpfglobals.elf.core_spec import CoreError, CoreKind
from bpfglobals.elf.kernel_btf import LazyBtf

U32 = Int("unsigned int", 4, IntEncoding.NONE, 32)
S32 = Int("int", 4, IntEncoding.SIGNED, 32)
U64 = Int("unsigned long", 8, IntEncoding.NONE, 64)
S64 = Int("long", 8, IntEncoding.SIGNED, 64)
K = CoreKind


def _btf(*types) -> Btf:
    return Btf([Void(), *types])


def _target(*types) -> CoreTarget:
    return CoreTarget(LazyBtf.from_bytes(encode_btf(_btf(*types))), "made-up")


def _relo(type_id: int, access: str, kind: CoreKind, insn: int = 0) -> CoreRelo:
    return CoreRelo(insn, type_id, access, int(kind))


def _insn(code: int, off: int = 0, imm: int = 0, regs: int = 0) -> bytes:
    return struct.pack("<BBhi", code, regs, off, imm)


def _fields(insns: bytes, i: int) -> tuple[int, int, int, int]:
    return struct.unpack_from("<BBhi", insns, i * 8)


# local: struct s { int a; unsigned int b; }   ([1] int, [2] unsigned int, [3] struct s)
LOCAL = _btf(S32, U32, Struct("s", 8, (Member("a", 1, 0), Member("b", 2, 32))))


def test_field_offset_follows_the_target_through_anonymous_members() -> None:
    # target: struct s { long x; union { unsigned int b; long c; }; int a; }
    target = _target(
        S64,
        U32,
        S32,
        Struct("", 8, (Member("b", 2, 0), Member("c", 1, 0)), BtfKind.UNION),
        Struct("s", 24, (Member("x", 1, 0), Member("", 4, 64), Member("a", 3, 128))),
    )
    b = resolve(_relo(3, "0:1", K.FIELD_BYTE_OFFSET), LOCAL, target)
    a = resolve(_relo(3, "0:0", K.FIELD_BYTE_OFFSET), LOCAL, target)
    assert (b.orig_val, b.new_val, b.poison) == (4, 8, False)
    assert (a.orig_val, a.new_val) == (0, 16)
    assert "s.b (0:1:0 @ offset 8)" in b.target  # raw spec walks the anonymous union


def test_flavors_match_by_essential_name_and_must_agree() -> None:
    local = _btf(S32, Struct("s___mine", 4, (Member("a", 1, 0),)))
    same = _target(
        S32, Struct("s", 8, (Member("a", 1, 32),)), Struct("s___2", 8, (Member("a", 1, 32),))
    )
    assert resolve(_relo(2, "0:0", K.FIELD_BYTE_OFFSET), local, same).new_val == 4
    clash = _target(
        S32, Struct("s", 8, (Member("a", 1, 32),)), Struct("s___2", 4, (Member("a", 1, 0),))
    )
    with pytest.raises(CoreError, match="field offset ambiguity"):
        resolve(_relo(2, "0:0", K.FIELD_BYTE_OFFSET), local, clash)
    # different sizes at the same offset: a decision ambiguity
    sized = _target(
        S32, S64, Struct("s", 8, (Member("a", 1, 0),)), Struct("s___2", 8, (Member("a", 2, 0),))
    )
    with pytest.raises(CoreError, match="relocation decision ambiguity"):
        resolve(_relo(2, "0:0", K.FIELD_BYTE_SIZE), local, sized)


def test_candidates_are_narrowed_for_later_records_of_the_same_type() -> None:
    local = _btf(S32, Struct("s", 8, (Member("a", 1, 0), Member("b", 1, 32))))
    target = _target(
        S32,
        Struct("s", 4, (Member("a", 1, 0),)),  # no b
        Struct("s___2", 8, (Member("b", 1, 0), Member("a", 1, 32))),
    )
    # b only exists in s___2: from now on s___2 is the only candidate, so a is at 4 (not 0/4)
    assert resolve(_relo(2, "0:1", K.FIELD_BYTE_OFFSET), local, target).new_val == 0
    assert resolve(_relo(2, "0:0", K.FIELD_BYTE_OFFSET), local, target).new_val == 4


def test_missing_field_exists_is_zero_and_reads_are_poisoned() -> None:
    target = _target(S32, Struct("s", 4, (Member("a", 1, 0),)))
    exists = resolve(_relo(3, "0:1", K.FIELD_EXISTS), LOCAL, target)
    assert (exists.orig_val, exists.new_val, exists.poison) == (1, 0, False)
    read = resolve(_relo(3, "0:1", K.FIELD_BYTE_OFFSET), LOCAL, target)
    assert read.poison
    insns = bytearray(_insn(0x61, off=4, regs=0x12) + _insn(0x95))  # r2 = *(u32 *)(r1 + 4)
    patch(insns, 0, read)
    assert _fields(insns, 0) == (0x85, 0, 0, POISON_IMM)
    assert _fields(insns, 1) == (0x95, 0, 0, 0)


def test_incompatible_field_types_do_not_match() -> None:
    target = _target(S32, Ptr(1), Struct("s", 16, (Member("a", 1, 0), Member("b", 2, 64))))
    assert resolve(_relo(3, "0:1", K.FIELD_BYTE_OFFSET), LOCAL, target).poison  # int vs ptr


def test_load_size_follows_unsigned_and_pointer_fields_and_poisons_signed_ones() -> None:
    grown = _target(U64, S32, Struct("s", 16, (Member("a", 2, 0), Member("b", 1, 64))))
    res = resolve(_relo(3, "0:1", K.FIELD_BYTE_OFFSET), LOCAL, grown)
    insns = bytearray(_insn(0x61, off=4, regs=0x12))  # LDX W
    patch(insns, 0, res)
    assert _fields(insns, 0) == (0x79, 0x12, 8, 0)  # LDX DW at the new offset
    signed = _target(S32, S64, Struct("s", 16, (Member("a", 1, 0), Member("b", 2, 64))))
    res = resolve(_relo(3, "0:1", K.FIELD_BYTE_OFFSET), LOCAL, signed)
    assert res.fail_memsz_adjust
    insns = bytearray(_insn(0x61, off=4, regs=0x12))
    patch(insns, 0, res)
    assert _fields(insns, 0) == (0x85, 0, 0, POISON_IMM)


def test_instruction_that_disagrees_with_the_record_is_refused() -> None:
    target = _target(S32, U32, Struct("s", 8, (Member("a", 1, 0), Member("b", 2, 32))))
    res = resolve(_relo(3, "0:1", K.FIELD_BYTE_OFFSET), LOCAL, target)
    with pytest.raises(CoreError, match=r"unexpected insn #0 \(LDX/ST/STX\) value: got 12, exp 4"):
        patch(bytearray(_insn(0x61, off=12)), 0, res)
    with pytest.raises(CoreError, match=r"unexpected insn #0 \(ALU/ALU64\) value: got 9"):
        patch(bytearray(_insn(0xB7, imm=9)), 0, res)
    with pytest.raises(CoreError, match="uses a register"):
        patch(bytearray(_insn(0x0F)), 0, res)
    with pytest.raises(CoreError, match="unrecognized insn"):
        patch(bytearray(_insn(0x05)), 0, res)


def test_bitfields_give_offset_size_and_shifts_of_the_target() -> None:
    local = _btf(U32, Struct("bf", 4, (Member("x", 1, 0, 3),)))
    # target: unsigned int pad:5, x:3 at bit 37 of a 8-byte struct
    target = _target(U32, Struct("bf", 8, (Member("pad", 1, 32, 5), Member("x", 1, 37, 3))))
    got = {
        k: resolve(_relo(2, "0:0", k), local, target).new_val
        for k in (K.FIELD_BYTE_OFFSET, K.FIELD_BYTE_SIZE, K.FIELD_LSHIFT_U64, K.FIELD_RSHIFT_U64)
    }
    # a 4-byte load at byte 4, the field at bits 5..7 of it
    assert got == {
        K.FIELD_BYTE_OFFSET: 4,
        K.FIELD_BYTE_SIZE: 4,
        K.FIELD_LSHIFT_U64: 64 - (37 + 3 - 32),
        K.FIELD_RSHIFT_U64: 61,
    }
    assert resolve(_relo(2, "0:0", K.FIELD_SIGNED), local, target).new_val == 0
    signed = _target(S32, Struct("bf", 4, (Member("x", 1, 0, 3),)))
    assert resolve(_relo(2, "0:0", K.FIELD_SIGNED), local, signed).new_val == 1
    straddling = _target(U64, Struct("bf", 16, (Member("x", 1, 62, 4),)))
    with pytest.raises(CoreError, match="64-bit load"):
        resolve(_relo(2, "0:0", K.FIELD_BYTE_OFFSET), local, straddling)


def test_array_elements_bounds_and_flexible_arrays() -> None:
    # local: struct a { int n; int v[4]; }   access v[2] = "0:1:2"
    local = _btf(S32, U32, Array(1, 2, 4), Struct("a", 20, (Member("n", 1, 0), Member("v", 3, 32))))
    wide = _target(
        S32, U32, Array(1, 2, 8), Struct("a", 40, (Member("n", 1, 32), Member("v", 3, 64)))
    )
    res = resolve(_relo(4, "0:1:2", K.FIELD_BYTE_OFFSET), local, wide)
    assert (res.orig_val, res.new_val) == (12, 16)
    short = _target(
        S32, U32, Array(1, 2, 2), Struct("a", 12, (Member("n", 1, 0), Member("v", 3, 32)))
    )
    assert resolve(_relo(4, "0:1:2", K.FIELD_BYTE_OFFSET), local, short).poison
    flex = _target(
        S32, U32, Array(1, 2, 0), Struct("a", 4, (Member("n", 1, 0), Member("v", 3, 32)))
    )
    assert resolve(_relo(4, "0:1:2", K.FIELD_BYTE_OFFSET), local, flex).new_val == 12
    with pytest.raises(CoreError, match="cannot be applied to an array access"):
        resolve(_relo(4, "0:1:2", K.FIELD_SIGNED), local, wide)


def test_enum_values_exist_or_poison_and_ldimm64_carries_64_bits() -> None:
    local = _btf(Enum("e", 4, (EnumValue("A", 1), EnumValue("GONE___x", 2)), False))
    target = _target(
        Enum("e", 8, (EnumValue("A", -(1 << 40)), EnumValue("B", 3)), True, BtfKind.ENUM64)
    )
    value = resolve(_relo(1, "0", K.ENUMVAL_VALUE), local, target)
    assert value.new_val == (-(1 << 40)) & (2**64 - 1)
    insns = bytearray(_insn(0x18, imm=1) + _insn(0))
    patch(insns, 0, value)
    lo, hi = _fields(insns, 0)[3], _fields(insns, 1)[3]
    assert ((hi & 0xFFFFFFFF) << 32 | (lo & 0xFFFFFFFF)) - 2**64 == -(1 << 40)
    assert resolve(_relo(1, "1", K.ENUMVAL_EXISTS), local, target).new_val == 0
    gone = resolve(_relo(1, "1", K.ENUMVAL_VALUE), local, target)
    assert gone.poison
    insns = bytearray(_insn(0x18, imm=2) + _insn(0))
    patch(insns, 0, gone)
    assert _fields(insns, 0)[3] == _fields(insns, 1)[3] == POISON_IMM  # both halves


def test_type_relocations_exists_size_ids_and_matches() -> None:
    local = _btf(
        S32, Struct("s", 4, (Member("a", 1, 0),)), Typedef("s_t", 2), Struct("gone", 4, ())
    )
    target = _target(S64, Struct("s", 8, (Member("a", 1, 0),)), Typedef("s_t", 2))
    assert resolve(_relo(2, "0", K.TYPE_EXISTS), local, target).new_val == 1
    assert resolve(_relo(2, "0", K.TYPE_SIZE), local, target).new_val == 8
    assert resolve(_relo(3, "0", K.TYPE_SIZE), local, target).new_val == 8  # via the typedef
    assert resolve(_relo(2, "0", K.TYPE_ID_TARGET), local, target).new_val == 2
    local_id = resolve(_relo(4, "0", K.TYPE_ID_LOCAL), local, target)
    assert (local_id.new_val, local_id.validate) == (4, False)
    for kind in (K.TYPE_EXISTS, K.TYPE_SIZE, K.TYPE_ID_TARGET, K.TYPE_MATCHES):
        assert resolve(_relo(4, "0", kind), local, target).new_val == 0  # no such type
    # matches is stricter than exists: member int vs long differ in size
    assert resolve(_relo(2, "0", K.TYPE_MATCHES), local, target).new_val == 0
    same = _target(S32, Struct("s", 4, (Member("a", 1, 0),)))
    assert resolve(_relo(2, "0", K.TYPE_MATCHES), local, same).new_val == 1
    with pytest.raises(CoreError, match="type-based relocation with access string"):
        resolve(_relo(2, "0:1", K.TYPE_EXISTS), local, target)


def test_types_match_rules() -> None:
    local = _btf(
        S32,
        Struct("s", 4, (Member("a", 1, 0),)),
        Ptr(2),
        Fwd("s", False),
        Ptr(4),
        Enum("e", 4, (EnumValue("X", 1),), False),
    )
    target = _btf(
        S32,
        Struct("s", 8, (Member("b", 1, 0), Member("a", 1, 32))),
        Ptr(2),
        Fwd("s", False),
        Ptr(4),
        Enum("e", 4, (EnumValue("Y", 5), EnumValue("X", 9)), False),
    )
    assert types_match(local, 2, target, 2)  # local members are a subset, by name
    assert types_match(local, 3, target, 4 + 1)  # behind a pointer a struct matches its fwd
    assert not types_match(local, 2, target, 4)  # ... but not at the top
    assert types_match(local, 6, target, 6)  # enum variants by name, values ignored
    assert not types_match(local, 1, _btf(Int("int", 8, IntEncoding.SIGNED, 64)), 1)


def test_anonymous_types_and_bad_access_strings_are_refused() -> None:
    local = _btf(S32, Struct("", 4, (Member("a", 1, 0),)))
    target = _target(S32, Struct("", 4, (Member("a", 1, 0),)))
    with pytest.raises(CoreError, match="anonymous types"):
        resolve(_relo(2, "0:0", K.FIELD_BYTE_OFFSET), local, target)
    for access in ("", ":1", "0:x", "0:5"):
        with pytest.raises(CoreError):
            resolve(_relo(3, access, K.FIELD_BYTE_OFFSET), LOCAL, _target(S32))
    with pytest.raises(CoreError, match="unrecognized CO-RE relocation kind 99"):
        resolve(CoreRelo(0, 3, "0:0", 99), LOCAL, _target(S32))


def test_function_errors_name_program_record_instruction_and_spec() -> None:
    target = _target(S32, U32, Struct("s", 8, (Member("a", 1, 0), Member("b", 2, 32))))
    code = _insn(0xB7) + _insn(0x61, off=99, regs=0x12) + _insn(0x95)
    relo = CoreRelo(1, 3, "0:1", int(K.FIELD_BYTE_OFFSET), index=7)
    with pytest.raises(CoreError) as e:
        relocate_function("prog_x", code, [relo], LOCAL, target)
    msg = str(e.value)
    assert msg.startswith(
        "prog 'prog_x': relo #7: insn #1: <byte_off> [3] struct s.b (0:1 @ offset 4)"
    )
    assert msg.endswith("failed to resolve CO-RE relocation")
    ok = _insn(0xB7) + _insn(0x61, off=4, regs=0x12) + _insn(0x95)
    out, done = relocate_function("prog_x", ok, [relo], LOCAL, target)
    assert _fields(out, 1) == (0x61, 0x12, 4, 0) and done[0].relo.index == 7


def test_modules_are_searched_only_when_vmlinux_has_no_candidate() -> None:
    vmlinux = LazyBtf.from_bytes(
        encode_btf(_btf(S32, Struct("in_vmlinux", 4, (Member("a", 1, 0),))))
    )
    module = LazyBtf.from_bytes(_module_blob(vmlinux), vmlinux)
    asked = []

    def modules():
        asked.append(1)
        return {"mymod": module}

    target = CoreTarget(vmlinux, "vmlinux", modules)
    local = _btf(
        S32,
        Struct("in_module", 8, (Member("b", 1, 0),)),
        Struct("in_vmlinux", 4, (Member("a", 1, 0),)),
    )
    res = resolve(_relo(3, "0:0", K.FIELD_BYTE_OFFSET), local, target)
    assert res.new_val == 0 and "in vmlinux" in res.target and asked == []
    res = resolve(_relo(2, "0:0", K.FIELD_BYTE_OFFSET), local, target)
    assert (res.new_val, asked) == (4, [1])
    assert res.target.endswith("in mymod")


def _module_blob(base: LazyBtf) -> bytes:
    """Split BTF for module `mymod`: struct in_module { int pad; int b; } using base's int."""
    n, sbase = len(base), len(base.strings)
    strings = b"in_module\0pad\0b\0"
    types = struct.pack("<III", sbase, (4 << 24) | 2, 8)  # [n] struct in_module, 2 members
    types += struct.pack("<III", sbase + 10, 1, 0)  # pad: base [1] int at bit 0
    types += struct.pack("<III", sbase + 14, 1, 32)  # b: base [1] int at bit 32
    assert n == 3
    hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    return hdr + types + strings
