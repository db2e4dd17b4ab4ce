"""CO-RE relocation, as libbpf's relo_core.c does it (pure: local BTF + records + target BTF
in, instruction patches out).

For each `.BTF.ext` CO-RE record: parse the local spec, find candidate target types by
essential name (the target's main BTF first; its modules only when the main one has none),
match each candidate, compute the value every matching candidate gives (they must agree, or
the relocation is ambiguous) and patch the instruction: ALU/ALU64 immediates, LDX/ST/STX
offsets (and load sizes when a field changed size safely), ldimm64 values. A relocation that
finds no target is not an error by itself: like libbpf, the instruction is *poisoned* (turned
into a call to helper #195896080, "bad relo"), so a branch guarded by `bpf_core_field_exists()`
verifies as dead code, and an unguarded one fails verification at that instruction — which the
loader maps back to the relocation.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from bpfglobals.elf.btf import BtfQueries
from bpfglobals.elf.btf_compat import kind_ids_compat
from bpfglobals.elf.btf_ext import CoreRelo
from bpfglobals.elf.btf_types import Array, BtfKind, Enum, Int, IntEncoding, Ptr, Struct
from bpfglobals.elf.core_spec import (
    CoreError,
    CoreKind,
    Spec,
    format_spec,
    kind_label,
    match_spec,
    parse_spec,
)
from bpfglobals.elf.kernel_btf import LazyBtf
from bpfglobals.errors import BtfError

POISON_IMM = 195896080  # 0xbad2310, "bad relo": libbpf's poisoned call
_U64 = (1 << 64) - 1

# opcode classes and fields (uapi linux/bpf_common.h)
_LD, _LDX, _ST, _STX, _ALU, _ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x07
_JMP_CALL = 0x85
_LDIMM64 = 0x18
_SIZE_BYTES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}  # BPF_DW, BPF_W, BPF_H, BPF_B
_BYTES_SIZE = {v: k for k, v in _SIZE_BYTES.items()}


@dataclass(frozen=True)
class Candidate:
    btf: LazyBtf
    type_id: int
    where: str  # "vmlinux", a module name, or the custom BTF path


@dataclass
class CoreTarget:
    """What relocations resolve against: the kernel's BTF (`main` = vmlinux, `modules` read
    on first need) or a custom BTF standing in for it (no modules, as libbpf's
    btf_custom_path)."""

    main: LazyBtf
    main_name: str = "vmlinux"
    modules: Callable[[], Mapping[str, LazyBtf]] | None = None
    # per local type id: the candidates still in play (libbpf narrows them per object)
    _cands: dict[int, list[Candidate]] = field(default_factory=dict)

    def candidates(self, local: BtfQueries, local_id: int) -> list[Candidate]:
        """bpf_core_find_cands: same-kind (enum/enum64 mixed) types of equal essential name."""
        if local_id not in self._cands:
            t = local[local_id]
            if not t.name:
                raise CoreError(
                    f"[{local_id}] {t.kind.name.lower()}: relocations against anonymous types "
                    "are not supported (libbpf neither)"
                )
            found = _add_cands(t, self.main, self.main_name)
            if not found and self.modules is not None:
                for name, mod in self.modules().items():
                    found += _add_cands(t, mod, name)
            self._cands[local_id] = found
        return self._cands[local_id]


def _add_cands(local_t, btf: LazyBtf, where: str) -> list[Candidate]:
    out = []
    for tid in btf.ids_by_essential_name(local_t.name):
        if kind_ids_compat(btf.kind_of(tid), local_t.kind):
            out.append(Candidate(btf, tid, where))
    return out


@dataclass
class Result:
    """bpf_core_relo_res: the value the compiler put in, the value to put, or poison."""

    orig_val: int = 0
    new_val: int = 0
    poison: bool = False
    validate: bool = True
    fail_memsz_adjust: bool = False
    orig_sz: int = 0
    new_sz: int = 0
    orig_type_id: int = 0
    new_type_id: int = 0
    target: str = ""  # the target spec (libbpf's format), or "" when none matched


class _Poison(Exception):
    """The value cannot be computed without a target: poison the instruction."""


@dataclass(frozen=True)
class Resolution:
    """One record's outcome, with what a user needs to see it."""

    relo: CoreRelo  # relo.index is libbpf's relo #N: its index among its section's records
    local: str  # the local spec, formatted
    result: Result


def describe(relo: CoreRelo, local: BtfQueries) -> str:
    """The local spec of a record, formatted as libbpf prints it (for messages and inspect)."""
    try:
        return format_spec(parse_spec(local, relo.type_id, relo.access, CoreKind(relo.kind)))
    except (CoreError, BtfError, ValueError):  # a record we refuse still gets named
        t = local[relo.type_id] if 0 <= relo.type_id < len(local) else None
        name = getattr(t, "name", "") or "<anon>"
        return f"<{kind_label(relo.kind)}> [{relo.type_id}] {name} + '{relo.access}'"


def resolve(relo: CoreRelo, local: BtfQueries, target: CoreTarget) -> Result:
    """bpf_core_calc_relo_insn for one record (CoreError: refused, with libbpf's reason)."""
    try:
        kind = CoreKind(relo.kind)
    except ValueError:
        raise CoreError(f"unrecognized CO-RE relocation kind {relo.kind}") from None
    try:
        local_spec = parse_spec(local, relo.type_id, relo.access, kind)
    except BtfError as e:
        raise CoreError(f"parsing [{relo.type_id}] + {relo.access} failed: {e}") from e
    if kind == CoreKind.TYPE_ID_LOCAL:
        return Result(relo.type_id, relo.type_id, validate=False)
    cands = target.candidates(local, relo.type_id)
    chosen: Result | None = None
    chosen_spec: Spec | None = None
    kept: list[Candidate] = []
    for c in cands:
        try:
            spec = match_spec(local_spec, c.btf, c.type_id)
        except BtfError as e:
            raise CoreError(f"error matching candidate [{c.type_id}] in {c.where}: {e}") from e
        if spec is None:
            continue
        res = _calc(kind, local_spec, spec)
        res.target = f"{format_spec(spec)} in {c.where}"
        if chosen is None:
            chosen, chosen_spec = res, spec
        elif chosen_spec is not None and spec.bit_offset != chosen_spec.bit_offset:
            raise CoreError(
                f"field offset ambiguity: {spec.bit_offset} != {chosen_spec.bit_offset} bits "
                f"({res.target} vs {chosen.target})"
            )
        elif res.poison != chosen.poison or res.new_val != chosen.new_val:
            raise CoreError(
                "relocation decision ambiguity: "
                f"{'failure' if res.poison else 'success'} {res.new_val} != "
                f"{'failure' if chosen.poison else 'success'} {chosen.new_val} "
                f"({res.target} vs {chosen.target})"
            )
        kept.append(c)
    if kept:
        cands[:] = kept  # later records of this type only consider these (as libbpf)
        assert chosen is not None
        return chosen
    return _calc(kind, local_spec, None)


def _calc(kind: CoreKind, local: Spec, target: Spec | None) -> Result:
    """bpf_core_calc_relo: original and new value for one (local, target-or-none) pair."""
    res = Result()
    try:
        if kind.field_based:
            res.orig_val, res.orig_sz, res.orig_type_id, res.validate = _field(kind, local)
            res.new_val, res.new_sz, res.new_type_id, _ = _field(kind, target)
            if res.orig_sz != res.new_sz:
                ot, nt = local.btf[res.orig_type_id], target.btf[res.new_type_id]  # type: ignore[union-attr]
                safe = (isinstance(ot, Ptr) and isinstance(nt, Ptr)) or (
                    isinstance(ot, Int)
                    and isinstance(nt, Int)
                    and ot.encoding != IntEncoding.SIGNED
                    and nt.encoding != IntEncoding.SIGNED
                )
                res.fail_memsz_adjust = not safe
        elif kind.type_based:
            res.orig_val, res.validate = _type(kind, local)
            res.new_val, _ = _type(kind, target)
        else:
            res.orig_val = _enumval(kind, local)
            res.new_val = _enumval(kind, target)
    except _Poison:
        res.poison = True
    return res


def _field(kind: CoreKind, spec: Spec | None) -> tuple[int, int, int, bool]:
    """bpf_core_calc_field_relo -> (value, field size for LDX/ST/STX, its type id, validate)."""
    if kind == CoreKind.FIELD_EXISTS:
        return (1 if spec else 0), 0, 0, True
    if spec is None:
        raise _Poison
    btf = spec.btf
    acc = spec.acc[-1]
    if acc.name is None:  # an array element: only its offset and size make sense
        if kind == CoreKind.FIELD_BYTE_OFFSET:
            return spec.bit_offset // 8, _elem_size(btf, acc.type_id), acc.type_id, True
        if kind == CoreKind.FIELD_BYTE_SIZE:
            return btf.size_of(acc.type_id), 0, 0, True
        raise CoreError(f"relocation {kind.label} cannot be applied to an array access")
    t = btf[acc.type_id]
    assert isinstance(t, Struct)
    m = t.members[acc.idx]
    field_type_id, mt = btf.resolve(m.type)
    bit_off, bit_sz = spec.bit_offset, m.bitfield_size
    bitfield = bit_sz > 0
    if bitfield:
        byte_sz = mt.size  # type: ignore[union-attr]
        byte_off = bit_off // 8 // byte_sz * byte_sz
        while bit_off + bit_sz - byte_off * 8 > byte_sz * 8:
            if byte_sz >= 8:
                raise CoreError(f"bitfield at bit {bit_off} cannot be read with a 64-bit load")
            byte_sz *= 2
            byte_off = bit_off // 8 // byte_sz * byte_sz
    else:
        byte_sz = btf.size_of(field_type_id)
        byte_off = bit_off // 8
        bit_sz = byte_sz * 8
    validate = not bitfield  # the compiler's bitfield choices may differ from ours
    match kind:
        case CoreKind.FIELD_BYTE_OFFSET:
            if bitfield:
                return byte_off, 0, 0, validate
            return byte_off, _elem_size(btf, field_type_id), field_type_id, validate
        case CoreKind.FIELD_BYTE_SIZE:
            return byte_sz, 0, 0, validate
        case CoreKind.FIELD_SIGNED:
            signed = (isinstance(mt, Enum) and mt.signed) or (
                isinstance(mt, Int) and mt.encoding == IntEncoding.SIGNED
            )
            return int(signed), 0, 0, True
        case CoreKind.FIELD_LSHIFT_U64:
            return 64 - (bit_off + bit_sz - byte_off * 8), 0, 0, validate
        case CoreKind.FIELD_RSHIFT_U64:
            return 64 - bit_sz, 0, 0, True
    raise CoreError(f"unrecognized CO-RE relocation {kind.label}")


def _elem_size(btf: BtfQueries, tid: int) -> int:
    """The size an LDX/ST/STX touches: an array's innermost element, else the type's."""
    tid, t = btf.resolve(tid)
    while isinstance(t, Array):
        tid, t = btf.resolve(t.type)
    return btf.size_of(tid)


def _type(kind: CoreKind, spec: Spec | None) -> tuple[int, bool]:
    """bpf_core_calc_type_relo -> (value, validate); a missing type gives 0."""
    if spec is None:
        return 0, True
    match kind:
        case CoreKind.TYPE_ID_TARGET:
            return spec.root_type_id, False  # ids change at link time: never checked
        case CoreKind.TYPE_EXISTS | CoreKind.TYPE_MATCHES:
            return 1, True
        case CoreKind.TYPE_SIZE:
            return spec.btf.size_of(spec.root_type_id), True
    raise CoreError(f"unrecognized CO-RE relocation {kind.label}")


def _enumval(kind: CoreKind, spec: Spec | None) -> int:
    if kind == CoreKind.ENUMVAL_EXISTS:
        return 1 if spec else 0
    if spec is None:
        raise _Poison
    e = spec.btf[spec.acc[0].type_id]
    assert isinstance(e, Enum)
    v = e.values[spec.acc[0].idx].value
    if e.kind == BtfKind.ENUM:  # a 32-bit enumerator is an s32 widened to u64 by libbpf
        v = (v + (1 << 31)) % (1 << 32) - (1 << 31)
    return v & _U64


# --- patching -------------------------------------------------------------------------------


def poison(insns: bytearray, index: int) -> None:
    """bpf_core_poison_insn: `call unknown#195896080` (both halves of an ldimm64)."""
    if insns[index * 8] == _LDIMM64 and (index + 1) * 8 < len(insns):
        struct.pack_into("<BBhi", insns, (index + 1) * 8, _JMP_CALL, 0, 0, POISON_IMM)
    struct.pack_into("<BBhi", insns, index * 8, _JMP_CALL, 0, 0, POISON_IMM)


def patch(insns: bytearray, index: int, res: Result) -> None:
    """bpf_core_patch_insn; CoreError when the instruction is not what the record says."""
    if not 0 <= index < len(insns) // 8:
        raise CoreError(f"instruction #{index} is outside the function")
    if res.poison:
        poison(insns, index)
        return
    code, regs, off, imm = struct.unpack_from("<BBhi", insns, index * 8)
    cls = code & 0x07
    orig, new = res.orig_val & _U64, res.new_val & _U64
    if cls in (_ALU, _ALU64):
        if code & 0x08:  # BPF_X: no immediate to patch
            raise CoreError(f"insn #{index} (ALU/ALU64) uses a register, not an immediate")
        if res.validate and imm & _U64 != orig:
            raise CoreError(
                f"unexpected insn #{index} (ALU/ALU64) value: got {imm}, exp {orig} -> {new}"
            )
        struct.pack_into("<i", insns, index * 8 + 4, _s32(new))
    elif cls in (_LDX, _ST, _STX):
        if res.validate and off & _U64 != orig:
            raise CoreError(
                f"unexpected insn #{index} (LDX/ST/STX) value: got {off}, exp {orig} -> {new}"
            )
        if new > 0x7FFF:
            raise CoreError(f"insn #{index} (LDX/ST/STX) value too big: {new}")
        if res.fail_memsz_adjust:
            # libbpf: a field whose size changed and is not a pointer or unsigned int
            poison(insns, index)
            return
        struct.pack_into("<h", insns, index * 8 + 2, new)
        if res.new_sz != res.orig_sz:
            have = _SIZE_BYTES.get(code & 0x18)
            if have != res.orig_sz:
                raise CoreError(
                    f"insn #{index} (LDX/ST/STX) unexpected mem size: got {have}, exp {res.orig_sz}"
                )
            size = _BYTES_SIZE.get(res.new_sz)
            if size is None:
                raise CoreError(f"insn #{index} (LDX/ST/STX) invalid new mem size: {res.new_sz}")
            insns[index * 8] = (code & 0xE0) | size | cls
    elif cls == _LD:
        ok = code == _LDIMM64 and (index + 1) * 8 < len(insns)
        if ok:
            code2, regs2, off2, hi = struct.unpack_from("<BBhi", insns, (index + 1) * 8)
            ok = regs >> 4 == 0 and off == 0 and code2 == 0 and regs2 == 0 and off2 == 0
        if not ok:
            raise CoreError(f"insn #{index} (LDIMM64) has unexpected form")
        value = (imm & 0xFFFFFFFF) | ((hi & 0xFFFFFFFF) << 32)
        if res.validate and value != orig:
            raise CoreError(
                f"unexpected insn #{index} (LDIMM64) value: got {value}, exp {orig} -> {new}"
            )
        struct.pack_into("<i", insns, index * 8 + 4, _s32(new & 0xFFFFFFFF))
        struct.pack_into("<i", insns, (index + 1) * 8 + 4, _s32(new >> 32))
    else:
        raise CoreError(
            f"trying to relocate unrecognized insn #{index}, code:{code:#x}, off:{off}, imm:{imm}"
        )


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


# --- a whole function -----------------------------------------------------------------------


def relocate_function(
    name: str,
    insns: bytes,
    relos: Iterable[CoreRelo],
    local: BtfQueries,
    target: CoreTarget,
) -> tuple[bytes, list[Resolution]]:
    """Apply `relos` (records with a function-relative insn) to one function's instructions;
    CoreError names the function, record (libbpf's relo #index), instruction and spec."""
    out = bytearray(insns)
    done = []
    for relo in relos:
        try:
            res = resolve(relo, local, target)
            patch(out, relo.insn_off, res)
        except (CoreError, BtfError) as e:
            raise CoreError(
                f"prog '{name}': relo #{relo.index}: insn #{relo.insn_off}: "
                f"{describe(relo, local)}: {e}; failed to resolve CO-RE relocation"
            ) from e
        done.append(Resolution(relo, describe(relo, local), res))
    return bytes(out), done
