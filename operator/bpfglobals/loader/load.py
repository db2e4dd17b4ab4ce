"""`load(obj, values)`: libbpf's phases over our own syscall layer.

open (the ObjectSpec) → configure (value images) → BTF → maps (internal: create, write,
freeze .rodata) → relocate (link + map fds into ldimm64) → PROG_LOAD → pin. A failure at any
phase closes and unpins everything this call created, so nothing half-loaded stays behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Mapping

from bpfglobals.elf.datasec_fixup import KCONFIG_SEC
from bpfglobals.elf.map_types import MAP_IN_MAP, PIN_GLOBAL_NS, PROG_ARRAY
from bpfglobals.elf.model import ObjectSpec, ProgramSpec, RelocKind, has_core_relos
from bpfglobals.kernel.bpffs import pin_name
from bpfglobals.kernel.btf import btf_load
from bpfglobals.kernel.constants import (
    BPF_PSEUDO_MAP_FD,
    BPF_PSEUDO_MAP_VALUE,
    ProgFlags,
    attach_type_id,
    prog_type_id,
)
from bpfglobals.kernel.errors import KernelError, errno_name
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.objects import prog_info
from bpfglobals.kernel.progs import prog_load
from bpfglobals.loader.attach_btf import attach_btf_id, needs_attach_btf
from bpfglobals.loader.errors import LoadError, VerifierError
from bpfglobals.loader.externs import ResolvedExterns, patch_extern, resolve_externs
from bpfglobals.loader.linker import LinkedProgram, function_table, link_program, set_imm
from bpfglobals.loader.loaded import LoadedMap, LoadedObject, LoadedProgram
from bpfglobals.loader.maps import (
    create_internal_map,
    create_user_map,
    fill_slots,
    pin_by_definition,
    reuse_internal_map,
)
from bpfglobals.loader.pin import pin_maps, pin_programs, unpin
from bpfglobals.values.assign import configure

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
    target_btf: str | None = None,
    core_in_kernel: bool = False,
) -> LoadedObject:
    """Load `obj` with `values` (or ready `images` of its data sections).

    `pin`: a directory in bpffs; programs go to PIN/programs/<name>, maps to PIN/maps/<name>.
    `reuse_maps`: map name (or data section name, e.g. ".bss") -> FD to use instead of
    creating, for replacing a running load while keeping its state; reused data-section maps
    keep their contents (the caller writes what changed).
    `programs`: load only these (default: all).
    `target_btf`: resolve CO-RE relocations against this BTF (raw, or an ELF's .BTF) instead
    of the running kernel's (libbpf's btf_custom_path).
    `core_in_kernel`: hand the CO-RE records to PROG_LOAD (the kernel's own relocation code,
    kernel >= 5.17, vmlinux/module BTF only) instead of relocating here.
    """
    if target_btf and core_in_kernel:
        raise LoadError(
            f"{obj.name}: a custom target BTF ({target_btf}) needs our CO-RE; the kernel's "
            "relocates against its own BTF only"
        )
    images = dict(images) if images is not None else configure(obj, values or {})
    selected = _to_load(obj, programs)
    core = None
    if target_btf or has_core_relos(obj):
        # imported here: CO-RE (core_relo, core_spec, kernel BTF) is start-up cost an object
        # without CO-RE records should not pay (issue 16)
        from bpfglobals.loader.core import core_target, relocate_object

        core = core_target(target_btf)
    if core is not None and not core_in_kernel:
        obj, _ = relocate_object(obj, selected, core)
        selected = _to_load(obj, programs)  # the relocated copies
    created_pins: list[str] = []
    with contextlib.ExitStack() as undo:
        externs = resolve_externs(obj)
        undo.callback(externs.close)  # module BTF fds: the kernel holds what programs use
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
        undo.callback(unpin, created_pins)
        if obj.kconfig is not None and externs.kconfig is not None:
            # libbpf's .kconfig map: always new, written once and frozen
            m = create_internal_map(obj.kconfig, externs.kconfig, btf_fd)
            undo.callback(m.fd.close)
            maps[obj.kconfig.name] = m
        for spec in obj.maps:
            m = create_user_map(spec, btf_fd, maps_dir, (reuse_maps or {}).get(spec.name))
            undo.callback(m.fd.close)
            maps[spec.name] = m
            if spec.pinning == PIN_GLOBAL_NS and not m.reused:
                undo.callback(_remove_empty_dirs, pin_by_definition(m))
                undo.callback(unpin, [m.pin])
        map_fds = {name: m.fd for name, m in maps.items()}
        for spec in obj.maps:  # map-in-map slots, once every map they may name exists
            if spec.type_id in MAP_IN_MAP and not maps[spec.name].reused:
                fill_slots(maps[spec.name], spec.init_slots, map_fds)
        table = function_table(obj)
        loaded: dict[str, LoadedProgram] = {}
        for prog in selected:
            linked = link_program(prog, table)
            _record_core_relos(linked, applied=core is not None)
            try:
                fd = _load_program(obj, linked, maps, btf_fd, externs, core_in_kernel)
            except VerifierError as e:
                explained = e
                if core:
                    from bpfglobals.loader.core import explain_poisoned

                    explained = explain_poisoned(e, linked, obj, core)
                if explained is e:
                    raise
                raise explained from e
            undo.callback(fd.close)
            loaded[prog.name] = LoadedProgram(prog, fd, prog_info(fd)[0], ledger=linked.ledger)
        if pin:
            _pin_all(pin, loaded, maps, created_pins)
        # Last, since it is the one step that may write into a map this load did not create:
        # as libbpf, the slots are written even into a reused (pinned) prog array.
        prog_fds = {name: p.fd for name, p in loaded.items()}
        for spec in obj.maps:
            if spec.type_id == PROG_ARRAY:
                fill_slots(maps[spec.name], spec.init_slots, prog_fds)
        result = LoadedObject(obj.name, loaded, maps, btf_fd, dict(images), externs.by_name)
        externs.close()  # loaded programs hold their module BTFs themselves
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


def _to_load(obj: ObjectSpec, names: list[str] | None) -> list[ProgramSpec]:
    """The programs named, plus every program a prog array's initial slots hold (the
    selected ones tail-call into them)."""
    wanted = {p.name for p in select_programs(obj, names)}
    wanted |= {t for m in obj.maps if m.type_id == PROG_ARRAY for _, t in m.init_slots}
    return [p for p in obj.programs if p.name in wanted]


def _load_btf(obj: ObjectSpec) -> FD | None:
    blob = obj.btf_blob
    if blob is None:
        return None
    try:
        return btf_load(blob, f"BTF of {obj.name}")
    except KernelError as e:
        tail = "\n".join(e.log.rstrip().splitlines()[-8:])
        raise LoadError(f"{obj.name}: the kernel rejected the object's BTF: {e}\n{tail}") from e


def _relocate(linked: LinkedProgram, maps: dict[str, LoadedMap], externs: ResolvedExterns) -> None:
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
        linked.ledger.add(f"rel:{r.kind.value}", *linked.origin[index])
    kconfig = maps.get(KCONFIG_SEC)
    for index, r in linked.extern_refs:
        res = externs.by_name.get(r.target)
        if res is None:  # the reader refuses undefined symbols that are not externs
            raise LoadError(f"program '{linked.spec.name}': extern '{r.target}' is unresolved")
        call = r.kind == RelocKind.EXTERN_FUNC
        patch_extern(
            linked.insns, index, res, kconfig.fd if kconfig else None, call, linked.spec.name
        )
        linked.ledger.add(f"rel:{r.kind.value}", *linked.origin[index])


def _record_core_relos(linked: LinkedProgram, applied: bool) -> None:
    """CO-RE records of every linked function go into the ledger: relocated by us before
    linking, or handed to the kernel with the program. None may pass unapplied."""
    for fn in linked.layout:
        for c in fn.core_relos:
            if not applied:  # has_core_relos() made a target: a bug if we get here
                raise LoadError(
                    f"program '{linked.spec.name}': CO-RE relocation at {fn.section} "
                    f"instruction {c.insn_off} has no target BTF to be resolved against"
                )
            linked.ledger.add("core_relo", fn.section, fn.section_offset + 8 * c.insn_off)


def _load_program(
    obj: ObjectSpec,
    linked: LinkedProgram,
    maps: dict[str, LoadedMap],
    btf_fd: FD | None,
    externs: ResolvedExterns,
    core_in_kernel: bool = False,
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
    _relocate(linked, maps, externs)
    flags = (ProgFlags.SLEEPABLE if p.type.sleepable else 0) | (
        ProgFlags.XDP_HAS_FRAGS if p.type.xdp_frags else 0
    )
    func_info = b"".join(struct.pack("<II", f.insn_off, f.type_id) for f in linked.func_info)
    line_info = b"".join(
        struct.pack("<IIII", li.insn_off, li.file_name_off, li.line_off, li.line_col)
        for li in linked.line_info
    )
    core_relos = (
        b"".join(
            struct.pack("<IIII", r.insn_off * 8, r.type_id, r.access_off, r.kind)
            for _, r in linked.core_relos
        )
        if core_in_kernel and btf_fd
        else b""
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
            fd_array=externs.fd_array,
            core_relos=core_relos,
        )
    except KernelError as e:
        if e.log:
            raise VerifierError(p.name, p.section, errno_name(e.errno), e.log) from e
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
        os.rmdir(pin)
    elif not removed:
        raise LoadError(f"{pin}: nothing pinned by bpfglobals here")
    return removed
