"""The legacy `maps` section: libbpf's struct bpf_map_def, extended as iproute2 extends it.

Definitions are laid out back to back, one per symbol, all of the same size (section size /
number of symbols, as libbpf and iproute2 compute it). The first 20 bytes are
struct bpf_map_def (type, key_size, value_size, max_entries, map_flags). Longer definitions
are read as iproute2's struct bpf_elf_map, which continues with id, pinning, inner_id and
inner_idx. Every byte beyond what is understood must be zero: anything else is refused, never
dropped.
"""

from __future__ import annotations

import struct

from bpfglobals.elf.elf_file import ElfImage
from bpfglobals.elf.map_types import PIN_BY_NAME, PIN_GLOBAL_NS, PIN_NONE, map_type_name
from bpfglobals.elf.model import MapSpec
from bpfglobals.errors import ElfError

_BPF_MAP_DEF = struct.Struct("<IIIII")  # type, key_size, value_size, max_entries, map_flags
_BPF_ELF_MAP_TAIL = struct.Struct("<IIII")  # iproute2: id, pinning, inner_id, inner_idx
_ELF_MAP_SIZE = _BPF_MAP_DEF.size + _BPF_ELF_MAP_TAIL.size  # 36
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
    if def_size < _BPF_MAP_DEF.size:
        raise ElfError(f"maps: definition size {def_size} is smaller than struct bpf_map_def")
    out = []
    for s in syms:
        if s.value + def_size > sec.size:
            raise ElfError(f"maps: map '{s.name}' lies outside the section")
        raw = sec.data[s.value : s.value + def_size] if sec.data else bytes(def_size)
        out.append(_legacy_def(s.name, raw))
    return out


def _legacy_def(name: str, raw: bytes) -> MapSpec:
    where = f"maps: map '{name}'"
    t, ks, vs, me, fl = _BPF_MAP_DEF.unpack_from(raw)
    tail = raw[_BPF_MAP_DEF.size : _ELF_MAP_SIZE].ljust(_BPF_ELF_MAP_TAIL.size, b"\0")
    _id, pinning, inner_id, inner_idx = _BPF_ELF_MAP_TAIL.unpack(tail)
    # `id` only names the map for other maps' inner_id, which is refused below: no effect.
    if inner_id or inner_idx:
        raise ElfError(
            f"{where}: iproute2 map-in-map fields (inner_id {inner_id}, inner_idx {inner_idx}) "
            "are not supported; declare map-in-map in .maps with __array(values, ...)"
        )
    if pinning not in _IPROUTE2_PINNING:
        raise ElfError(
            f"{where}: pinning {pinning} is not PIN_NONE (0), PIN_OBJECT_NS (1) or "
            "PIN_GLOBAL_NS (2); iproute2's custom pinning (/etc/iproute2/bpf_pinning) is not "
            "supported"
        )
    extra = raw[_ELF_MAP_SIZE:]
    if any(extra):
        first = _ELF_MAP_SIZE + next(i for i, b in enumerate(extra) if b)
        raise ElfError(
            f"{where}: definition is {len(raw)} bytes and byte {first} is not zero; only "
            f"struct bpf_map_def ({_BPF_MAP_DEF.size} bytes) and iproute2's struct "
            f"bpf_elf_map ({_ELF_MAP_SIZE} bytes) are understood"
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
