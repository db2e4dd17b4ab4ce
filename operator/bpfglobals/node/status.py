"""What a node reports about one applied BpfProgram (pure data).

The same facts appear in `bpfglobals get NAME -o json` and in the per-node status in the
cluster, so the shape is defined once here and serialised by `to_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from bpfglobals.frozen import frozen

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import Any


@frozen
class LinkStatus:
    id: int
    type: str  # "xdp", "tcx", "cgroup", "tracing", ...
    target: str  # "eth0 (ingress)", "/sys/fs/cgroup/x (cgroup_skb/ingress)", ...

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "target": self.target}


@frozen
class ProgramStatus:
    name: str
    id: int
    tag: str
    links: tuple[LinkStatus, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "tag": self.tag,
            "links": [link.to_dict() for link in self.links],
        }


@frozen
class AppliedStatus:
    """The converged state of one BpfProgram on this node."""

    name: str
    programs: tuple[ProgramStatus, ...]
    maps: Mapping[str, int]  # map name (".rodata", "stats", ...) -> kernel map id
    globals: Mapping[str, Any]  # the configured values, decoded as the user writes them
    config_hash: str  # `manifest.config_hash`: what "applied" means
    elf_sha256: str
    loaded_at: str = ""  # RFC 3339, when the running variant was loaded
    extra: Mapping[str, Any] = MappingProxyType({})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "programs": [p.to_dict() for p in self.programs],
            "maps": dict(self.maps),
            "globals": dict(self.globals),
            "configHash": self.config_hash,
            "elfSha256": self.elf_sha256,
            "loadedAt": self.loaded_at,
            **dict(self.extra),
        }
