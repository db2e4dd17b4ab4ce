"""Translated instructions (`bpftool prog dump xlated`) in a form two loads can compare."""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

from bpfglobals.kernel.objects import obj_get
from bpfglobals.kernel.progs import prog_test_run
from bpfglobals.loader import LoadedProgram
from tests.support.bpftool import bpftool, map_info


def _map_name(map_id: int) -> object:
    return map_info(map_id)["name"]


def normalise(xlated: bytes, map_key: Callable[[int], object] = _map_name) -> list[tuple]:
    """(code, regs, off, imm) per instruction; map ids become `map_key(id)` (the map's name),
    and addresses the kernel wrote for function references (differ per load) a marker."""
    out, i, n = [], 0, len(xlated) // 8
    while i < n:
        code, regs, off, imm = struct.unpack_from("<BBhi", xlated, i * 8)
        src = regs >> 4
        if code == 0x18 and i + 1 < n:
            _, _, _, imm2 = struct.unpack_from("<BBhi", xlated, (i + 1) * 8)
            if src in (1, 2):  # map fd / map value: the dump shows the map id
                out.append((code, regs, off, map_key(imm), imm2 if src == 2 else 0))
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


# program types BPF_PROG_TEST_RUN runs on a packet; others are compared by code alone
PACKET_TYPES = {"xdp", "sched_cls", "socket_filter"}
PACKETS = (bytes(64), bytes(range(64)))


def assert_same_as_pinned(prog: LoadedProgram, pin: str, tmp: Path) -> dict:
    """Our loaded program vs libbpf's pinned at PIN/<name>: same translated instructions
    (map ids normalised), same tag, same test-run verdicts on packets (for the program types
    that run on one); returns bpftool's view of theirs."""
    packets = PACKETS if prog.info.type in PACKET_TYPES else ()
    their = bpftool("prog", "show", "pinned", f"{pin}/{prog.name}")
    assert normalise(xlated_by_bpftool(prog.info.id, tmp)) == normalise(
        xlated_by_bpftool(their["id"], tmp)
    ), prog.name
    assert prog.info.tag == their["tag"], prog.name
    with obj_get(f"{pin}/{prog.name}") as their_fd:
        for packet in packets:
            ours, theirs = prog_test_run(prog.fd, packet), prog_test_run(their_fd, packet)
            assert ours.retval == theirs.retval, prog.name
    return their
