"""Extern symbols: `__kconfig` variables, `__ksym` variables and kfunc declarations.

The `open` half of libbpf's `bpf_object__collect_externs`: every undefined global/weak symbol
must have an extern BTF VAR or FUNC in a `.kconfig` or `.ksyms` DATASEC, or the object is
refused. Kconfig externs get their place in the `.kconfig` map (sorted by alignment, size and
name, as libbpf lays them out), and the object's BTF is rewritten the way libbpf rewrites it so
the kernel accepts it: extern VARs become allocated, extern FUNCs global, and `.ksyms` entries
4-byte placeholders. Nothing here looks at the running kernel; the loader resolves values.
"""

from __future__ import annotations

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import (
    Array,
    BtfKind,
    Datasec,
    Func,
    FuncProto,
    Int,
    IntEncoding,
    Linkage,
    Param,
    Var,
    VarSecinfo,
)
from bpfglobals.elf.btf_types import (
    Enum as BtfEnum,
)
from bpfglobals.elf.data_sections import internal_map_name
from bpfglobals.elf.datasec_fixup import KCONFIG_SEC, KSYMS_SEC
from bpfglobals.elf.elf_file import SHN_UNDEF, STB_GLOBAL, STB_WEAK, STT_NOTYPE, ElfImage, Symbol
from bpfglobals.elf.extern_model import ExternKind, ExternSpec, KconfigField, KconfigType
from bpfglobals.elf.model import DataKind, DataSectionSpec
from bpfglobals.errors import ElfError
from bpfglobals.frozen import replace

DUMMY_KSYM = "dummy_ksym"  # libbpf's placeholder VAR for kfuncs in the .ksyms DATASEC


def is_extern(sym: Symbol) -> bool:
    """libbpf's sym_is_extern: undefined, global or weak, no type."""
    return sym.shndx == SHN_UNDEF and sym.bind in (STB_GLOBAL, STB_WEAK) and sym.type == STT_NOTYPE


def collect_externs(elf: ElfImage, btf: Btf | None) -> tuple[tuple[ExternSpec, ...], Btf | None]:
    """The object's externs in libbpf's order, and its BTF rewritten for the kernel."""
    syms = [s for s in elf.symbols if is_extern(s) and s.name]
    if not syms:
        return (), btf
    if btf is None:
        raise ElfError(
            f"extern '{syms[0].name}' needs BTF to be resolved (compile with -g); libbpf "
            "refuses it too"
        )
    index = _BtfIndex(btf)
    externs = sorted((_describe(btf, index, s) for s in syms), key=_order)
    externs = _place_kconfig(externs)
    return tuple(externs), _rewrite_btf(btf, externs)


class _BtfIndex:
    """The first VAR/FUNC of each name, and the DATASEC holding each type (one pass)."""

    def __init__(self, btf: Btf) -> None:
        self.by_name: dict[str, int] = {}
        self.datasec: dict[int, str] = {}
        for i, t in enumerate(btf.types):
            if isinstance(t, (Var, Func)):
                self.by_name.setdefault(t.name, i)
            elif isinstance(t, Datasec):
                for v in t.vars:
                    self.datasec.setdefault(v.type, t.name)


def _describe(btf: Btf, index: _BtfIndex, sym: Symbol) -> ExternSpec:
    where = f"extern '{sym.name}'"
    btf_id = index.by_name.get(sym.name)
    if btf_id is None:
        raise ElfError(f"{where}: no BTF VAR or FUNC of that name (compile with -g)")
    t = btf[btf_id]
    if t.linkage != Linkage.EXTERN:
        raise ElfError(f"{where}: its BTF {t.kind.name} [{btf_id}] is not marked extern")
    sec = index.datasec.get(btf_id)
    if sec is None:
        raise ElfError(f"{where}: its BTF [{btf_id}] is in no DATASEC")
    weak = sym.bind == STB_WEAK
    if sec == KCONFIG_SEC:
        if isinstance(t, Func):
            raise ElfError(f"{where}: a function cannot be a {KCONFIG_SEC} extern")
        kcfg = _kconfig_field(btf, t.type, where)
        return ExternSpec(sym.name, ExternKind.KCONFIG, weak, sym.index, btf_id, t.type, kcfg)
    if sec == KSYMS_SEC:
        if isinstance(t, Func):
            return ExternSpec(sym.name, ExternKind.KFUNC, weak, sym.index, btf_id, t.type)
        tid, target = btf.resolve(t.type)
        return ExternSpec(
            sym.name, ExternKind.KSYM, weak, sym.index, btf_id, 0 if target.kind == 0 else tid
        )
    raise ElfError(
        f"{where}: lives in section '{sec}'; only {KCONFIG_SEC} (__kconfig) and {KSYMS_SEC} "
        "(__ksym) externs can be resolved"
    )


def _kconfig_field(btf: Btf, type_id: int, where: str) -> KconfigField:
    _, t = btf.resolve(type_id)
    kind, signed = _kconfig_type(btf, type_id)
    if kind is None:
        raise ElfError(
            f"{where}: {KCONFIG_SEC} type {t.kind.name} '{t.name}' is not supported (use bool, "
            "enum libbpf_tristate, a 1/2/4/8-byte integer or a char array)"
        )
    return KconfigField(kind, btf.size_of(type_id), _align_of(btf, type_id), signed, 0)


def _kconfig_type(btf: Btf, type_id: int) -> tuple[KconfigType | None, bool]:
    """libbpf's find_kcfg_type."""
    _, t = btf.resolve(type_id)
    if isinstance(t, Int):
        if t.encoding == IntEncoding.BOOL:
            return (KconfigType.BOOL if t.size == 1 else None), False
        signed = t.encoding == IntEncoding.SIGNED
        if t.size == 1:
            return KconfigType.CHAR, signed
        if t.size in (2, 4, 8):
            return KconfigType.INT, signed
        return None, False
    if isinstance(t, BtfEnum):
        ok = t.name == "libbpf_tristate" and (t.size == 4 or t.kind == BtfKind.ENUM64)
        return (KconfigType.TRISTATE if ok else None), False
    if isinstance(t, Array):
        ok = t.nelems > 0 and _kconfig_type(btf, t.type)[0] == KconfigType.CHAR
        return (KconfigType.CHAR_ARRAY if ok else None), False
    return None, False


def _align_of(btf: Btf, type_id: int) -> int:
    _, t = btf.resolve(type_id)
    if isinstance(t, Int):
        return min(t.size, 8)
    if isinstance(t, BtfEnum):
        return t.size
    if isinstance(t, Array):
        return _align_of(btf, t.type)
    return 1  # only reached for types _kconfig_type refuses right after


def _order(e: ExternSpec) -> tuple:
    """libbpf's cmp_externs: kconfig first, by alignment (descending), size, then name."""
    if e.kconfig is not None:
        return (0, -e.kconfig.align, e.kconfig.size, e.name.encode())
    return (1, 0, 0, e.name.encode())


def _place_kconfig(externs: list[ExternSpec]) -> list[ExternSpec]:
    out, off = [], 0
    for e in externs:
        if e.kconfig is not None:
            start = -(-off // e.kconfig.align) * e.kconfig.align
            e = replace(e, kconfig=replace(e.kconfig, offset=start))
            off = start + e.kconfig.size
        out.append(e)
    return out


def kconfig_size(externs: tuple[ExternSpec, ...]) -> int:
    """Bytes of the .kconfig map value: up to the end of the last kconfig extern."""
    last = [e.kconfig for e in externs if e.kconfig is not None]
    return last[-1].offset + last[-1].size if last else 0


def _rewrite_btf(btf: Btf, externs: list[ExternSpec]) -> Btf:
    by_name = {e.name: e for e in externs}
    types = list(btf.types)
    for sec_id, sec in enumerate(btf.types):
        if not isinstance(sec, Datasec):
            continue
        if sec.name == KSYMS_SEC:
            _rewrite_ksyms(types, sec_id, by_name)
        elif sec.name == KCONFIG_SEC:
            _rewrite_kconfig(types, sec_id, by_name)
    return Btf(types, btf.strings)


def _known(by_name: dict[str, ExternSpec], name: str, sec: str) -> ExternSpec:
    e = by_name.get(name)
    if e is None:
        raise ElfError(f"BTF DATASEC '{sec}' names '{name}', which has no extern ELF symbol")
    return e


def _rewrite_ksyms(types: list, sec_id: int, by_name: dict[str, ExternSpec]) -> None:
    """libbpf: every .ksyms entry becomes a 4-byte allocated VAR; FUNCs point at a dummy VAR
    and become global (the kernel refuses extern linkage), with unnamed params named."""
    sec: Datasec = types[sec_id]
    int_id = next((i for i, t in enumerate(types) if isinstance(t, Int) and t.bits == 32), 0)
    dummy = 0
    if any(isinstance(types[v.type], Func) for v in sec.vars):
        dummy = len(types)
        types.append(Var(DUMMY_KSYM, int_id, Linkage.GLOBAL))
    entries = []
    for i, vsi in enumerate(sec.vars):
        t = types[vsi.type]
        _known(by_name, t.name, sec.name)
        if isinstance(t, Func):
            proto = types[t.type]
            if isinstance(proto, FuncProto):
                types[t.type] = replace(
                    proto,
                    params=tuple(
                        Param(DUMMY_KSYM, p.type) if p.type and not p.name else p
                        for p in proto.params
                    ),
                )
            types[vsi.type] = replace(t, linkage=Linkage.GLOBAL)
            entries.append(VarSecinfo(dummy, i * 4, 4))
        else:
            types[vsi.type] = replace(t, type=int_id, linkage=Linkage.GLOBAL)
            entries.append(VarSecinfo(vsi.type, i * 4, 4))
    types[sec_id] = replace(sec, size=4 * len(entries), vars=tuple(entries))


def _rewrite_kconfig(types: list, sec_id: int, by_name: dict[str, ExternSpec]) -> None:
    sec: Datasec = types[sec_id]
    entries = []
    for vsi in sec.vars:
        t = types[vsi.type]
        e = _known(by_name, t.name, sec.name)
        assert e.kconfig is not None
        types[vsi.type] = replace(t, linkage=Linkage.GLOBAL)
        entries.append(replace(vsi, offset=e.kconfig.offset))
    entries.sort(key=lambda v: v.offset)
    size = kconfig_size(tuple(by_name.values()))  # by_name keeps libbpf's order
    types[sec_id] = replace(sec, size=size, vars=tuple(entries))


def kconfig_section(
    externs: tuple[ExternSpec, ...], btf: Btf | None, obj_name: str
) -> DataSectionSpec | None:
    """libbpf's `.kconfig` internal map: zeros here, filled from the running kernel at load."""
    size = kconfig_size(externs)
    if not size or btf is None:
        return None
    return DataSectionSpec(
        name=KCONFIG_SEC,
        kind=DataKind.KCONFIG,
        data=bytes(size),
        size=size,
        file_offset=None,
        datasec_type_id=btf.find(BtfKind.DATASEC, KCONFIG_SEC) or 0,
        variables=(),
        map_name=internal_map_name(obj_name, KCONFIG_SEC),
    )
