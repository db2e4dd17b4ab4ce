"""bpftool as an oracle: what the kernel really holds (maps, flags, frozen state, programs)."""

from __future__ import annotations

import json
import shutil
import subprocess


def bpftool(*args: str) -> object:
    exe = shutil.which("bpftool")
    assert exe, "bpftool is not installed: run `make setup`"
    out = subprocess.run([exe, "-j", *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out) if out.strip() else None


def map_value(map_id: int, key: int = 0) -> bytes:
    """The raw value of one array-map entry."""
    for entry in bpftool("map", "dump", "id", str(map_id)):
        if int.from_bytes(bytes(int(b, 16) for b in entry["key"]), "little") == key:
            return bytes(int(b, 16) for b in entry["value"])
    raise AssertionError(f"map {map_id} has no key {key}")


def prog_map_ids(prog_id: int) -> list[int]:
    return list(bpftool("prog", "show", "id", str(prog_id)).get("map_ids", []))


def map_info(map_id: int) -> dict:
    return bpftool("map", "show", "id", str(map_id))


def percpu_sum(map_pin: str) -> dict[int, int]:
    """A pinned per-CPU array or hash with integer keys: key -> sum over CPUs."""
    out = {}
    for e in bpftool("map", "dump", "pinned", map_pin):
        key = int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little")
        out[key] = sum(
            int.from_bytes(bytes(int(b, 16) for b in v["value"]), "little") for v in e["values"]
        )
    return out


def section_vars(map_pin: str, section: str) -> dict:
    """bpftool's BTF-formatted view of a data-section map: variable name -> value."""
    formatted = bpftool("map", "dump", "pinned", map_pin)[0]["formatted"]["value"]
    return {k: v for entry in formatted[section] for k, v in entry.items()}
