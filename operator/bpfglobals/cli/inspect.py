"""`bpfglobals inspect OBJ [--json]`: programs, maps and global variables of an object."""

from __future__ import annotations

import argparse
import json

from bpfglobals.cli.table import format_table
from bpfglobals.elf import MapSpec, ObjectSpec, read_object
from bpfglobals.elf.map_types import PERF_EVENT_ARRAY, PIN_BY_NAME, PIN_GLOBAL_NS
from bpfglobals.values import decode_variables, spell


def describe(obj: ObjectSpec) -> dict:
    """The JSON shape of `inspect --json` (stable: scripts and the operator read it)."""
    values = decode_variables(obj)
    return {
        "object": obj.name,
        "license": obj.license,
        "programs": [
            {
                "name": p.name,
                "section": p.section,
                "type": p.type.prog_type or "unknown",
                "attach_type": p.type.attach_type,
                "insns": p.insn_count,
            }
            for p in obj.programs
        ],
        "maps": [
            {
                "name": d.map_name,
                "type": "array",
                "key_size": 4,
                "value_size": d.size,
                "max_entries": 1,
                "internal": True,
                "section": d.name,
            }
            for d in obj.data_sections
        ]
        + [_user_map(m) for m in obj.maps],
        "variables": [
            {
                "name": v.name,
                "section": v.section,
                "offset": v.offset,
                "size": v.size,
                "type": spell(obj.btf, v.type_id),
                "linkage": v.linkage,
                "value": values[v.name],
            }
            for v in obj.variables()
        ],
    }


_PINNING = {PIN_BY_NAME: "by_name", PIN_GLOBAL_NS: "global_ns"}


def _user_map(m: MapSpec) -> dict:
    out = {
        "name": m.name,
        "type": m.type,
        "key_size": m.key_size,
        "value_size": m.value_size,
        "max_entries": m.max_entries,
        "internal": False,
        "pinning": _PINNING.get(m.pinning),
        "flags": m.flags,
        "map_extra": m.map_extra,
        "legacy": m.legacy,
        "slots": {str(i): target for i, target in m.init_slots},
    }
    if m.type_id == PERF_EVENT_ARRAY and m.max_entries == 0:
        out["max_entries"] = "possible CPUs"  # libbpf's default, filled in at load
    if m.inner is not None:
        out["inner"] = {k: v for k, v in _user_map(m.inner).items() if k not in _INNER_SKIP}
    return out


_INNER_SKIP = {"internal", "pinning", "legacy", "slots"}


def _notes(m: dict) -> str:
    notes = []
    if m.get("inner"):
        i = m["inner"]
        notes.append(f"inner {i['type']} {i['key_size']}/{i['value_size']} x{i['max_entries']}")
    if m.get("slots"):
        notes.append("slots " + " ".join(f"{k}={v}" for k, v in m["slots"].items()))
    if m.get("pinning"):
        notes.append(f"pinned {m['pinning']}")
    return "; ".join(notes)


def run(args: argparse.Namespace) -> int:
    info = describe(read_object(args.object))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("PROGRAMS")
    print(
        format_table(
            ["NAME", "SECTION", "TYPE", "INSNS"],
            [[p["name"], p["section"], p["type"], p["insns"]] for p in info["programs"]],
        )
    )
    print("\nMAPS")
    print(
        format_table(
            ["NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "INTERNAL", "NOTES"],
            [
                [
                    m["name"],
                    m["type"],
                    m["key_size"],
                    m["value_size"],
                    m["max_entries"],
                    m["internal"],
                    _notes(m),
                ]
                for m in info["maps"]
            ],
        )
    )
    print("\nVARIABLES")
    print(
        format_table(
            ["NAME", "SECTION", "OFFSET", "SIZE", "TYPE", "VALUE"],
            [
                [v["name"], v["section"], v["offset"], v["size"], v["type"], v["value"]]
                for v in info["variables"]
            ],
        )
    )
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="show programs, maps and global variables of an object")
    p.add_argument("object", help="BPF ELF object (clang -O2 -g -target bpf)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
