"""Facts about the running kernel's BTF as bpftool (libbpf) reads it — an oracle that shares
no code with our BTF parser, for the expected values CO-RE fixtures are compiled with."""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass, field

VMLINUX = "/sys/kernel/btf/vmlinux"
_TYPE = re.compile(r"^\[(\d+)\] (\w+) '([^']*)'(.*)$")
_MEMBER = re.compile(r"^\t'([^']*)' type_id=(\d+) bits_offset=(\d+)(?: bitfield_size=(\d+))?")


@dataclass
class BtfStruct:
    type_id: int
    size: int
    members: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (bits, width)


@functools.cache
def kernel_structs() -> dict[str, BtfStruct]:
    """Named structs of vmlinux (the first of each name, as the dump lists them)."""
    out = subprocess.run(
        ["bpftool", "btf", "dump", "file", VMLINUX], capture_output=True, text=True, check=True
    ).stdout
    structs: dict[str, BtfStruct] = {}
    current: BtfStruct | None = None
    for line in out.splitlines():
        m = _TYPE.match(line)
        if m:
            current = None
            tid, kind, name, rest = m.groups()
            if kind == "STRUCT" and name not in structs:
                size = int(re.search(r"size=(\d+)", rest).group(1))
                current = structs[name] = BtfStruct(int(tid), size)
            continue
        mm = _MEMBER.match(line)
        if mm and current is not None:
            name, _tid, bits, width = mm.groups()
            current.members[name] = (int(bits), int(width or 0))
    return structs


def core_task_defines() -> list[str]:
    """-D flags for tests/progs/core_task.bpf.c."""
    task = kernel_structs()["task_struct"]
    bf_bits, bf_width = task.members["init_private_fork_class"]
    return [
        f"-DTASK_ID={task.type_id}",
        f"-DTASK_SIZE={task.size}",
        f"-DPID_OFF={task.members['pid'][0] // 8}",
        f"-DBF_BITS_OFF={bf_bits}",
        f"-DBF_BITS={bf_width}",
    ]
