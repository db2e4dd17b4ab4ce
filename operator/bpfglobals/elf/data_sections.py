"""Global-data sections (.data/.rodata/.bss and their custom .NAME variants) and their variables.

Each becomes one single-entry array map when loaded, named as libbpf names it so that
`bpftool map show` looks the same whichever loader made it.
"""

from __future__ import annotations

import re

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import Datasec, Linkage, Var
from bpfglobals.elf.elf_file import SHF_EXECINSTR, SHT_NOBITS, SHT_PROGBITS, ElfImage, Section
from bpfglobals.elf.model import DataKind, DataSectionSpec, VariableSpec
from bpfglobals.errors import ElfError

BPF_OBJ_NAME_LEN = 16  # kernel map/prog names: 15 characters and a NUL
# The kernel caps an array map value at KMALLOC_MAX_SIZE-ish; anything near 4 GiB is corruption.
MAX_SECTION_SIZE = 1 << 30


def data_kind(sec: Section) -> DataKind | None:
    """libbpf's classification (bpf_object__elf_collect): by name, type and non-empty size."""
    if sec.size == 0 or sec.flags & SHF_EXECINSTR:
        return None
    if sec.type == SHT_PROGBITS:
        if sec.name == ".data" or sec.name.startswith(".data."):
            return DataKind.DATA
        if sec.name == ".rodata" or sec.name.startswith(".rodata."):
            return DataKind.RODATA
    if sec.type == SHT_NOBITS and (sec.name == ".bss" or sec.name.startswith(".bss.")):
        return DataKind.BSS
    return None


def object_name(file_name: str) -> str:
    """libbpf's object name: the file's base name up to its first dot."""
    base = file_name.rsplit("/", 1)[-1]
    return base.split(".", 1)[0]


def internal_map_name(obj_name: str, section: str) -> str:
    """libbpf's `internal_map_name`: "<prefix><section>" within 15 characters.

    Standard sections get as much of the object name as fits beside a suffix of at least 7
    characters; custom sections (a dot after the first character) are named by the section
    alone. Characters the kernel refuses become '_'.
    """
    sfx_len = max(7, len(section))
    pfx_len = 0 if "." in section[1:] else min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(obj_name))
    name = (obj_name[: max(pfx_len, 0)] + section[:sfx_len])[: BPF_OBJ_NAME_LEN - 1]
    return re.sub(r"[^A-Za-z0-9_.]", "_", name)


def read_data_sections(elf: ElfImage, btf: Btf | None, obj_name: str) -> list[DataSectionSpec]:
    datasecs = {}
    if btf is not None:
        datasecs = {t.name: i for i, t in enumerate(btf.types) if isinstance(t, Datasec)}
    out = []
    for sec in elf.sections:
        kind = data_kind(sec)
        if kind is None:
            continue
        if sec.size > MAX_SECTION_SIZE:
            raise ElfError(f"section {sec.name}: size {sec.size} is too large for a data map")
        data = bytes(sec.size) if kind == DataKind.BSS else sec.data
        tid = datasecs.get(sec.name, 0)
        variables = _variables(btf, tid, sec.name, data) if btf is not None and tid else ()
        out.append(
            DataSectionSpec(
                name=sec.name,
                kind=kind,
                data=data,
                size=sec.size,
                file_offset=None if kind == DataKind.BSS else sec.offset,
                datasec_type_id=tid,
                variables=variables,
                map_name=internal_map_name(obj_name, sec.name),
            )
        )
    return out


def _variables(btf: Btf, tid: int, section: str, data: bytes) -> tuple[VariableSpec, ...]:
    ds = btf[tid]
    assert isinstance(ds, Datasec)
    out = []
    for vsi in ds.vars:
        var = btf[vsi.type]
        if not isinstance(var, Var):
            raise ElfError(f"BTF DATASEC '{section}': entry [{vsi.type}] is not a VAR")
        if var.linkage == Linkage.EXTERN:
            raise ElfError(
                f"{section}: extern variable '{var.name}' is not supported (externs need "
                "kconfig/ksym resolution, which bpfglobals does not do)"
            )
        out.append(
            VariableSpec(
                name=var.name,
                section=section,
                offset=vsi.offset,
                size=vsi.size,
                type_id=var.type,
                linkage="static" if var.linkage == Linkage.STATIC else "global",
                default=data[vsi.offset : vsi.offset + vsi.size],
            )
        )
    return tuple(out)
