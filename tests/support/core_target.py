"""The made-up CO-RE target of tests/progs/core_custom.bpf.c (tests/progs/btf/point_target.c):
its `struct point` layout as bpftool reads it, and packets laid out that way."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from tests.support.progs import PROGS, compile_bpf

GREEN = 7  # enum color { GREEN = 7, RED = 8 } in point_target.c


def compile_target(out_dir: Path) -> Path:
    return compile_bpf(PROGS / "btf" / "point_target.c", out_dir)


def target_layout(target: Path) -> dict[str, tuple[int, int]]:
    """struct point of the made-up target, as bpftool reads it: member -> (bits, width)."""
    dump = subprocess.run(
        ["bpftool", "btf", "dump", "file", str(target)], capture_output=True, text=True, check=True
    ).stdout
    members, inside = {}, False
    for line in dump.splitlines():
        if line.startswith("["):
            inside = "STRUCT 'point'" in line
        elif inside:
            name = line.split("'")[1]
            bits = int(line.split("bits_offset=")[1].split()[0])
            width = int(line.split("bitfield_size=")[1]) if "bitfield_size=" in line else 0
            members[name] = (bits, width)
    return members


def point_packet(target: Path, x: int, y: int, kind: int) -> tuple[bytes, int]:
    """A 64-byte packet holding a `struct point` as the target lays it out, and what
    `read_point` returns for it when relocated against that target."""
    layout = target_layout(target)
    assert "missing" not in layout and set(layout) >= {"x", "y", "kind"}
    packet = bytearray(64)
    struct.pack_into("<i", packet, layout["x"][0] // 8, x)
    struct.pack_into("<H", packet, layout["y"][0] // 8, y)
    kind_bits, kind_width = layout["kind"]
    assert kind_width == 5
    packet[kind_bits // 8] |= kind << (kind_bits % 8)
    return bytes(packet), x * 1000 + y * 10 + kind + 100000 * GREEN
