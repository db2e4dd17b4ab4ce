"""Translated instructions as the kernel holds them, normalised so two loads compare equal."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from tests.support.bpftool import map_info


def normalise(xlated: bytes) -> list[tuple]:
    """(code, regs, off, imm) per instruction; map ids become map names, and addresses the
    kernel wrote for function references (differ per load) become a marker."""
    out, i, n = [], 0, len(xlated) // 8
    while i < n:
        code, regs, off, imm = struct.unpack_from("<BBhi", xlated, i * 8)
        src = regs >> 4
        if code == 0x18 and i + 1 < n:
            _, _, _, imm2 = struct.unpack_from("<BBhi", xlated, (i + 1) * 8)
            if src in (1, 2):  # map fd / map value: the dump shows the map id
                out.append((code, regs, off, map_info(imm)["name"], imm2 if src == 2 else 0))
            elif src == 4:
                out.append((code, regs, off, "func"))
            else:
                out.append((code, regs, off, imm, imm2))
            i += 2
            continue
        out.append((code, regs, off, imm))
        i += 1
    return out


def xlated_by_bpftool(prog_id: int, tmp: Path) -> bytes:
    f = tmp / f"x{prog_id}"
    subprocess.run(
        ["bpftool", "prog", "dump", "xlated", "id", str(prog_id), "file", str(f)],
        check=True,
        capture_output=True,
    )
    return f.read_bytes()
