"""bpf_link commands: create, update (atomic program swap), detach."""

from __future__ import annotations

from bpfglobals.kernel.constants import BPF_F_REPLACE, Cmd
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.syscall import bpf, new


def link_create(
    prog: FD,
    *,
    attach_type: int,
    target_fd: int = 0,
    target_ifindex: int = 0,
    flags: int = 0,
    target_btf_id: int = 0,
    relative_fd: int = 0,
    expected_revision: int = 0,
) -> FD:
    """`target_ifindex` for XDP/tcx, `target_fd` for cgroups; tcx takes ordering in
    relative_fd/expected_revision (uapi link_create.tcx)."""
    a = new("struct bpf_link_create_attr")
    a.prog_fd, a.attach_type, a.flags = prog.raw, attach_type, flags
    a.target = target_ifindex or target_fd
    if target_btf_id:
        a.target_btf_id = target_btf_id
    elif relative_fd or expected_revision:
        a.tcx.relative_fd, a.tcx.expected_revision = relative_fd, expected_revision
    return FD(bpf(Cmd.LINK_CREATE, a, f"link of prog fd {prog.raw}"))


def link_update(link: FD, new_prog: FD, old_prog: FD | None = None) -> None:
    """Swap the program of a link atomically. With `old_prog`, only if the link still runs
    it (BPF_F_REPLACE), else EPERM: a compare-and-swap against concurrent updaters."""
    a = new("struct bpf_link_update_attr")
    a.link_fd, a.new_prog_fd = link.raw, new_prog.raw
    if old_prog is not None:
        a.flags, a.old_prog_fd = BPF_F_REPLACE, old_prog.raw
    bpf(Cmd.LINK_UPDATE, a, f"link fd {link.raw}")


def link_detach(link: FD) -> None:
    a = new("struct bpf_link_detach_attr")
    a.link_fd = link.raw
    bpf(Cmd.LINK_DETACH, a, f"link fd {link.raw}")
