"""The ELF/BTF object model: pure parsing, no syscalls (aya-obj, cilium/ebpf's spec side)."""

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_encode import encode_btf
from bpfglobals.elf.btf_parse import parse_btf
from bpfglobals.elf.model import (
    DataKind,
    DataSectionSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    RelocKind,
    SubprogramSpec,
    VariableSpec,
)
from bpfglobals.elf.reader import read_object, read_object_bytes

__all__ = [
    "Btf",
    "DataKind",
    "DataSectionSpec",
    "MapSpec",
    "ObjectSpec",
    "ProgramSpec",
    "RelocKind",
    "Relocation",
    "SubprogramSpec",
    "VariableSpec",
    "encode_btf",
    "parse_btf",
    "read_object",
    "read_object_bytes",
]
