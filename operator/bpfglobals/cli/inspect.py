"""`bpfglobals inspect OBJ [--json]`: programs, maps and global variables of an object."""

from __future__ import annotations

import argparse
import json

from bpfglobals.cli.table import format_table
from bpfglobals.cli.verbs import help_for
from bpfglobals.elf import ObjectSpec, read_object
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
        + [
            {
                "name": m.name,
                "type": m.type,
                "key_size": m.key_size,
                "value_size": m.value_size,
                "max_entries": m.max_entries,
                "internal": False,
                "pinning": "by_name" if m.pinning == 1 else None,
            }
            for m in obj.maps
        ],
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
            ["NAME", "TYPE", "KEY", "VALUE", "MAX_ENTRIES", "INTERNAL"],
            [
                [
                    m["name"],
                    m["type"],
                    m["key_size"],
                    m["value_size"],
                    m["max_entries"],
                    m["internal"],
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
    p = sub.add_parser("inspect", help=help_for("inspect"))
    p.add_argument("object", help="BPF ELF object (clang -O2 -g -target bpf)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
