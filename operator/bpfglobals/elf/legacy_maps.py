"""The legacy `maps` section, read as iproute2's legacy loader reads it (struct bpf_elf_map).

libbpf >= 1.0 refuses this section outright, so iproute2 (built without libbpf) is the peer.
Definitions are laid out back to back, one per symbol, all of the same size (section size /
number of symbols). The layout is iproute2's struct bpf_elf_map, whose first 20 bytes are
libbpf's struct bpf_map_def: type, key_size, value_size, max_entries, map_flags, then id,
pinning, inner_id, inner_idx. Shorter definitions (at least the first four fields, whole u32s)
leave the rest zero; longer ones are refused, as iproute2 refuses them. Nothing is dropped.
"""

from __future__ import annotations

import struct

from bpfglobals.elf.elf_file import ElfImage
from bpfglobals.elf.map_types import PIN_BY_NAME, PIN_GLOBAL_NS, PIN_NONE, map_type_name
from bpfglobals.elf.model import MapSpec
from bpfglobals.errors import ElfError

# iproute2's struct bpf_elf_map: type, key, value, max_entries, flags, id, pinning, inner_id,
# inner_idx
_ELF_MAP = struct.Struct("<IIIIIIIII")
_MIN_SIZE = 16  # struct bpf_elf_map_min: type, key_size, value_size, max_entries
# iproute2's pinning values (include/bpf_elf.h) and what they become here.
_IPROUTE2_PINNING = {0: PIN_NONE, 1: PIN_BY_NAME, 2: PIN_GLOBAL_NS}


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
    if def_size < _MIN_SIZE or def_size % 4:
        raise ElfError(
            f"maps: definition size {def_size} is not whole u32 fields of at least "
            "type, key_size, value_size and max_entries"
        )
    if def_size > _ELF_MAP.size:
        raise ElfError(
            f"maps: definitions are {def_size} bytes, longer than iproute2's struct bpf_elf_map "
            f"({_ELF_MAP.size} bytes: type, key_size, value_size, max_entries, flags, id, "
            "pinning, inner_id, inner_idx); the extra fields would be ignored, so the object is "
            "refused"
        )
    out = []
    for s in syms:
        if s.value + def_size > sec.size:
            raise ElfError(f"maps: map '{s.name}' lies outside the section")
        raw = sec.data[s.value : s.value + def_size] if sec.data else bytes(def_size)
        out.append(_legacy_def(s.name, raw))
    return out


def _legacy_def(name: str, raw: bytes) -> MapSpec:
    where = f"maps: map '{name}'"
    t, ks, vs, me, fl, map_id, pinning, inner_id, inner_idx = _ELF_MAP.unpack(
        raw.ljust(_ELF_MAP.size, b"\0")
    )
    # `id` exists to be named by another map's inner_id: both belong to iproute2's map-in-map.
    # A non-zero one is refused too, so that bytes past struct bpf_map_def are never ignored.
    if map_id or inner_id or inner_idx:
        raise ElfError(
            f"{where}: iproute2 map-in-map fields (id {map_id}, inner_id {inner_id}, "
            f"inner_idx {inner_idx}; bytes 20-35 of the definition) are not supported; "
            "declare map-in-map in .maps with __array(values, ...)"
        )
    if pinning not in _IPROUTE2_PINNING:
        raise ElfError(
            f"{where}: pinning {pinning} is not PIN_NONE (0), PIN_OBJECT_NS (1) or "
            "PIN_GLOBAL_NS (2); iproute2's custom pinning (/etc/iproute2/bpf_pinning) is not "
            "supported"
        )
    return MapSpec(
        name,
        map_type_name(t),
        t,
        ks,
        vs,
        me,
        fl,
        pinning=_IPROUTE2_PINNING[pinning],
        legacy=True,
    )
