"""Object-level commands: pin/get in bpffs, IDs, and OBJ_GET_INFO_BY_FD."""

from __future__ import annotations

from collections.abc import Iterator

from bpfglobals.frozen import frozen
from bpfglobals.kernel.abi import ffi
from bpfglobals.kernel.constants import ATTACH_TYPES, LINK_TYPES, PROG_TYPES, Cmd, name_of
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.syscall import addr, bpf, buffer, new


def obj_pin(fd: FD, path: str) -> None:
    a = new("struct bpf_obj_attr")
    p, a.pathname = buffer(path.encode() + b"\0")
    a.bpf_fd = fd.raw
    bpf(Cmd.OBJ_PIN, a, path)
    del p


def obj_get(path: str, flags: int = 0) -> FD:
    a = new("struct bpf_obj_attr")
    p, a.pathname = buffer(path.encode() + b"\0")
    a.file_flags = flags
    fd = FD(bpf(Cmd.OBJ_GET, a, path))
    del p
    return fd


_GET_FD = {
    "prog": Cmd.PROG_GET_FD_BY_ID,
    "map": Cmd.MAP_GET_FD_BY_ID,
    "btf": Cmd.BTF_GET_FD_BY_ID,
    "link": Cmd.LINK_GET_FD_BY_ID,
}
_NEXT_ID = {
    "prog": Cmd.PROG_GET_NEXT_ID,
    "map": Cmd.MAP_GET_NEXT_ID,
    "link": Cmd.LINK_GET_NEXT_ID,
    "btf": Cmd.BTF_GET_NEXT_ID,
}


def fd_by_id(kind: str, obj_id: int) -> FD:
    a = new("struct bpf_get_id_attr")
    a.start_id = obj_id
    return FD(bpf(_GET_FD[kind], a, f"{kind} id {obj_id}"))


def ids(kind: str) -> Iterator[int]:
    """All IDs of one kind currently in the kernel."""
    a = new("struct bpf_get_id_attr")
    while True:
        try:
            bpf(_NEXT_ID[kind], a, f"next {kind} id")
        except KernelError as e:
            if e.errno == 2:  # ENOENT: the end
                return
            raise
        yield a.next_id
        a.start_id = a.next_id


def _info(fd: FD, info: object) -> None:
    a = new("struct bpf_info_attr")
    a.bpf_fd, a.info_len, a.info = fd.raw, ffi.sizeof(info[0]), addr(info)
    bpf(Cmd.OBJ_GET_INFO_BY_FD, a, f"fd {fd.raw}")


@frozen
class ProgInfo:
    id: int
    type: str
    name: str
    tag: str  # hex, as bpftool prints it
    map_ids: tuple[int, ...]
    btf_id: int
    xlated_len: int
    jited_len: int
    load_time: int
    verified_insns: int


def prog_info(fd: FD, *, xlated: bool = False) -> tuple[ProgInfo, bytes]:
    """Program facts, and its translated instructions when `xlated` (bpftool prog dump)."""
    info = ffi.new("struct bpf_prog_info *")
    _info(fd, info)
    n, xl = info.nr_map_ids, info.xlated_prog_len
    info2 = ffi.new("struct bpf_prog_info *")
    ids_buf = ffi.new("uint32_t[]", max(n, 1))
    insns = ffi.new("char[]", max(xl, 1)) if xlated else None
    info2.nr_map_ids, info2.map_ids = n, addr(ids_buf)
    if insns is not None:
        info2.xlated_prog_len, info2.xlated_prog_insns = xl, addr(insns)
    _info(fd, info2)
    return (
        ProgInfo(
            id=info.id,
            type=name_of(PROG_TYPES, info.type),
            name=ffi.string(info.name).decode(),
            tag=bytes(info.tag).hex(),
            map_ids=tuple(ids_buf[i] for i in range(min(n, info2.nr_map_ids))),
            btf_id=info.btf_id,
            xlated_len=xl,
            jited_len=info.jited_prog_len,
            load_time=info.load_time,
            verified_insns=info.verified_insns,
        ),
        bytes(ffi.buffer(insns, xl)) if insns is not None else b"",
    )


@frozen
class MapInfo:
    id: int
    type: int
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    map_extra: int = 0


def map_info(fd: FD) -> MapInfo:
    i = ffi.new("struct bpf_map_info *")
    _info(fd, i)
    return MapInfo(
        i.id,
        i.type,
        ffi.string(i.name).decode(),
        i.key_size,
        i.value_size,
        i.max_entries,
        i.map_flags,
        i.btf_id,
        i.btf_key_type_id,
        i.btf_value_type_id,
        i.map_extra,
    )


def map_frozen(fd: FD) -> bool:
    """bpf_map_info has no frozen bit; the kernel shows it in fdinfo (as bpftool reads it)."""
    with open(f"/proc/self/fdinfo/{fd.raw}") as f:
        for line in f:
            if line.startswith("frozen:"):
                return line.split()[1] == "1"
    return False


def btf_info(fd: FD) -> tuple[int, int]:
    """(id, size) of a loaded BTF object."""
    i = ffi.new("struct bpf_btf_info *")
    _info(fd, i)
    return i.id, i.btf_size


def btf_name(fd: FD) -> tuple[str, bool]:
    """(name, is kernel BTF) of a BTF object: "vmlinux" or a module's name for the kernel's."""
    name = ffi.new("char[]", 64)
    i = ffi.new("struct bpf_btf_info *")
    i.name, i.name_len = addr(name), 64
    _info(fd, i)
    return ffi.string(name).decode(errors="replace"), bool(i.kernel_btf)


@frozen
class LinkInfo:
    id: int
    type: str
    prog_id: int
    ifindex: int = 0
    attach_type: str = ""
    cgroup_id: int = 0


def link_info(fd: FD) -> LinkInfo:
    i = ffi.new("struct bpf_link_info *")
    _info(fd, i)
    kind = name_of(LINK_TYPES, i.type)
    if kind == "xdp":
        return LinkInfo(i.id, kind, i.prog_id, ifindex=i.xdp.ifindex, attach_type="xdp")
    if kind == "tcx":
        return LinkInfo(
            i.id,
            kind,
            i.prog_id,
            ifindex=i.tcx.ifindex,
            attach_type=name_of(ATTACH_TYPES, i.tcx.attach_type),
        )
    if kind == "cgroup":
        return LinkInfo(
            i.id,
            kind,
            i.prog_id,
            cgroup_id=i.cgroup.cgroup_id,
            attach_type=name_of(ATTACH_TYPES, i.cgroup.attach_type),
        )
    return LinkInfo(i.id, kind, i.prog_id)
