"""libbpf (bpftool prog loadall ... pinmaps ...) loading an object next to ours, with its maps
pinned so their facts and contents can be read back; everything removed afterwards."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bpfglobals.elf import read_object
from bpfglobals.kernel.objects import fd_by_id, map_info
from tests.support.bpftool import bpftool


@dataclass
class LibbpfLoad:
    progs: str  # bpffs dir: one pin per program
    maps: str  # bpffs dir: one pin per map (internal maps under libbpf's sanitised names)
    stderr: str  # libbpf's log (warnings such as "Retrying without BTF")


@contextlib.contextmanager
def libbpf_loaded(obj: Path, by_name: list[str] | None = None) -> Iterator[LibbpfLoad]:
    """`by_name`: the object's LIBBPF_PIN_BY_NAME map names (default: as we parse them; pass
    them for an object we refuse to parse)."""
    tag = uuid.uuid4().hex[:8]
    progs, maps = f"/sys/fs/bpf/bgt-libbpf-{tag}", f"/sys/fs/bpf/bgt-libbpf-maps-{tag}"
    if by_name is None:
        by_name = [m.name for m in read_object(obj).maps if m.pinning == 1]
    # libbpf pins them at /sys/fs/bpf/<name> whatever `pinmaps` says
    by_name = [f"/sys/fs/bpf/{name}" for name in by_name]
    assert not any(os.path.exists(p) for p in by_name), "stale pin from an earlier run"
    exe = shutil.which("bpftool")
    assert exe, "bpftool is not installed"
    try:
        run = subprocess.run(
            [exe, "prog", "loadall", str(obj), progs, "pinmaps", maps],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, f"libbpf refused {obj.name}:\n{run.stderr[-3000:]}"
        yield LibbpfLoad(progs, maps, run.stderr)
    finally:
        subprocess.run(["rm", "-rf", progs, maps, *by_name], check=False)


def map_facts(map_id: int) -> dict:
    """What `bpftool map show` says of a map, and the BTF type ids bpf_map_info holds."""
    shown = bpftool("map", "show", "id", str(map_id))
    with fd_by_id("map", map_id) as fd:
        info = map_info(fd)
    return {
        "type": shown["type"],
        "name": shown.get("name", ""),  # iproute2 leaves legacy maps unnamed
        "flags": shown["flags"],
        "bytes_key": shown["bytes_key"],
        "bytes_value": shown["bytes_value"],
        "max_entries": shown["max_entries"],
        "btf": "btf_id" in shown,
        "btf_key_type_id": info.btf_key_type_id,
        "btf_value_type_id": info.btf_value_type_id,
        "map_extra": info.map_extra,
    }


def slot_ids(map_id: int) -> dict[int, int]:
    """Slots of a prog array or map-in-map: index -> the id of the program/map it holds."""
    out = {}
    for e in bpftool("map", "dump", "id", str(map_id)) or []:
        key = int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
        out[key] = int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")
    return out


def fd_slots(map_id: int) -> dict[int, str]:
    """Slots of a prog array or map-in-map: index -> the name of the program/map it holds."""
    kind = "prog" if bpftool("map", "show", "id", str(map_id))["type"] == "prog_array" else "map"
    return {
        i: bpftool(kind, "show", "id", str(held))["name"] for i, held in slot_ids(map_id).items()
    }
