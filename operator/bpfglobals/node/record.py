"""The applied record: what this node last converged a BpfProgram to, typed and versioned.

Pure data and its JSON codec; `record_store` keeps it in bpffs.

Every record carries `version`. Records of older shapes are migrated when read (`decode`), so
an upgraded agent or CLI adopts what the previous release pinned instead of failing; a record
from a newer release is refused with a clear error rather than misread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from bpfglobals.errors import BpfGlobalsError
from bpfglobals.frozen import frozen, replace
from bpfglobals.node.layout import link_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from typing import Any

RECORD_VERSION = 2


class RecordError(BpfGlobalsError):
    """The record in bpffs cannot be read (corrupt, or written by a newer bpfglobals)."""


@frozen
class RecordedLink:
    """One program on one attach point, as applied."""

    program: str
    key: str  # the attach point's pin key (`AttachPoint.key()`)
    kind: str  # "xdp", "tcx", "cgroup", "tracing"
    target: str  # as shown to users: "eth0 (ingress)", "sched/sched_switch", ...

    @property
    def pin_name(self) -> str:
        return link_name(self.program, self.key)


@frozen
class AppliedRecord:
    name: str
    elf: str  # where the object came from, as `ElfSource.describe()` says
    elf_sha256: str
    globals: Mapping[str, Any]
    ro_key: str  # what forces a new variant (see `plan.ro_key`)
    config_hash: str
    links: tuple[RecordedLink, ...]
    live: Mapping[str, str]  # .data/.bss variable -> hex bytes as configured
    variant: int = 0
    loaded_at: str = ""  # RFC 3339, when the running variant was loaded
    version: int = RECORD_VERSION

    @property
    def programs(self) -> list[str]:
        """The program names, each once, in attachment order."""
        return list(dict.fromkeys(link.program for link in self.links))

    def with_variant(self, variant: int, loaded_at: str) -> AppliedRecord:
        return replace(self, variant=variant, loaded_at=loaded_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "name": self.name,
            "elf": self.elf,
            "elfSha256": self.elf_sha256,
            "globals": dict(self.globals),
            "roKey": self.ro_key,
            "configHash": self.config_hash,
            "links": [
                {"program": k.program, "key": k.key, "kind": k.kind, "target": k.target}
                for k in self.links
            ],
            "live": dict(self.live),
            "variant": self.variant,
            "loadedAt": self.loaded_at,
        }


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Release 1 kept no version, named links "programs" ({name, key, target, kind}) and
    stored `elf` as the manifest's path (None for other sources)."""
    out = {k: v for k, v in doc.items() if k != "programs"}
    out["version"] = 2
    out["elf"] = f"path {doc['elf']}" if doc.get("elf") else ""
    out["links"] = [
        {"program": p["name"], "key": p["key"], "kind": p["kind"], "target": p["target"]}
        for p in doc["programs"]
    ]
    return out


_MIGRATIONS = {1: _v1_to_v2}  # version -> the step to the next one


def decode(raw: bytes | str, where: str = "record") -> AppliedRecord:
    """A record from its JSON, migrated to the current shape."""
    try:
        doc = json.loads(raw)
        version = doc.get("version", 1)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise RecordError(
                f"{where}: record version {version!r} was written by a newer bpfglobals "
                f"(this one reads up to {RECORD_VERSION}); upgrade, or delete and re-apply"
            )
        while version < RECORD_VERSION:
            doc = _MIGRATIONS[version](doc)
            version = doc["version"]
        return AppliedRecord(
            name=doc["name"],
            elf=doc["elf"] or "",
            elf_sha256=doc["elfSha256"],
            globals=doc["globals"],
            ro_key=doc["roKey"],
            config_hash=doc["configHash"],
            links=tuple(
                RecordedLink(k["program"], k["key"], k["kind"], k["target"]) for k in doc["links"]
            ),
            live=doc.get("live", {}),
            variant=int(doc["variant"]),
            loaded_at=doc.get("loadedAt", ""),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        what = f"missing field {e}" if isinstance(e, KeyError) else str(e)
        raise RecordError(f"{where}: not a bpfglobals record ({what})") from None


def encode(record: AppliedRecord) -> bytes:
    return json.dumps(record.to_json(), sort_keys=True, separators=(",", ":")).encode()
