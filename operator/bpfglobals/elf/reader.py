"""Read a whole BPF object: the `open` phase of libbpf, with no kernel involved."""

from __future__ import annotations

import os
import struct

from bpfglobals.elf.btf import Btf
from bpfglobals.elf.btf_ext import BtfExt, parse_btf_ext
from bpfglobals.elf.btf_parse import parse_btf
from bpfglobals.elf.data_sections import object_name, read_data_sections
from bpfglobals.elf.datasec_fixup import fixup_datasecs
from bpfglobals.elf.elf_file import SHF_EXECINSTR, SHT_REL, ElfImage, read_elf
from bpfglobals.elf.externs import collect_externs, kconfig_section
from bpfglobals.elf.func_linkage import mark_hidden_subprograms_static
from bpfglobals.elf.legacy_maps import read_legacy_maps
from bpfglobals.elf.maps import read_btf_maps
from bpfglobals.elf.model import ObjectSpec
from bpfglobals.elf.programs import read_programs
from bpfglobals.elf.source_file import read_source
from bpfglobals.errors import ElfError


def read_object(path: str | os.PathLike[str]) -> ObjectSpec:
    p, data = read_source(path)
    return read_object_bytes(data, os.path.basename(p), p)


def read_object_bytes(data: bytes, name: str, path: str = "") -> ObjectSpec:
    """Parse an object from memory; `name` is its file name (it names the internal maps)."""
    try:
        return _read(data, name, path or name)
    except ElfError as e:
        if str(e).startswith(name):
            raise
        raise type(e)(f"{name}: {e}") from e
    except RecursionError as e:
        raise ElfError(f"{name}: type graph too deep (malformed BTF?)") from e


def _read(data: bytes, name: str, path: str) -> ObjectSpec:
    elf = read_elf(data, name)
    btf = _btf(elf)
    ext = _btf_ext(elf, btf)
    externs, btf = collect_externs(elf, btf)
    _check_relocation_sections(elf)
    obj_name = object_name(name)
    programs, subprograms = read_programs(elf, ext)
    btf = mark_hidden_subprograms_static(btf, elf, subprograms)
    return ObjectSpec(
        path=path,
        name=obj_name,
        license=_license(elf),
        kernel_version=_version(elf),
        programs=programs,
        subprograms=subprograms,
        maps=read_btf_maps(elf, btf, programs) + read_legacy_maps(elf),
        data_sections=read_data_sections(elf, btf, obj_name),
        btf=btf,
        raw=data,
        externs=externs,
        kconfig=kconfig_section(externs, btf, obj_name),
        btf_ext=ext,
    )


# Relocation sections that patch what the loader never hands to the kernel: DWARF, and the
# .BTF/.BTF.ext offsets libbpf (and we) fix up without them.
_UNLOADED_PREFIXES = (".debug_", ".BTF")


def _check_relocation_sections(elf: ElfImage) -> None:
    """Every relocation section patches code (classified with the programs), BTF-defined map
    initialisers (the map reader's: applied or refused there) or data that is not loaded; a
    relocation of anything else would be silently lost, so it is refused."""
    for s in elf.sections:
        if s.type != SHT_REL:
            continue
        target = elf.section(s.info, f"relocation section {s.name}")
        if target.flags & SHF_EXECINSTR or target.name.startswith(_UNLOADED_PREFIXES):
            continue
        if target.name == ".maps":
            continue
        n = s.size // 16
        raise ElfError(
            f"relocation section {s.name}: {n} relocation(s) of section {target.name}, which "
            "is neither code nor debug info; pointers in global data or map definitions "
            "are not relocated by bpfglobals (nor by libbpf)"
        )


def _btf(elf: ElfImage) -> Btf | None:
    sec = elf.by_name(".BTF")
    return None if sec is None else fixup_datasecs(parse_btf(sec.data), elf)


def _btf_ext(elf: ElfImage, btf: Btf | None) -> BtfExt | None:
    sec = elf.by_name(".BTF.ext")
    if sec is None or btf is None:
        return None
    return parse_btf_ext(sec.data, btf.strings)


def _license(elf: ElfImage) -> str:
    sec = elf.by_name("license")
    if sec is None:
        return ""
    raw = sec.data.split(b"\0", 1)[0]
    return raw.decode("ascii", errors="replace")


def _version(elf: ElfImage) -> int:
    sec = elf.by_name("version")
    if sec is None:
        return 0
    if sec.size != 4:
        raise ElfError(f"version section is {sec.size} bytes, expected 4")
    return struct.unpack("<I", sec.data)[0]
