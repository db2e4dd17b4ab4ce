"""Attach points: where a program runs, one frozen type per kind.

The manifest parser produces these directly; `targets.resolve` turns one into what
BPF_LINK_CREATE needs; `key()` names its link's pin. There is no other model of an attach point.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

from bpfglobals.kernel.bpffs import pin_name

XDP_MODES = ("native", "generic", "offload")
TCX_DIRECTIONS = ("ingress", "egress")


@dataclass(frozen=True)
class XdpPoint:
    interface: str
    mode: str = "native"
    kind: ClassVar[str] = "xdp"

    def describe(self) -> str:
        return f"{self.interface} ({self.mode})"

    def key(self) -> str:
        # The mode is not part of the key: one XDP link per interface and program.
        return pin_name(f"xdp_{self.interface}")


@dataclass(frozen=True)
class TcxPoint:
    interface: str
    direction: str = "ingress"
    kind: ClassVar[str] = "tcx"

    def describe(self) -> str:
        return f"{self.interface} ({self.direction})"

    def key(self) -> str:
        return pin_name(f"tcx_{self.interface}_{self.direction}")


@dataclass(frozen=True)
class CgroupPoint:
    path: str
    type: str  # a libbpf section-style attach type, e.g. "cgroup_skb/ingress"
    kind: ClassVar[str] = "cgroup"

    def describe(self) -> str:
        return f"{self.path} ({self.type})"

    def key(self) -> str:
        # Paths are long and hold '/': a short digest keeps the pin name within limits.
        return f"cgroup_{hashlib.sha256(self.path.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class TracingPoint:
    """tracepoint/raw_tp/fentry/fexit/tp_btf/lsm: the target comes from the section or here."""

    target: str | None = None  # function or "category/event"; None: from the section name
    kind: ClassVar[str] = "tracing"

    def describe(self) -> str:
        return self.target or "(target from the section)"

    def key(self) -> str:
        return pin_name(f"tracing_{self.target or 'section'}")


AttachPoint = XdpPoint | TcxPoint | CgroupPoint | TracingPoint


def canonical(point: AttachPoint) -> dict[str, str | None]:
    """The point as plain data in the manifest's spelling (for hashes and records)."""
    match point:
        case XdpPoint():
            return {"xdp.interface": point.interface, "xdp.mode": point.mode}
        case TcxPoint():
            return {"tcx.interface": point.interface, "tcx.direction": point.direction}
        case CgroupPoint():
            return {"cgroup.path": point.path, "cgroup.type": point.type}
        case TracingPoint():
            return {"tracing.target": point.target}
    raise TypeError(f"not an attach point: {point!r}")
