"""The parsed object, spec side (cilium/ebpf's CollectionSpec, aya-obj's Object).

Everything here is deterministic data derived from the ELF file alone; nothing depends on the
running kernel. The loader turns these specs into kernel objects.
"""

from __future__ import annotations

from enum import Enum
from functools import cached_property

from bpfglobals.elf.btf_encode import encode_btf
from bpfglobals.frozen import field, frozen, mutable

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from bpfglobals.elf.btf import Btf
    from bpfglobals.elf.btf_ext import BtfExt, CoreRelo, FuncInfo, LineInfo
    from bpfglobals.elf.extern_model import ExternSpec


class DataKind(Enum):
    """Which libbpf internal-map family a global-data section belongs to."""

    DATA = "data"  # .data, .data.*  (writable, initialised)
    RODATA = "rodata"  # .rodata, .rodata.* (read-only for programs: frozen)
    BSS = "bss"  # .bss, .bss.* (writable, zero-initialised, NOBITS)
    KCONFIG = "kconfig"  # .kconfig externs: filled by the loader from the running kernel


class RelocKind(Enum):
    MAP = "map"  # ldimm64 of a map: BPF_PSEUDO_MAP_FD
    DATA = "data"  # ldimm64 into a global-data section: BPF_PSEUDO_MAP_VALUE + offset
    CALL = "call"  # BPF-to-BPF call: BPF_PSEUDO_CALL
    FUNC = "func"  # ldimm64 of a function address: BPF_PSEUDO_FUNC
    EXTERN_VAR = "extern_var"  # ldimm64 of an extern (kconfig value, ksym address/BTF id)
    EXTERN_FUNC = "extern_func"  # call of a kfunc: BPF_PSEUDO_KFUNC_CALL


@frozen
class Relocation:
    """One instruction of a program that refers to something outside it."""

    insn_index: int  # index of the instruction inside its section (8-byte units)
    kind: RelocKind
    symbol: str  # the ELF symbol the relocation names (map, variable, section or function)
    # MAP: the map's name. DATA: the data section's name. CALL/FUNC: the section holding the
    # target (".text" or the program's own section). EXTERN_*: the extern's name.
    target: str
    # DATA: byte offset inside the data section (symbol value + addend already folded in).
    # CALL/FUNC: instruction index of the callee inside `target` section.
    offset: int = 0


@frozen
class ProgramType:
    """What a section name means to libbpf: program type and expected attach type."""

    prog_type: str  # e.g. "xdp", "sched_cls", "kprobe" (libbpf/bpftool spelling)
    attach_type: str | None  # e.g. "tcx_ingress", "cgroup_inet_ingress", "xdp", None
    attach_target: str | None = None  # the part after "/" for kprobe/..., fentry/..., etc.
    sleepable: bool = False  # ".s" sections: BPF_F_SLEEPABLE
    xdp_frags: bool = False  # "xdp.frags": BPF_F_XDP_HAS_FRAGS


@frozen
class ProgramSpec:
    """One program: its function, section, type, instructions and relocations."""

    name: str  # the function symbol
    section: str
    type: ProgramType
    insns: bytes  # this function's instructions only (multiple of 8 bytes)
    section_offset: int  # byte offset of the function inside its section
    relocations: tuple[Relocation, ...]  # insn_index relative to the function start
    linkage: str  # "global" or "static"
    func_info: tuple[FuncInfo, ...] = ()  # insn offsets relative to the function start
    line_info: tuple[LineInfo, ...] = ()
    core_relos: tuple[CoreRelo, ...] = ()  # CO-RE records, insn offsets as func_info's

    @property
    def insn_count(self) -> int:
        return len(self.insns) // 8


@frozen
class SubprogramSpec:
    """A function in `.text` (or a static function in a program section) called by programs."""

    name: str
    section: str
    insns: bytes
    section_offset: int
    relocations: tuple[Relocation, ...]
    linkage: str
    func_info: tuple[FuncInfo, ...] = ()
    line_info: tuple[LineInfo, ...] = ()
    core_relos: tuple[CoreRelo, ...] = ()


@frozen
class MapSpec:
    """A user map from `.maps` (BTF-defined) or the legacy `maps` section."""

    name: str
    type: str  # libbpf spelling: "array", "hash", "percpu_array", "ringbuf", ...
    type_id: int  # numeric BPF_MAP_TYPE_*
    key_size: int
    value_size: int
    max_entries: int
    flags: int = 0
    # 0 none; 1 by name in the load's own pin directory (LIBBPF_PIN_BY_NAME, iproute2's
    # PIN_OBJECT_NS); 2 iproute2's PIN_GLOBAL_NS (BPFFS/tc/globals/<name>). See elf/map_defs.py.
    pinning: int = 0
    map_extra: int = 0
    numa_node: int = 0
    btf_key_type_id: int = 0
    btf_value_type_id: int = 0
    legacy: bool = False  # from the `maps` section, not `.maps`
    # Map-in-map: the inner map template (`__array(values, struct {...})`).
    inner: MapSpec | None = None
    # Initial slots from `.maps` initialisers: (index, name of the map or program it holds).
    init_slots: tuple[tuple[int, str], ...] = ()


@frozen
class VariableSpec:
    """A global variable in a data section (cilium/ebpf's VariableSpec)."""

    name: str
    section: str
    offset: int
    size: int
    type_id: int  # the BTF type of the variable (the VAR's target type, with qualifiers)
    linkage: str  # "global" or "static"
    default: bytes  # its bytes in the ELF (zeros for .bss)


@frozen
class DataSectionSpec:
    """A global-data section: becomes one single-entry array map when loaded."""

    name: str  # ".rodata", ".data.extra", ...
    kind: DataKind
    data: bytes  # section contents (zeros of `size` for NOBITS)
    size: int
    file_offset: int | None  # where `data` lives in the file; None for NOBITS (.bss)
    datasec_type_id: int  # BTF DATASEC type id (0 when the section has none, e.g. strings)
    variables: tuple[VariableSpec, ...]
    # Map name as libbpf names it: "<obj prefix>.<suffix>" trimmed to 15 chars, or the
    # section name itself for custom sections (".rodata.extra").
    map_name: str = ""

    @property
    def readonly(self) -> bool:
        return self.kind in (DataKind.RODATA, DataKind.KCONFIG)


@mutable
class ObjectSpec:
    """A whole parsed BPF object."""

    path: str
    name: str  # object name: file name up to its first dot
    license: str
    kernel_version: int
    programs: list[ProgramSpec]
    subprograms: list[SubprogramSpec]
    maps: list[MapSpec]
    data_sections: list[DataSectionSpec]
    btf: Btf | None
    raw: bytes = field(repr=False, default=b"")  # the file's bytes (render patches a copy)
    externs: tuple[ExternSpec, ...] = ()  # __kconfig/__ksym externs, in libbpf's order
    # The .kconfig map libbpf makes for kconfig externs (filled at load time), if any.
    kconfig: DataSectionSpec | None = None
    btf_ext: BtfExt | None = field(repr=False, default=None)  # every record, for accounting

    def variables(self) -> list[VariableSpec]:
        return [v for sec in self.data_sections for v in sec.variables]

    @cached_property
    def btf_blob(self) -> bytes | None:
        """The BTF as handed to the kernel, encoded once per object: every variant an agent
        loads from one parsed object loads the same bytes."""
        return None if self.btf is None else encode_btf(self.btf)

    def variable(self, name: str) -> VariableSpec | None:
        for v in self.variables():
            if v.name == name:
                return v
        return None


def has_core_relos(obj: ObjectSpec) -> bool:
    """Whether any function of `obj` carries CO-RE records (the loader imports its CO-RE
    machinery only for such objects, or when a target BTF is given)."""
    return any(f.core_relos for f in [*obj.programs, *obj.subprograms])
