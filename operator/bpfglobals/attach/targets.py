"""Attach points: what a manifest's `attach:` means to BPF_LINK_CREATE, checked up front.

The node core passes its manifest attach specs through these plain records so that this layer
does not depend on the manifest model (dependencies point down).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from bpfglobals.elf.model import ProgramType
from bpfglobals.elf.progtypes import program_type
from bpfglobals.errors import BpfGlobalsError
from bpfglobals.kernel.constants import attach_type_id

XDP_FLAGS = {"generic": 1 << 1, "native": 1 << 2, "offload": 1 << 3}  # XDP_FLAGS_*_MODE


class AttachError(BpfGlobalsError):
    """A program cannot be attached where the manifest asks (what, where, why)."""


@dataclass(frozen=True)
class AttachPoint:
    kind: str  # "xdp", "tcx", "cgroup"
    interface: str = ""
    mode: str = ""  # xdp: native/generic/offload
    direction: str = ""  # tcx: ingress/egress
    cgroup_path: str = ""
    cgroup_type: str = ""  # libbpf section spelling: "cgroup_skb/ingress"

    def describe(self) -> str:
        if self.kind == "xdp":
            return f"{self.interface} ({self.mode})"
        if self.kind == "tcx":
            return f"{self.interface} ({self.direction})"
        return f"{self.cgroup_path} ({self.cgroup_type})"


@dataclass(frozen=True)
class ResolvedAttach:
    attach_type: int
    target_ifindex: int = 0
    cgroup_path: str = ""
    flags: int = 0


def resolve(point: AttachPoint, prog: ProgramType, prog_name: str) -> ResolvedAttach:
    where = f"program '{prog_name}' ({prog.prog_type or 'unknown type'}) on {point.describe()}"
    if point.kind == "xdp":
        _expect(prog.prog_type == "xdp", where, 'XDP attach needs a SEC("xdp") program')
        return ResolvedAttach(
            attach_type_id("xdp"), _ifindex(point.interface, where), flags=XDP_FLAGS[point.mode]
        )
    if point.kind == "tcx":
        _expect(
            prog.prog_type == "sched_cls",
            where,
            'tcx attach needs a SEC("tcx/ingress"), SEC("tc") or SEC("classifier") program',
        )
        return ResolvedAttach(
            attach_type_id(f"tcx_{point.direction}"), _ifindex(point.interface, where)
        )
    if point.kind == "cgroup":
        wanted = program_type(point.cgroup_type)
        _expect(
            wanted is not None
            and wanted.attach_type is not None
            and wanted.prog_type.startswith(("cgroup", "sock_ops")),
            where,
            f"unknown cgroup attach type {point.cgroup_type!r} (e.g. cgroup_skb/ingress)",
        )
        assert wanted is not None and wanted.attach_type is not None
        _expect(
            wanted.prog_type == prog.prog_type,
            where,
            f"{point.cgroup_type} needs a {wanted.prog_type} program",
        )
        _expect(os.path.isdir(point.cgroup_path), where, "the cgroup directory does not exist")
        return ResolvedAttach(attach_type_id(wanted.attach_type), cgroup_path=point.cgroup_path)
    raise AttachError(
        f"{where}: attach kind {point.kind!r} is not supported yet (xdp, tcx and cgroup are)"
    )


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
