"""Where one BpfProgram's kernel objects live in bpffs (the node's only state).

    <root>/<name>/maps/<map>            maps shared by every variant: user maps, .data, .bss
    <root>/<name>/variants/<n>/...      one loaded variant: programs/<prog>, maps/<_rodata>
    <root>/<name>/links/<prog>__<point> the links (pinned, so programs outlive the process)
    <root>/<name>/record                an array map holding the applied record (JSON)

bpffs refuses '.' in names, so dots become '_' (as libbpf's sanitize_pin_path does).
"""

from __future__ import annotations

import os

from bpfglobals.frozen import frozen
from bpfglobals.kernel.bpffs import pin_name

DEFAULT_ROOT = "/sys/fs/bpf/bpfglobals"
ROOT_ENV = "BPFGLOBALS_BPFFS_ROOT"


def default_root() -> str:
    return os.environ.get(ROOT_ENV, DEFAULT_ROOT)


def link_name(program: str, point_key: str) -> str:
    """The pin name of the link running `program` at the attach point with `point_key`."""
    return f"{pin_name(program)}__{point_key}"


@frozen
class Layout:
    root: str
    name: str

    @property
    def base(self) -> str:
        return os.path.join(self.root, pin_name(self.name))

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
        return os.path.join(self.links, link_name(program, point_key))

    def program(self, variant: int, program: str) -> str:
        return os.path.join(self.variant(variant), "programs", pin_name(program))

    def map_pin(self, map_name: str) -> str:
        return os.path.join(self.maps, pin_name(map_name))
