"""Map commands: create, element update/lookup/delete/next-key, freeze."""

from __future__ import annotations

from bpfglobals.kernel.abi import ffi
from bpfglobals.kernel.constants import BPF_OBJ_NAME_LEN, Cmd, UpdateFlags
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.syscall import addr, bpf, buffer, new


def map_create(
    *,
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    name: str = "",
    flags: int = 0,
    btf_fd: FD | None = None,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    map_extra: int = 0,
    numa_node: int = 0,
    inner_map_fd: FD | None = None,
) -> FD:
    a = new("struct bpf_map_create_attr")
    a.map_type, a.key_size, a.value_size = map_type, key_size, value_size
    a.max_entries, a.map_flags, a.numa_node, a.map_extra = max_entries, flags, numa_node, map_extra
    a.map_name = name.encode()[: BPF_OBJ_NAME_LEN - 1]
    if btf_fd is not None:
        a.btf_fd, a.btf_key_type_id, a.btf_value_type_id = (
            btf_fd.raw,
            btf_key_type_id,
            btf_value_type_id,
        )
    if inner_map_fd is not None:
        a.inner_map_fd = inner_map_fd.raw
    return FD(bpf(Cmd.MAP_CREATE, a, f"map '{name}'"))


def _elem(fd: FD, key: bytes, value_ptr: int, flags: int) -> tuple[object, object]:
    a = new("struct bpf_map_elem_attr")
    kbuf, kaddr = buffer(key)
    a.map_fd, a.key, a.value, a.flags = fd.raw, kaddr, value_ptr, flags
    return a, kbuf


def map_update(fd: FD, key: bytes, value: bytes, flags: int = UpdateFlags.ANY) -> None:
    vbuf, vaddr = buffer(value)
    a, _k = _elem(fd, key, vaddr, flags)
    bpf(Cmd.MAP_UPDATE_ELEM, a, f"map fd {fd.raw}")
    del vbuf


def map_lookup(fd: FD, key: bytes, value_size: int) -> bytes:
    out = ffi.new("char[]", value_size)
    a, _k = _elem(fd, key, addr(out), 0)
    bpf(Cmd.MAP_LOOKUP_ELEM, a, f"map fd {fd.raw}")
    return bytes(ffi.buffer(out, value_size))


def map_delete(fd: FD, key: bytes) -> None:
    a, _k = _elem(fd, key, 0, 0)
    bpf(Cmd.MAP_DELETE_ELEM, a, f"map fd {fd.raw}")


def map_next_key(fd: FD, key: bytes | None, key_size: int) -> bytes | None:
    """The key after `key` (the first key when None); None at the end."""
    out = ffi.new("char[]", key_size)
    a = new("struct bpf_map_elem_attr")
    kbuf = None
    a.map_fd, a.value = fd.raw, addr(out)
    if key is not None:
        kbuf, a.key = buffer(key)
    try:
        bpf(Cmd.MAP_GET_NEXT_KEY, a, f"map fd {fd.raw}")
    except Exception as e:
        if getattr(e, "errno", None) == 2:  # ENOENT: no more keys
            return None
        raise
    del kbuf
    return bytes(ffi.buffer(out, key_size))


def map_freeze(fd: FD) -> None:
    """After this, user space can no longer write the map (programs still can unless
    BPF_F_RDONLY_PROG); the verifier may then treat read-only values as constants."""
    a = new("struct bpf_map_freeze_attr")
    a.map_fd = fd.raw
    bpf(Cmd.MAP_FREEZE, a, f"map fd {fd.raw}")
