"""Where one BpfProgram's kernel objects live in bpffs (the node's only state).

    <root>/<name>/maps/<map>            maps shared by every variant: user maps, .data, .bss
    <root>/<name>/variants/<n>/...      one loaded variant: programs/<prog>, maps/<_rodata>
    <root>/<name>/links/<prog>__<point> the links (pinned, so programs outlive the process)
    <root>/<name>/record                an array map holding the applied record (JSON)

bpffs refuses '.' in names, so dots become '_' (as libbpf's sanitize_pin_path does).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

DEFAULT_ROOT = "/sys/fs/bpf/bpfglobals"
ROOT_ENV = "BPFGLOBALS_BPFFS_ROOT"


def default_root() -> str:
    return os.environ.get(ROOT_ENV, DEFAULT_ROOT)


def pin_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


@dataclass(frozen=True)
class Layout:
    root: str
    name: str

    @property
    def base(self) -> str:
        return os.path.join(self.root, pin_safe(self.name))

    @property
    def maps(self) -> str:
        return os.path.join(self.base, "maps")

    @property
    def links(self) -> str:
        return os.path.join(self.base, "links")

    @property
    def variants(self) -> str:
        return os.path.join(self.base, "variants")

    @property
    def record(self) -> str:
        return os.path.join(self.base, "record")

    def variant(self, n: int) -> str:
        return os.path.join(self.variants, str(n))

    def variant_numbers(self) -> list[int]:
        if not os.path.isdir(self.variants):
            return []
        return sorted(int(d) for d in os.listdir(self.variants) if d.isdigit())

    def link(self, program: str, point_key: str) -> str:
        return os.path.join(self.links, f"{pin_safe(program)}__{point_key}")

    def map_pin(self, map_name: str) -> str:
        return os.path.join(self.maps, pin_safe(map_name))


def point_key(kind: str, target: str) -> str:
    """A short, pin-safe key for an attach point (cgroup paths are hashed)."""
    if kind == "cgroup":
        return f"cgroup_{hashlib.sha256(target.encode()).hexdigest()[:12]}"
    return pin_safe(f"{kind}_{target}")
