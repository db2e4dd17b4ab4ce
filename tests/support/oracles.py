"""Independent views of an object: llvm-readelf and bpftool, parsed into plain dicts.

Tests compare the project's parser against these, never against itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _run(*cmd: str) -> str:
    exe = shutil.which(cmd[0])
    assert exe, f"{cmd[0]} is not installed: run `make setup`"
    return subprocess.run([exe, *cmd[1:]], check=True, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class ReadelfSymbol:
    value: int
    size: int
    type: str
    bind: str
    section: str
    name: str


def readelf_sections(obj: Path) -> dict[str, tuple[int, int]]:
    """name -> (index, size) from `llvm-readelf -S`."""
    out = {}
    for m in re.finditer(
        r"^\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)",
        _run("llvm-readelf", "-S", "-W", str(obj)),
        re.M,
    ):
        out[m.group(2)] = (int(m.group(1)), int(m.group(3), 16))
    return out


def readelf_symbols(obj: Path) -> list[ReadelfSymbol]:
    by_index = {i: n for n, (i, _) in readelf_sections(obj).items()}
    syms = []
    for line in _run("llvm-readelf", "-s", "-W", str(obj)).splitlines():
        parts = line.split()
        if len(parts) < 8 or not parts[0].rstrip(":").isdigit():
            continue
        ndx = parts[6]
        section = by_index.get(int(ndx), "") if ndx.isdigit() else ndx
        syms.append(
            ReadelfSymbol(int(parts[1], 16), int(parts[2]), parts[3], parts[4], section, parts[7])
        )
    return syms


def readelf_relocations(obj: Path) -> dict[str, list[tuple[int, str, str]]]:
    """target section -> [(byte offset, type, symbol name)] from `llvm-readelf -r`."""
    out: dict[str, list[tuple[int, str, str]]] = {}
    current = None
    for line in _run("llvm-readelf", "-r", "-W", str(obj)).splitlines():
        m = re.match(r"Relocation section '\.rel(.*)' at offset", line)
        if m:
            current = out.setdefault(m.group(1), [])
            continue
        parts = line.split()
        if current is not None and len(parts) >= 5 and parts[2].startswith("R_BPF"):
            current.append((int(parts[0], 16), parts[2], parts[4]))
    return out


def bpftool_btf(obj: Path) -> list[dict]:
    """The raw (not fixed-up) BTF types of an object file, from `bpftool btf dump -j`."""
    return json.loads(_run("bpftool", "-j", "btf", "dump", "file", str(obj)))["types"]
