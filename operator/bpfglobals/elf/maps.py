"""BTF-defined maps (`.maps`), as libbpf's parse_btf_map_def and .maps relocations read them.

A definition is a struct of `__uint(f, N)` (pointer to an array of N ints), `__type(f, T)`
(pointer to T) and, last, `__array(values, ...)`: the inner-map template of a map-in-map or
the program type of a prog array. Initialisers of `values` reach us as relocations of the
`.maps` section: slot i of map M holds map/program S.
"""

from __future__ import annotations

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_types import Array, Datasec, FuncProto, Ptr, Struct, Var, VarSecinfo
from bpfglobals.elf.elf_file import ElfImage, Section
from bpfglobals.elf.map_types import (
    HASH_OF_MAPS,
    MAP_IN_MAP,
    PIN_BY_NAME,
    PIN_NONE,
    PROG_ARRAY,
    map_type_name,
)
from bpfglobals.elf.model import MapSpec, ProgramSpec
from bpfglobals.errors import ElfError
from bpfglobals.frozen import replace

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
_BPF_PTR_SIZE = 8  # a slot in `values` is one BPF pointer


def read_btf_maps(
    elf: ElfImage, btf: Btf | None, programs: list[ProgramSpec] | None = None
) -> list[MapSpec]:
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
    entries: list[tuple[VarSecinfo, MapSpec]] = []
    for vsi in ds.vars:  # type: ignore[union-attr]
        var = btf[vsi.type]
        if not isinstance(var, Var):
            raise ElfError(f".maps: entry [{vsi.type}] is not a variable")
        entries.append((vsi, parse_map_def(btf, var.type, f".maps: map '{var.name}'", var.name)))
    slots = _slots(elf, sec, btf, entries, programs or [])
    return [replace(m, init_slots=tuple(sorted(slots.get(m.name, {}).items()))) for _, m in entries]


def parse_map_def(btf: Btf, def_type: int, where: str, name: str, inner: bool = False) -> MapSpec:
    _, st = btf.resolve(def_type)
    if not isinstance(st, Struct):
        raise ElfError(f"{where}: definition is {st.kind.name}, not a struct")
    ints: dict[str, int] = {}
    key_id = value_id = 0
    inner_spec: MapSpec | None = None
    has_values = False
    for i, m in enumerate(st.members):
        _, mt = btf.resolve(m.type)
        if m.name == "values":
            if i != len(st.members) - 1:
                raise ElfError(f"{where}: 'values' must be the last field")
            if inner:
                raise ElfError(f"{where}: multi-level inner maps are not supported (as libbpf)")
            inner_spec = _values(btf, mt, ints.get("type", 0), where, name)
            has_values = True
            continue
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
        else:
            raise ElfError(f"{where}: unknown map field '{m.name}'")
    key_size = btf.size_of(key_id) if key_id else ints.get("key_size", 0)
    value_size = btf.size_of(value_id) if value_id else ints.get("value_size", 0)
    if has_values:  # slots hold fds: 4 bytes
        if value_size not in (0, 4):
            raise ElfError(f"{where}: 'values' makes value_size 4; it conflicts with {value_size}")
        value_size = 4
    for field, declared, actual in (
        ("key_size", ints.get("key_size"), key_size),
        ("value_size", ints.get("value_size"), value_size),
    ):
        if declared is not None and declared != actual:
            raise ElfError(f"{where}: {field} {declared} conflicts with the BTF type's {actual}")
    if not ints.get("type"):
        raise ElfError(f"{where}: no map type (__uint(type, ...))")
    pinning = ints.get("pinning", PIN_NONE)
    if inner and "pinning" in ints:
        raise ElfError(f"{where}: an inner map definition cannot be pinned")
    if pinning not in (PIN_NONE, PIN_BY_NAME):
        raise ElfError(f"{where}: pinning {pinning} is neither LIBBPF_PIN_NONE nor _BY_NAME")
    if ints["type"] in MAP_IN_MAP and inner_spec is None:
        raise ElfError(
            f"{where}: {map_type_name(ints['type'])} needs its inner map declared with "
            "__array(values, struct { ... })"
        )
    return MapSpec(
        name=name,
        type=map_type_name(ints["type"]),
        type_id=ints["type"],
        key_size=key_size,
        value_size=value_size,
        max_entries=ints.get("max_entries", 0),
        flags=ints.get("map_flags", 0),
        pinning=pinning,
        map_extra=ints.get("map_extra", 0),
        numa_node=ints.get("numa_node", 0),
        btf_key_type_id=key_id,
        btf_value_type_id=value_id,
        inner=inner_spec,
    )


def _values(btf: Btf, arr: object, map_type: int, where: str, name: str) -> MapSpec | None:
    """`__array(values, T)`: T is `struct {...}` (map-in-map) or a function (prog array)."""
    if map_type not in MAP_IN_MAP and map_type != PROG_ARRAY:
        raise ElfError(
            f"{where}: 'values' is for map-in-map and prog arrays, not {map_type_name(map_type)}"
            " (declare __uint(type, ...) before it)"
        )
    if not isinstance(arr, Array) or arr.nelems:
        raise ElfError(f"{where}: 'values' is not a zero-sized array")
    _, ptr = btf.resolve(arr.type)
    if not isinstance(ptr, Ptr):
        raise ElfError(f"{where}: 'values' elements are {ptr.kind.name}, not pointers")
    target_id, target = btf.resolve(ptr.type)
    if map_type == PROG_ARRAY:
        if not isinstance(target, FuncProto):
            raise ElfError(f"{where}: prog-array 'values' must point to functions")
        return None
    if not isinstance(target, Struct):
        raise ElfError(f"{where}: the inner map definition is {target.kind.name}, not a struct")
    return parse_map_def(btf, target_id, f"{where} (inner map)", f"{name}.inner", inner=True)


def _slots(
    elf: ElfImage,
    sec: Section,
    btf: Btf,
    entries: list[tuple[VarSecinfo, MapSpec]],
    programs: list[ProgramSpec],
) -> dict[str, dict[int, str]]:
    """map name -> {slot index: target name}, from the relocations of the `.maps` section."""
    entry_points = {(p.section, p.section_offset): p.name for p in programs}
    out: dict[str, dict[int, str]] = {}
    for n, rel in enumerate(elf.rels.get(sec.index, [])):
        where = f".maps relocation #{n} (offset {rel.offset})"
        owner = next(
            (
                (v, m)
                for v, m in entries
                if v.offset <= rel.offset <= v.offset + v.size - _BPF_PTR_SIZE
            ),
            None,
        )
        if owner is None:
            raise ElfError(f"{where}: lies in no map definition")
        vsi, spec = owner
        where = f".maps: map '{spec.name}' initialiser"
        sym = elf.symbol(rel.sym, where)
        if spec.type_id in MAP_IN_MAP:
            if sym.shndx != sec.index or not any(m.name == sym.name for _, m in entries):
                raise ElfError(f"{where}: '{sym.name}' is not a BTF-defined map")
            if spec.type_id == HASH_OF_MAPS and spec.key_size != 4:
                raise ElfError(f"{where}: a hash of maps with initial slots needs a 4-byte key")
        elif spec.type_id == PROG_ARRAY:
            target = elf.section(sym.shndx, where) if 0 < sym.shndx < 0xFF00 else None
            if target is None or entry_points.get((target.name, sym.value)) != sym.name:
                raise ElfError(f"{where}: '{sym.name}' is not a program's entry point")
        else:
            raise ElfError(f"{where}: {spec.type} maps take no initial values")
        index, misaligned = divmod(
            rel.offset - vsi.offset - _values_offset(btf, vsi), _BPF_PTR_SIZE
        )
        if index < 0 or misaligned:
            raise ElfError(f"{where}: relocation at offset {rel.offset} is not a 'values' slot")
        if index >= spec.max_entries:
            raise ElfError(
                f"{where}: slot {index} is beyond max_entries {spec.max_entries} "
                f"('{sym.name}' cannot be stored)"
            )
        out.setdefault(spec.name, {})[index] = sym.name
    return out


def _values_offset(btf: Btf, vsi: VarSecinfo) -> int:
    _, st = btf.resolve(btf[vsi.type].type)  # type: ignore[union-attr]
    last = st.members[-1] if isinstance(st, Struct) and st.members else None
    if last is None or last.name != "values":
        raise ElfError(f".maps: relocation into a map without a 'values' field (at {vsi.offset})")
    return last.bit_offset // 8
