"""Create the maps of an object: one array per data section (as libbpf) and the user maps."""

from __future__ import annotations

import os

from bpfglobals.elf.model import DataSectionSpec, MapSpec
from bpfglobals.kernel.constants import BPF_ARRAY, MapFlags
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.maps import map_create, map_freeze, map_update
from bpfglobals.kernel.objects import map_frozen, map_info, obj_get
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.loaded import LoadedMap

LIBBPF_PIN_BY_NAME = 1
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
    spec: MapSpec, btf_fd: FD | None, pin_dir: str | None, reuse: FD | None = None
) -> LoadedMap:
    """A user map: handed in (`reuse`), an existing compatible pin, or a new one."""
    pin = (
        os.path.join(pin_dir, spec.name) if pin_dir and spec.pinning == LIBBPF_PIN_BY_NAME else None
    )
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
    typed = btf_fd is not None and spec.btf_value_type_id != 0
    fd = map_create(
        map_type=spec.type_id,
        key_size=spec.key_size,
        value_size=spec.value_size,
        max_entries=spec.max_entries,
        name=spec.name,
        flags=spec.flags,
        btf_fd=btf_fd if typed else None,
        btf_key_type_id=spec.btf_key_type_id if typed else 0,
        btf_value_type_id=spec.btf_value_type_id if typed else 0,
        map_extra=spec.map_extra,
        numa_node=spec.numa_node,
    )
    return LoadedMap(spec.name, spec.name[:15], spec.type, fd, map_info(fd), False, False, pin)


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
        ("max_entries", spec.max_entries, info.max_entries),
        ("map_flags", spec.flags, info.flags),
    ):
        if want != have:
            raise LoadError(
                f"map '{spec.name}': existing {where} has {field} {have}, the object wants "
                f"{want}; remove the pin or change the definition"
            )
