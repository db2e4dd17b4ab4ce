"""What an attach point means to BPF_LINK_CREATE, checked up front (before anything loads)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from bpfglobals.attach.points import AttachPoint, CgroupPoint, TcxPoint, TracingPoint, XdpPoint
from bpfglobals.elf.model import ProgramType
from bpfglobals.elf.progtypes import program_type
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.kernel.constants import attach_type_id
from bpfglobals.kernel.tracing import tracepoint_id

XDP_FLAGS = {"generic": 1 << 1, "native": 1 << 2, "offload": 1 << 3}  # XDP_FLAGS_*_MODE


class AttachError(BpfGlobalsError):
    """A program cannot be attached where the manifest asks (what, where, why)."""


@dataclass(frozen=True)
class ResolvedAttach:
    attach_type: int
    target_ifindex: int = 0
    cgroup_path: str = ""
    flags: int = 0
    # tracing: "tracepoint" (perf event + link), "raw_tp" (by name), "btf" (target fixed at
    # load time); "" for network and cgroup links
    trace: str = ""
    trace_name: str = ""  # the tracepoint (category/name) or raw tracepoint
    tracepoint_id: int = 0

    @property
    def updatable(self) -> bool:
        """Whether BPF_LINK_UPDATE can swap the program (tracing links cannot)."""
        return not self.trace


def resolve(point: AttachPoint, prog: ProgramType, prog_name: str) -> ResolvedAttach:
    where = f"program '{prog_name}' ({prog.prog_type or 'unknown type'}) on {point.describe()}"
    match point:
        case XdpPoint():
            _expect(prog.prog_type == "xdp", where, 'XDP attach needs a SEC("xdp") program')
            return ResolvedAttach(
                attach_type_id("xdp"),
                _ifindex(point.interface, where),
                flags=XDP_FLAGS[point.mode],
            )
        case TcxPoint():
            _expect(
                prog.prog_type == "sched_cls",
                where,
                'tcx attach needs a SEC("tcx/ingress"), SEC("tc") or SEC("classifier") program',
            )
            return ResolvedAttach(
                attach_type_id(f"tcx_{point.direction}"), _ifindex(point.interface, where)
            )
        case CgroupPoint():
            return _resolve_cgroup(point, prog, where)
        case TracingPoint():
            return _resolve_tracing(point, prog, where)
    raise AttachError(f"{where}: unknown attach point {point!r}")


def _resolve_cgroup(point: CgroupPoint, prog: ProgramType, where: str) -> ResolvedAttach:
    wanted = program_type(point.type)
    _expect(
        wanted is not None
        and wanted.attach_type is not None
        and wanted.prog_type.startswith(("cgroup", "sock_ops")),
        where,
        f"unknown cgroup attach type {point.type!r} (e.g. cgroup_skb/ingress)",
    )
    assert wanted is not None and wanted.attach_type is not None
    _expect(
        wanted.prog_type == prog.prog_type,
        where,
        f"{point.type} needs a {wanted.prog_type} program",
    )
    _expect(os.path.isdir(point.path), where, "the cgroup directory does not exist")
    return ResolvedAttach(attach_type_id(wanted.attach_type), cgroup_path=point.path)


def _resolve_tracing(point: TracingPoint, prog: ProgramType, where: str) -> ResolvedAttach:
    target = point.target or prog.attach_target or ""
    if prog.prog_type in ("tracing", "lsm"):
        _expect(
            prog.attach_type in _BTF_LINKED,
            where,
            f"{prog.attach_type} programs cannot be attached by bpfglobals",
        )
        _expect(
            not point.target or point.target == prog.attach_target,
            where,
            f"the target of a {prog.attach_type} program is fixed by its section "
            f"({prog.attach_target}) when it is loaded; tracing.target cannot change it",
        )
        return ResolvedAttach(0, trace="btf", trace_name=target)
    if prog.prog_type in ("raw_tracepoint", "raw_tracepoint_writable"):
        _expect(bool(target), where, "name the raw tracepoint in the section or tracing.target")
        return ResolvedAttach(0, trace="raw_tp", trace_name=target)
    if prog.prog_type == "tracepoint":
        category, _, name = target.partition("/")
        _expect(bool(category and name), where, f"a tracepoint is 'category/name', got {target!r}")
        try:
            tp_id = tracepoint_id(category, name)
        except BpfGlobalsError as e:
            raise AttachError(f"{where}: {e}") from None
        return ResolvedAttach(
            attach_type_id("perf_event"), trace="tracepoint", trace_name=target, tracepoint_id=tp_id
        )
    if prog.prog_type == "kprobe":
        why = (
            "this kernel has no kprobe support (CONFIG_KPROBES); fentry/fexit programs reach "
            "the same functions"
            if not os.path.exists("/sys/bus/event_source/devices/kprobe")
            else "kprobe/uprobe attach is not supported yet; use fentry/fexit"
        )
        raise AttachError(f"{where}: {why}")
    raise AttachError(
        f"{where}: tracing attach needs a tracepoint, raw_tp, tp_btf, fentry, fexit, fmod_ret "
        "or lsm program"
    )


# Tracing programs whose target is the BTF id given at load; RAW_TRACEPOINT_OPEN attaches them.
_BTF_LINKED = ("trace_fentry", "trace_fexit", "modify_return", "trace_raw_tp", "lsm_mac")


def _expect(ok: bool, where: str, why: str) -> None:
    if not ok:
        raise AttachError(f"{where}: {why}")


def _ifindex(name: str, where: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        raise AttachError(
            f"{where}: no network interface {name!r} in this network namespace"
        ) from None
