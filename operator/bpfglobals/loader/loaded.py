"""Kernel-side objects of one load (cilium/ebpf's Collection): they own their FDs."""

from __future__ import annotations

from bpfglobals.elf.model import ProgramSpec
from bpfglobals.frozen import field, mutable
from bpfglobals.kernel.fd import FD
from bpfglobals.kernel.objects import MapInfo, ProgInfo
from bpfglobals.loader.ledger import Ledger

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from bpfglobals.loader.externs import Resolution


@mutable
class LoadedMap:
    """A map created in the kernel for the object."""

    name: str  # the object's name for it: the map variable, or the section (".rodata")
    kernel_name: str
    type: str
    fd: FD
    info: MapInfo
    internal: bool
    frozen: bool
    pin: str | None = None
    reused: bool = False  # an existing (pinned or handed-in) map, not created by this load

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kernel_name": self.kernel_name,
            "type": self.type,
            "id": self.info.id,
            "internal": self.internal,
            "frozen": self.frozen,
            "flags": self.info.flags,
            "pin": self.pin,
            "reused": self.reused,
        }


@mutable
class LoadedProgram:
    """A program loaded into the kernel."""

    spec: ProgramSpec
    fd: FD
    info: ProgInfo
    pin: str | None = None
    ledger: Ledger = field(default_factory=Ledger)  # the ELF records applied to it

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict:
        return {
            "name": self.spec.name,
            "section": self.spec.section,
            "type": self.info.type,
            "id": self.info.id,
            "tag": self.info.tag,
            "map_ids": list(self.info.map_ids),
            "pin": self.pin,
            "applied": self.ledger.counts(),
        }


@mutable
class LoadedObject:
    """What `load` created: programs, maps and BTF, closed together."""

    name: str
    programs: dict[str, LoadedProgram]
    maps: dict[str, LoadedMap]
    btf_fd: FD | None
    images: dict[str, bytes] = field(default_factory=dict)  # data sections as written
    externs: dict[str, Resolution] = field(default_factory=dict)  # how each was resolved

    def close(self) -> None:
        """Release our FDs; pinned objects (and attached links) keep living in the kernel."""
        for p in self.programs.values():
            p.fd.close()
        for m in self.maps.values():
            m.fd.close()
        if self.btf_fd is not None:
            self.btf_fd.close()

    def __enter__(self) -> LoadedObject:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def to_dict(self) -> dict:
        return {
            "object": self.name,
            "programs": [p.to_dict() for p in self.programs.values()],
            "maps": [m.to_dict() for m in self.maps.values()],
            "externs": [r.to_dict() for r in self.externs.values()],
        }
