"""Fix up DATASEC sizes and variable offsets the way libbpf does before loading.

clang leaves each DATASEC's size at 0 and the offsets of global (non-static) variables at 0 in
object files: the linker, not the compiler, knows them. libbpf (`btf_fixup_datasec`) fills the
size from the ELF section and each global VAR's offset from its symbol's st_value, keeps the
offsets clang already wrote for static variables, and sorts the entries by offset.
"""

from __future__ import annotations

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import Datasec, Linkage, Var
from bpfglobals.elf.elf_file import STB_GLOBAL, STB_WEAK, STT_OBJECT, ElfImage
from bpfglobals.errors import ElfError
from bpfglobals.frozen import replace

# Extern-backing sections: their layout comes from extern resolution, not from the ELF.
KCONFIG_SEC, KSYMS_SEC = ".kconfig", ".ksyms"
_EXTERN_SECTIONS = frozenset({KCONFIG_SEC, KSYMS_SEC})


def _is_extern(btf: Btf, type_id: int) -> bool:
    t = btf[type_id]
    return isinstance(t, Var) and t.linkage == Linkage.EXTERN


def fixup_datasecs(btf: Btf, elf: ElfImage) -> Btf:
    """A copy of `btf` with every DATASEC sized and its variables placed."""
    sizes = {s.name: s.size for s in elf.sections}
    global_syms = {
        s.name: s for s in elf.symbols if s.type == STT_OBJECT and s.bind in (STB_GLOBAL, STB_WEAK)
    }
    types = list(btf.types)
    for tid, t in enumerate(types):
        if not isinstance(t, Datasec) or t.name in _EXTERN_SECTIONS:
            continue
        size = t.size
        secinfos = list(t.vars)
        if size == 0:
            size = sizes.get(t.name, 0)
            if size == 0 and any(_is_extern(btf, v.type) for v in secinfos):
                raise ElfError(
                    f"BTF DATASEC '{t.name}': holds extern variable(s) "
                    f"({', '.join(btf[v.type].name for v in secinfos)}); only {KCONFIG_SEC} "
                    f"(__kconfig) and {KSYMS_SEC} (__ksym) externs can be resolved"
                )
            if size == 0:
                raise ElfError(
                    f"BTF DATASEC '{t.name}' [{tid}]: no ELF section of that name with a size "
                    "(libbpf would refuse this object too)"
                )
            for i, vsi in enumerate(secinfos):
                var = btf[vsi.type]
                if not isinstance(var, Var):
                    raise ElfError(
                        f"BTF DATASEC '{t.name}' [{tid}]: entry {i} is {var.kind.name}, not a VAR"
                    )
                if var.linkage in (Linkage.STATIC, Linkage.EXTERN):
                    continue  # clang already wrote static offsets; externs are resolved later
                sym = global_syms.get(var.name)
                if sym is None:
                    raise ElfError(
                        f"BTF DATASEC '{t.name}': global variable '{var.name}' has no ELF symbol"
                    )
                secinfos[i] = replace(vsi, offset=sym.value)
        secinfos.sort(key=lambda v: v.offset)
        for vsi in secinfos:
            if vsi.offset + vsi.size > size:
                raise ElfError(
                    f"BTF DATASEC '{t.name}': variable [{vsi.type}] at {vsi.offset}+{vsi.size} "
                    f"lies outside the {size}-byte section"
                )
        types[tid] = replace(t, size=size, vars=tuple(secinfos))
    return Btf(types, btf.strings)
