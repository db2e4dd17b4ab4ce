"""User maps: BTF-defined `.maps` and the legacy `maps` section (struct bpf_map_def)."""

from __future__ import annotations

import struct

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import Array, Datasec, Ptr, Struct, Var
from bpfglobals.elf.elf_file import ElfImage
from bpfglobals.elf.model import MapSpec
from bpfglobals.errors import ElfError

# BPF_MAP_TYPE_* in uapi order, spelled as libbpf/bpftool spell them.
MAP_TYPE_NAMES = (
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
)
_INT_FIELDS = {
    "type",
    "max_entries",
    "map_flags",
    "key_size",
    "value_size",
    "pinning",
    "map_extra",
    "numa_node",
}


def map_type_name(type_id: int) -> str:
    return MAP_TYPE_NAMES[type_id] if 0 <= type_id < len(MAP_TYPE_NAMES) else f"type_{type_id}"


def read_btf_maps(elf: ElfImage, btf: Btf | None) -> list[MapSpec]:
    sec = elf.by_name(".maps")
    if sec is None:
        return []
    if btf is None:
        raise ElfError(".maps: BTF-defined maps need the object's .BTF section (compile with -g)")
    ds_id = next(
        (i for i, t in enumerate(btf.types) if isinstance(t, Datasec) and t.name == ".maps"), None
    )
    if ds_id is None:
        raise ElfError(".maps: no DATASEC '.maps' in BTF")
    ds = btf[ds_id]
    out = []
    for vsi in ds.vars:  # type: ignore[union-attr]
        var = btf[vsi.type]
        if not isinstance(var, Var):
            raise ElfError(f".maps: entry [{vsi.type}] is not a variable")
        out.append(_btf_map(btf, var))
    return out


def _btf_map(btf: Btf, var: Var) -> MapSpec:
    where = f".maps: map '{var.name}'"
    _, st = btf.resolve(var.type)
    if not isinstance(st, Struct):
        raise ElfError(f"{where}: definition is {st.kind.name}, not a struct")
    ints: dict[str, int] = {}
    key_id = value_id = 0
    for m in st.members:
        _, mt = btf.resolve(m.type)
        if not isinstance(mt, Ptr):
            raise ElfError(f"{where}: field '{m.name}' is not a __uint/__type pointer")
        if m.name in _INT_FIELDS:
            _, arr = btf.resolve(mt.type)
            if not isinstance(arr, Array):
                raise ElfError(f"{where}: field '{m.name}' is not declared with __uint()")
            ints[m.name] = arr.nelems
        elif m.name == "key":
            key_id = mt.type
        elif m.name == "value":
            value_id = mt.type
        elif m.name == "values":
            raise ElfError(f"{where}: map-in-map initial values are not supported")
        else:
            raise ElfError(f"{where}: unknown map field '{m.name}'")
    key_size = btf.size_of(key_id) if key_id else ints.get("key_size", 0)
    value_size = btf.size_of(value_id) if value_id else ints.get("value_size", 0)
    for field, declared, actual in (
        ("key_size", ints.get("key_size"), key_size),
        ("value_size", ints.get("value_size"), value_size),
    ):
        if declared is not None and declared != actual:
            raise ElfError(f"{where}: {field} {declared} conflicts with the BTF type's {actual}")
    if "type" not in ints:
        raise ElfError(f"{where}: no map type (__uint(type, ...))")
    return MapSpec(
        name=var.name,
        type=map_type_name(ints["type"]),
        type_id=ints["type"],
        key_size=key_size,
        value_size=value_size,
        max_entries=ints.get("max_entries", 0),
        flags=ints.get("map_flags", 0),
        pinning=ints.get("pinning", 0),
        map_extra=ints.get("map_extra", 0),
        numa_node=ints.get("numa_node", 0),
        btf_key_type_id=key_id,
        btf_value_type_id=value_id,
    )


_LEGACY_DEF = struct.Struct("<IIIII")  # type, key_size, value_size, max_entries, map_flags


def read_legacy_maps(elf: ElfImage) -> list[MapSpec]:
    sec = elf.by_name("maps")
    if sec is None:
        return []
    syms = sorted(
        (s for s in elf.symbols if s.shndx == sec.index and s.name), key=lambda s: s.value
    )
    if not syms or sec.size % len(syms):
        raise ElfError(f"maps: {sec.size} bytes cannot hold {len(syms)} map definitions evenly")
    def_size = sec.size // len(syms)
    if def_size < _LEGACY_DEF.size:
        raise ElfError(f"maps: definition size {def_size} is smaller than struct bpf_map_def")
    out = []
    for s in syms:
        if s.value + def_size > sec.size:
            raise ElfError(f"maps: map '{s.name}' lies outside the section")
        t, ks, vs, me, fl = _LEGACY_DEF.unpack_from(sec.data, s.value)
        out.append(MapSpec(s.name, map_type_name(t), t, ks, vs, me, fl, legacy=True))
    return out
