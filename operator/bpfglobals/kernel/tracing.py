"""The attach primitives of tracing programs that are not plain BPF_LINK_CREATE.

- raw tracepoints, and BTF-typed tracing programs (fentry/fexit/fmod_ret, tp_btf, lsm):
  BPF_RAW_TRACEPOINT_OPEN, which returns a pinnable bpf_link;
- classic tracepoints: a perf event (perf_event_open on the tracepoint's id from tracefs)
  that a BPF_PERF_EVENT link then holds, so the perf fd can be closed at once.
"""

from __future__ import annotations

import os

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.kernel.abi import SYS_PERF_EVENT_OPEN, ffi, libc
from bpfglobals.kernel.bpffs import mount
from bpfglobals.kernel.constants import Cmd
from bpfglobals.kernel.errors import KernelError
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.syscall import bpf, buffer, new

TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
PERF_TYPE_TRACEPOINT = 2
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_ATTR_SIZE_VER0 = 64


def raw_tracepoint_open(prog: FD, name: str | None) -> FD:
    """A link running `prog` on raw tracepoint `name`; None for programs whose target was
    fixed at load time by attach_btf_id (fentry, fexit, tp_btf, lsm)."""
    a = new("struct bpf_raw_tp_open_attr")
    keep = None
    if name:
        keep, a.name = buffer(name.encode() + b"\0")
    a.prog_fd = prog.raw
    fd = bpf(Cmd.RAW_TRACEPOINT_OPEN, a, f"prog fd {prog.raw} on {name or 'its BTF target'}")
    del keep
    return FD(fd)


def tracepoint_id(category: str, name: str) -> int:
    """The id tracefs gives the tracepoint `category/name` (mounting tracefs if needed)."""
    root = _tracefs()
    path = os.path.join(root, "events", category, name, "id")
    try:
        with open(path) as f:
            return int(f.read())
    except FileNotFoundError:
        raise BpfGlobalsError(
            f"no tracepoint {category}/{name} in this kernel (no {path}; "
            f"`ls {root}/events/{category}` lists what there is)"
        ) from None


def perf_tracepoint(tp_id: int, what: str) -> FD:
    """A perf event on tracepoint `tp_id` (CPU 0, any task: what the BPF link needs)."""
    attr = ffi.new("struct perf_event_attr *")
    attr.type, attr.size, attr.config = PERF_TYPE_TRACEPOINT, PERF_ATTR_SIZE_VER0, tp_id
    attr.sample_period, attr.wakeup_events = 1, 1
    fd = libc.syscall(
        SYS_PERF_EVENT_OPEN,
        attr,
        ffi.cast("int", -1),
        ffi.cast("int", 0),
        ffi.cast("int", -1),
        ffi.cast("unsigned long", PERF_FLAG_FD_CLOEXEC),
    )
    if fd < 0:
        raise KernelError(ffi.errno, "perf_event_open", what)
    return FD(int(fd))


def _tracefs() -> str:
    for root in TRACEFS:
        if os.path.isdir(os.path.join(root, "events")):
            return root
    err = mount("tracefs", TRACEFS[0])
    if not err:
        return TRACEFS[0]
    raise BpfGlobalsError(
        f"tracefs is not mounted and mounting it at {TRACEFS[0]} failed: {os.strerror(err)} "
        "(`mount -t tracefs nodev /sys/kernel/tracing`, or mount the host's into the pod)"
    )
