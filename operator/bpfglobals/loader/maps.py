"""Create the maps of an object: one array per data section (as libbpf) and the user maps."""

from __future__ import annotations

import os
import struct

from bpfglobals.elf.map_types import (
    DEVMAP,
    DEVMAP_HASH,
    NO_BTF_TYPES,
    PERF_EVENT_ARRAY,
    PIN_BY_NAME,
    PIN_GLOBAL_NS,
    RING_BUFFERS,
)
from bpfglobals.elf.model import DataSectionSpec, MapSpec
from bpfglobals.kernel.constants import BPF_ARRAY, MapFlags
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.maps import map_create, map_freeze, map_update
from bpfglobals.kernel.objects import map_frozen, map_info, obj_get, obj_pin
from bpfglobals.loader import log
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.loaded import LoadedMap
from bpfglobals.loader.map_defaults import effective_max_entries

# Flags the kernel adds to a map of this type whatever MAP_CREATE asked for (dev_map_alloc:
# programs may not write devmaps): an existing map with them still fits the definition.
_KERNEL_ADDED_FLAGS = {DEVMAP: MapFlags.RDONLY_PROG, DEVMAP_HASH: MapFlags.RDONLY_PROG}
# iproute2's PIN_GLOBAL_NS directory (its "tc" tree; "xdp" is a symlink to it there).
GLOBAL_PIN_DIR = "/sys/fs/bpf/tc/globals"
_KEY0 = bytes(4)


def internal_map_flags(sec: DataSectionSpec) -> int:
    """libbpf 1.1: every internal map is mmapable; .rodata* and .kconfig are read-only for
    programs."""
    flags = MapFlags.MMAPABLE
    if sec.readonly:
        flags |= MapFlags.RDONLY_PROG
    return int(flags)


def create_internal_map(sec: DataSectionSpec, image: bytes, btf_fd: FD | None) -> LoadedMap:
    """Create, write the configured image, and freeze .rodata so the verifier can trust it."""
    typed = btf_fd is not None and sec.datasec_type_id != 0
    fd = map_create(
        map_type=BPF_ARRAY,
        key_size=4,
        value_size=sec.size,
        max_entries=1,
        name=sec.map_name,
        flags=internal_map_flags(sec),
        btf_fd=btf_fd if typed else None,
        btf_value_type_id=sec.datasec_type_id if typed else 0,
    )
    try:
        map_update(fd, _KEY0, image)
        if sec.readonly:
            map_freeze(fd)
        return LoadedMap(sec.name, sec.map_name, "array", fd, map_info(fd), True, map_frozen(fd))
    except BaseException:
        fd.close()
        raise


def reuse_internal_map(sec: DataSectionSpec, handed: FD) -> LoadedMap:
    """A running load's data-section map, kept (with its contents) for a new variant."""
    fd = handed.dup()
    try:
        info = map_info(fd)
        want = (BPF_ARRAY, 4, sec.size, 1, internal_map_flags(sec))
        have = (info.type, info.key_size, info.value_size, info.max_entries, info.flags)
        if want != have:
            raise LoadError(
                f"map for {sec.name}: the existing map (type, key, value, entries, flags) "
                f"{have} does not fit the object's {want}"
            )
        return LoadedMap(sec.name, info.name, "array", fd, info, True, map_frozen(fd), reused=True)
    except BaseException:
        fd.close()
        raise


def create_user_map(
    spec: MapSpec,
    btf_fd: FD | None,
    pin_dir: str | None,
    reuse: FD | None = None,
    global_dir: str = GLOBAL_PIN_DIR,
) -> LoadedMap:
    """A user map: handed in (`reuse`), an existing compatible pin, or a new one.

    `pin_dir` holds maps pinned by name (LIBBPF_PIN_BY_NAME, iproute2's PIN_OBJECT_NS);
    `global_dir` those of iproute2's PIN_GLOBAL_NS (pinned there even without `pin_dir`).
    """
    pin = user_map_pin(spec, pin_dir, global_dir)
    existing = reuse.dup() if reuse is not None else _pinned(pin)
    if existing is not None:
        try:
            info = map_info(existing)
            _check_compatible(spec, info, pin or "handed-in map")
        except BaseException:
            existing.close()
            raise
        return LoadedMap(
            spec.name,
            info.name,
            spec.type,
            existing,
            info,
            False,
            map_frozen(existing),
            pin,
            reused=True,
        )
    fd = _create(spec, btf_fd)
    return LoadedMap(spec.name, spec.name[:15], spec.type, fd, map_info(fd), False, False, pin)


def user_map_pin(spec: MapSpec, pin_dir: str | None, global_dir: str) -> str | None:
    """Where a user map is pinned by its definition (None: only where the load pins all)."""
    if spec.pinning == PIN_GLOBAL_NS:
        return os.path.join(global_dir, spec.name)
    if spec.pinning == PIN_BY_NAME and pin_dir:
        return os.path.join(pin_dir, spec.name)
    return None


def _create(spec: MapSpec, btf_fd: FD | None) -> FD:
    """MAP_CREATE as libbpf 1.1's bpf_object__create_map does it: BTF key/value types only for
    types that take them, and once more without BTF when the kernel refuses it."""
    typed = (
        btf_fd is not None
        and spec.type_id not in NO_BTF_TYPES
        and bool(spec.btf_key_type_id or spec.btf_value_type_id)
    )
    inner = _create(spec.inner, btf_fd) if spec.inner is not None else None
    try:
        attrs = {
            "map_type": spec.type_id,
            "key_size": spec.key_size,
            "value_size": spec.value_size,
            "max_entries": effective_max_entries(spec),
            "name": spec.name,
            "flags": spec.flags,
            "map_extra": spec.map_extra,
            "numa_node": spec.numa_node,
            "inner_map_fd": inner,
        }
        if typed:
            try:
                return map_create(
                    **attrs,
                    btf_fd=btf_fd,
                    btf_key_type_id=spec.btf_key_type_id,
                    btf_value_type_id=spec.btf_value_type_id,
                )
            except KernelError as e:
                log.warning("map '%s': %s; retrying without BTF key/value types", spec.name, e)
        try:
            return map_create(**attrs)
        except KernelError as e:
            raise LoadError(f"map '{spec.name}' ({spec.type}): {e}{_create_hint(spec)}") from e
    finally:
        if inner is not None:
            inner.close()  # the kernel keeps what it needs of the template


def _create_hint(spec: MapSpec) -> str:
    if spec.max_entries == 0 and spec.type_id not in RING_BUFFERS | {PERF_EVENT_ARRAY}:
        return " (the definition has no max_entries)"
    return ""


def fill_slots(m: LoadedMap, slots: tuple[tuple[int, str], ...], fds: dict[str, FD]) -> None:
    """Write initial slots (`values` initialisers): map-in-map inner maps, prog array programs.

    Slot keys are 4-byte indices, as libbpf writes them (a hash of maps with slots has a
    4-byte key: the parser checks)."""
    for index, target in slots:
        fd = fds.get(target)
        if fd is None:
            raise LoadError(f"map '{m.name}': slot {index} names '{target}', which is not loaded")
        try:
            map_update(m.fd, struct.pack("<I", index), struct.pack("<I", fd.raw))
        except KernelError as e:
            raise LoadError(f"map '{m.name}': setting slot {index} to '{target}': {e}") from e


def pin_by_definition(m: LoadedMap) -> list[str]:
    """Pin a new map where its definition says (iproute2's PIN_GLOBAL_NS directory), making
    the directory when missing; returns the directories made."""
    if m.pin is None:
        raise LoadError(f"map '{m.name}': its definition names no pin path")
    made: list[str] = []
    try:
        for d in _missing_parents(os.path.dirname(m.pin)):
            os.mkdir(d, 0o700)  # as iproute2 makes its tc/globals tree
            made.append(d)
        obj_pin(m.fd, m.pin)
    except BaseException:
        for d in reversed(made):
            os.rmdir(d)
        raise
    return made


def _missing_parents(path: str) -> list[str]:
    missing = []
    while path and path != "/" and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    return list(reversed(missing))


def _pinned(path: str | None) -> FD | None:
    if path is None or not os.path.exists(path):
        return None
    try:
        return obj_get(path)
    except KernelError as e:
        raise LoadError(f"map pin {path} exists but cannot be opened: {e}") from e


def _check_compatible(spec: MapSpec, info, where: str) -> None:
    for field, want, have in (
        ("type", spec.type_id, info.type),
        ("key_size", spec.key_size, info.key_size),
        ("value_size", spec.value_size, info.value_size),
        ("max_entries", effective_max_entries(spec), info.max_entries),
        ("map_flags", spec.flags | _KERNEL_ADDED_FLAGS.get(spec.type_id, 0), info.flags),
    ):
        if want != have:
            raise LoadError(
                f"map '{spec.name}': existing {where} has {field} {have}, the object wants "
                f"{want}; remove the pin or change the definition"
            )
