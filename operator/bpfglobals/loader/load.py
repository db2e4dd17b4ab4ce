"""`load(obj, values)`: libbpf's phases over our own syscall layer.

open (the ObjectSpec) → configure (value images) → BTF → maps (internal: create, write,
freeze .rodata) → relocate (link + map fds into ldimm64) → PROG_LOAD → pin. A failure at any
phase closes and unpins everything this call created, so nothing half-loaded stays behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import struct
from collections.abc import Mapping

from bpfglobals.elf.btf_encode import encode_btf
from bpfglobals.elf.model import ObjectSpec, ProgramSpec, RelocKind
from bpfglobals.kernel.bpffs import pin_name
from bpfglobals.kernel.btf import btf_load
from bpfglobals.kernel.constants import (
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    ProgFlags,
    attach_type_id,
    prog_type_id,
)
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.objects import prog_info
from bpfglobals.kernel.progs import prog_load
from bpfglobals.loader.attach_btf import attach_btf_id, needs_attach_btf
from bpfglobals.loader.errors import LoadError, VerifierError
from bpfglobals.loader.linker import LinkedProgram, function_table, link_program, set_imm
from bpfglobals.loader.loaded import LoadedMap, LoadedObject, LoadedProgram
from bpfglobals.loader.maps import create_internal_map, create_user_map, reuse_internal_map
from bpfglobals.loader.pin import pin_maps, pin_programs, unpin
from bpfglobals.values import configure

# Program types whose load needs a target we do not resolve: another BPF program, a kernel
# struct of function pointers.
_UNSUPPORTED = {"ext": "freplace", "struct_ops": "struct_ops"}


def load(
    obj: ObjectSpec,
    values: Mapping[str, object] | None = None,
    *,
    images: Mapping[str, bytes] | None = None,
    pin: str | None = None,
    reuse_maps: Mapping[str, FD] | None = None,
    programs: list[str] | None = None,
) -> LoadedObject:
    """Load `obj` with `values` (or ready `images` of its data sections).

    `pin`: a directory in bpffs; programs go to PIN/programs/<name>, maps to PIN/maps/<name>.
    `reuse_maps`: map name (or data section name, e.g. ".bss") -> FD to use instead of
    creating, for replacing a running load while keeping its state; reused data-section maps
    keep their contents (the caller writes what changed).
    `programs`: load only these (default: all).
    """
    images = dict(images) if images is not None else configure(obj, values or {})
    selected = select_programs(obj, programs)
    created_pins: list[str] = []
    with contextlib.ExitStack() as undo:
        btf_fd = _load_btf(obj)
        if btf_fd is not None:
            undo.callback(btf_fd.close)
        maps_dir = os.path.join(pin, "maps") if pin else None
        if pin:
            undo.callback(_remove_empty_dirs, _prepare_pin_dir(pin))
        maps: dict[str, LoadedMap] = {}
        for sec in obj.data_sections:
            handed = (reuse_maps or {}).get(sec.name)
            if handed is not None:
                m = reuse_internal_map(sec, handed)
            else:
                m = create_internal_map(sec, images[sec.name], btf_fd)
            undo.callback(m.fd.close)
            maps[sec.name] = m
        for spec in obj.maps:
            m = create_user_map(spec, btf_fd, maps_dir, (reuse_maps or {}).get(spec.name))
            undo.callback(m.fd.close)
            maps[spec.name] = m
        table = function_table(obj)
        loaded: dict[str, LoadedProgram] = {}
        for prog in selected:
            linked = link_program(prog, table)
            fd = _load_program(obj, linked, maps, btf_fd)
            undo.callback(fd.close)
            loaded[prog.name] = LoadedProgram(prog, fd, prog_info(fd)[0])
        if pin:
            undo.callback(unpin, created_pins)
            _pin_all(pin, loaded, maps, created_pins)
        result = LoadedObject(obj.name, loaded, maps, btf_fd, dict(images))
        undo.pop_all()  # success: the caller owns the FDs now
        return result
    raise AssertionError("unreachable")  # pragma: no cover


def select_programs(
    obj: ObjectSpec, names: list[str] | None, where: str = "programs"
) -> list[ProgramSpec]:
    """The programs named (all when None): the one check that a program exists."""
    if names is None:
        return list(obj.programs)
    by_name = {p.name: p for p in obj.programs}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise LoadError(
            f"{where}: no program '{missing[0]}' in {obj.name} (has {', '.join(sorted(by_name))})"
        )
    return [by_name[n] for n in names]


def _load_btf(obj: ObjectSpec) -> FD | None:
    if obj.btf is None:
        return None
    try:
        return btf_load(encode_btf(obj.btf), f"BTF of {obj.name}")
    except KernelError as e:
        tail = "\n".join(e.log.rstrip().splitlines()[-8:])
        raise LoadError(f"{obj.name}: the kernel rejected the object's BTF: {e}\n{tail}") from e


def _relocate(linked: LinkedProgram, maps: dict[str, LoadedMap]) -> None:
    for index, r in linked.map_refs:
        m = maps.get(r.target)
        if m is None:
            raise LoadError(f"program '{linked.spec.name}': refers to unknown map '{r.target}'")
        if r.kind == RelocKind.DATA:
            set_imm(linked.insns, index, m.fd.raw, BPF_PSEUDO_MAP_VALUE)
            set_imm(linked.insns, index + 1, r.offset)
        else:
            set_imm(linked.insns, index, m.fd.raw, BPF_PSEUDO_MAP_FD)
            set_imm(linked.insns, index + 1, 0)


def _load_program(
    obj: ObjectSpec, linked: LinkedProgram, maps: dict[str, LoadedMap], btf_fd: FD | None
) -> FD:
    p = linked.spec
    if not p.type.prog_type:
        raise LoadError(f"program '{p.name}': section '{p.section}' names no program type")
    if p.type.prog_type in _UNSUPPORTED:
        raise LoadError(
            f"program '{p.name}': {_UNSUPPORTED[p.type.prog_type]} programs ({p.section}) are "
            "not supported"
        )
    btf_target = attach_btf_id(p) if needs_attach_btf(p) else 0
    _relocate(linked, maps)
    flags = (ProgFlags.SLEEPABLE if p.type.sleepable else 0) | (
        ProgFlags.XDP_HAS_FRAGS if p.type.xdp_frags else 0
    )
    func_info = b"".join(struct.pack("<II", f.insn_off, f.type_id) for f in linked.func_info)
    line_info = b"".join(
        struct.pack("<IIII", li.insn_off, li.file_name_off, li.line_off, li.line_col)
        for li in linked.line_info
    )
    try:
        return prog_load(
            prog_type=prog_type_id(p.type.prog_type),
            expected_attach_type=attach_type_id(p.type.attach_type) if p.type.attach_type else 0,
            insns=bytes(linked.insns),
            license=obj.license,
            name=p.name,
            kern_version=obj.kernel_version,
            prog_flags=int(flags),
            btf_fd=btf_fd,
            func_info=func_info if btf_fd else b"",
            line_info=line_info if btf_fd else b"",
            attach_btf_id=btf_target,
        )
    except KernelError as e:
        if e.log:
            raise VerifierError(p.name, p.section, errno.errorcode.get(e.errno, "?"), e.log) from e
        why = ""
        if e.errno == errno.EPERM and needs_attach_btf(p) and os.geteuid() == 0:
            why = (
                "; as root this means the kernel refuses BPF trampolines for this target "
                "(kernel lockdown, or a function it does not allow to be traced)"
            )
        raise LoadError(f"program '{p.name}' (section {p.section}): {e}{why}") from e


def _remove_empty_dirs(dirs: list[str]) -> None:
    for d in reversed(dirs):
        with contextlib.suppress(OSError):
            os.rmdir(d)


def _prepare_pin_dir(pin: str) -> list[str]:
    """Make PIN/maps and PIN/programs; return the directories this call created."""
    from bpfglobals.kernel.bpffs import under_bpffs

    if not under_bpffs(os.path.dirname(pin.rstrip("/")) or "/"):
        raise LoadError(f"pin directory {pin} is not inside a mounted bpffs (/sys/fs/bpf)")
    progs_dir = os.path.join(pin, "programs")
    if os.path.isdir(progs_dir) and os.listdir(progs_dir):
        raise LoadError(
            f"pin directory {pin} already holds programs ({', '.join(os.listdir(progs_dir))}); "
            "unload it first (bpfglobals unload) — nothing is replaced silently"
        )
    created = []
    for d in (pin, os.path.join(pin, "maps"), progs_dir):
        if not os.path.isdir(d):
            os.mkdir(d)
            created.append(d)
    return created


def _pin_all(
    pin: str, progs: dict[str, LoadedProgram], maps: dict[str, LoadedMap], created: list[str]
) -> None:
    pin_maps(maps.values(), lambda m: os.path.join(pin, "maps", pin_name(m.name)), created)
    pin_programs(progs.values(), os.path.join(pin, "programs"), created)


def unload(pin: str) -> list[str]:
    """Remove what `load --pin` pinned (the kernel frees objects nothing else holds)."""
    removed = []
    for sub in ("programs", "maps"):
        d = os.path.join(pin, sub)
        if os.path.isdir(d):
            for name in sorted(os.listdir(d)):
                os.unlink(os.path.join(d, name))
                removed.append(os.path.join(d, name))
            os.rmdir(d)
    if os.path.isdir(pin) and not os.listdir(pin):
        shutil.rmtree(pin)
    elif not removed:
        raise LoadError(f"{pin}: nothing pinned by bpfglobals here")
    return removed
