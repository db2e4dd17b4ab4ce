"""`bpfglobals inspect OBJ [--json]`: programs, maps and global variables of an object."""

from __future__ import annotations

import argparse
import json

from bpfglobals.cli.table import format_table
from bpfglobals.elf import ObjectSpec, read_object
from bpfglobals.elf.core_relo import describe as describe_core_relo
from bpfglobals.elf.core_spec import kind_label
from bpfglobals.loader.errors import LoadError
from bpfglobals.loader.linker import function_table, link_program
from bpfglobals.values import decode_variables, spell


def core_relocations(obj: ObjectSpec) -> dict[str, list[dict]]:
    """Per program: the CO-RE records the loader will resolve against the node's kernel —
    its own and those of the subprograms it calls — at their instruction in the linked
    program."""
    out: dict[str, list[dict]] = {}
    table = function_table(obj)
    for p in obj.programs:
        try:
            records = link_program(p, table).core_relos
        except LoadError:  # calls that do not link: the load will say so; show its own
            records = [(p.name, r) for r in p.core_relos]
        out[p.name] = [
            {
                "insn": r.insn_off,
                "function": fn,
                "relo": r.index,
                "kind": kind_label(r.kind),
                "type": spell(obj.btf, r.type_id) if obj.btf else str(r.type_id),
                "type_id": r.type_id,
                "access": r.access,
                "spec": describe_core_relo(r, obj.btf) if obj.btf else "",
            }
            for fn, r in records
        ]
    return out


def describe(obj: ObjectSpec) -> dict:
    """The JSON shape of `inspect --json` (stable: scripts and the operator read it)."""
    values = decode_variables(obj)
    core = core_relocations(obj)
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
                "core_relocations": core[p.name],
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
            ["NAME", "SECTION", "TYPE", "INSNS", "CO-RE"],
            [
                [p["name"], p["section"], p["type"], p["insns"], len(p["core_relocations"])]
                for p in info["programs"]
            ],
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
    p = sub.add_parser("inspect", help="show programs, maps and global variables of an object")
    p.add_argument("object", help="BPF ELF object (clang -O2 -g -target bpf)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
