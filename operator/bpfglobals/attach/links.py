"""Create, swap and remove the bpf_links that hold programs on their attach points."""

from __future__ import annotations

import contextlib
import os

from bpfglobals.attach.targets import AttachError, ResolvedAttach
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.links import link_create, link_detach, link_update
from bpfglobals.kernel.objects import obj_get
from bpfglobals.kernel.tracing import perf_tracepoint, raw_tracepoint_open


def attach(prog: FD, target: ResolvedAttach, what: str) -> FD:
    """A new link running `prog` at `target` (the caller pins or closes it)."""
    try:
        if target.trace == "tracepoint":
            with perf_tracepoint(target.tracepoint_id, target.trace_name) as event:
                return link_create(prog, attach_type=target.attach_type, target_fd=event.raw)
        if target.trace:  # raw_tp by name; fentry/fexit/tp_btf/lsm: target fixed at load
            return raw_tracepoint_open(
                prog, target.trace_name if target.trace == "raw_tp" else None
            )
        if target.cgroup_path:
            fd = os.open(target.cgroup_path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                return link_create(prog, attach_type=target.attach_type, target_fd=fd)
            finally:
                os.close(fd)
        return link_create(
            prog,
            attach_type=target.attach_type,
            target_ifindex=target.target_ifindex,
            flags=target.flags,
        )
    except KernelError as e:
        hint = ""
        if e.errno == 16:  # EBUSY
            hint = " (something else is already attached there, e.g. a non-link XDP program)"
        elif e.errno == 34:  # ERANGE
            hint = " (tcx allows at most 64 programs per interface and direction)"
        elif e.errno == 95:  # EOPNOTSUPP
            hint = (
                " (the kernel cannot attach this program type there)"
                if target.trace
                else " (the driver does not support this mode; try xdp mode generic)"
            )
        raise AttachError(f"attaching {what}: {e}{hint}") from e


def swap(link: FD, new_prog: FD, expected_old: FD, what: str) -> None:
    """Atomically make `link` run `new_prog`, only if it still runs `expected_old`: a
    concurrent change shows up as an error instead of being overwritten."""
    try:
        link_update(link, new_prog, old_prog=expected_old)
    except KernelError as e:
        why = (
            " (the link no longer runs the expected program: changed concurrently)"
            if e.errno == 1
            else ""
        )
        raise AttachError(f"replacing {what}: {e}{why}") from e


def unpin_link(path: str) -> None:
    """Detach the pinned link, then remove its pin. Dropping the last reference alone would
    detach it too, but later: bpffs frees the inode in an RCU callback and the kernel defers
    the link's release to a workqueue, so the program could still run after we return."""
    try:
        fd = obj_get(path)
    except KernelError as e:
        if e.errno != 2:  # ENOENT: already gone
            raise
        return
    with fd, contextlib.suppress(KernelError):  # EOPNOTSUPP: a link type without detach
        link_detach(fd)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
